//! The client against the real sandbox over loopback TCP: every result code
//! of the spec, idempotency, retransmission, faults, and signatures that do
//! not verify.

use std::path::Path;
use std::time::Duration;

use declare_batch::client::{ApiSettings, DeclareClient};
use declare_batch::protocol::keys::{load_signer, load_verifier};
use declare_batch::protocol::parse_endpoint;
use declare_batch::protocol::{DECLARE_PATH, DeclareOutcome, DeclareRequest};

use crate::common::{SandboxProcess, Workdir};

const PAYMENTS: &str = "paymentRequestId,amount,payerCertificateNo,payerName,status\n\
P-OK,1000,11010519491231002X,张三,OK\n\
P-SPLIT,1000,,,OK\n\
P-RETRANSMIT,1000,,,OK\n\
P-DENIED,1000,,,ACCESS_DENIED\n\
P-ABNORMAL,1000,,,USER_STATUS_ABNORMAL\n\
P-FAIL,1000,,,PROCESS_FAIL\n\
P-CLOSED,1000,,,CLOSED\n";

fn start(work: &Workdir, args: &[&str]) -> SandboxProcess {
    let payments = work.write("payments.csv", PAYMENTS);
    let mut all = vec!["--payments", payments.to_str().unwrap()];
    all.extend_from_slice(args);
    SandboxProcess::start(work.path("keys"), &all)
}

/// Settings a correctly configured client would have.
fn settings(sandbox: &SandboxProcess) -> ApiSettings {
    ApiSettings {
        base: parse_endpoint(&sandbox.endpoint).unwrap(),
        client_id: "SANDBOX_CLIENT".to_owned(),
        signer: load_signer(&sandbox.keys.join("client_private.pem"), "1").unwrap(),
        verifier: Some(load_verifier(&sandbox.keys.join("sandbox_public.pem")).unwrap()),
        timeout: Duration::from_secs(10),
    }
}

fn client(settings: ApiSettings) -> DeclareClient {
    DeclareClient::new(settings).unwrap()
}

fn order(id: &str, payment: &str, amount: u64) -> DeclareRequest {
    DeclareRequest::example(id, payment, &amount.to_string())
}

fn split(id: &str, payment: &str, reference: &str, amount: u64) -> DeclareRequest {
    let mut request = order(id, payment, amount);
    request.is_split = "true".into();
    request.reference_order_id = Some(reference.into());
    request
}

fn outcome(outcome: &DeclareOutcome) -> (&'static str, String) {
    (outcome.status().as_str(), outcome.code().to_owned())
}

fn vectors_key() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vectors/client_private_pkcs8.pem")
}

/// A raw HTTP call the client would never make; the answer must still be a
/// signed declare response.
async fn raw(
    sandbox: &SandboxProcess,
    method: reqwest::Method,
    content_type: &str,
) -> DeclareOutcome {
    declare_batch::protocol::use_aws_lc_for_tls();
    let response = reqwest::Client::new()
        .request(method, format!("{}{DECLARE_PATH}", sandbox.endpoint))
        .header("Content-Type", content_type)
        .body("{}")
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, id, time, signature) = (
        response.status().as_u16(),
        header("Client-Id"),
        header("Response-Time"),
        header("Signature"),
    );
    assert!(signature.is_some(), "every answer is signed");
    let body = response.bytes().await.unwrap();
    let verifier = settings(sandbox).verifier;
    declare_batch::protocol::classify(
        DECLARE_PATH,
        &declare_batch::protocol::ReceivedResponse {
            status,
            client_id: id.as_deref(),
            response_time: time.as_deref(),
            signature: signature.as_deref(),
            body: &body,
        },
        verifier.as_ref(),
    )
}

/// What a row does, who sends it, the body, and the (status, code) expected.
type Case<'a> = (&'a str, &'a DeclareClient, Vec<u8>, (&'a str, &'a str));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_code_of_the_spec_is_reachable() {
    let work = Workdir::new();
    let sandbox = start(&work, &[]);
    let good = client(settings(&sandbox));
    let with = |change: fn(&mut ApiSettings)| {
        let mut s = settings(&sandbox);
        change(&mut s);
        client(s)
    };
    let wrong_client = with(|s| s.client_id = "SOMEONE_ELSE".into());
    let wrong_key = {
        let mut s = settings(&sandbox);
        s.signer = load_signer(&vectors_key(), "1").unwrap();
        client(s)
    };
    let unknown_version = {
        let mut s = settings(&sandbox);
        s.signer = load_signer(&sandbox.keys.join("client_private.pem"), "2").unwrap();
        client(s)
    };
    let wrong_path = {
        let mut s = settings(&sandbox);
        s.base = parse_endpoint(&format!("{}/wrong", sandbox.endpoint)).unwrap();
        client(s)
    };
    let body = |request: DeclareRequest| request.to_body();
    let illegal = String::from_utf8(order("D-ILLEGAL", "P-OK", 1).to_body())
        .unwrap()
        .replace("\"CN\"", "\"US\"")
        .into_bytes();

    let table: Vec<Case> = vec![
        (
            "a declarable order",
            &good,
            body(order("D1", "P-OK", 600)),
            ("S", "SUCCESS"),
        ),
        (
            "same ID, other content",
            &good,
            body(order("D1", "P-OK", 700)),
            ("F", "REPEAT_REQ_INCONSISTENT"),
        ),
        (
            "same order, other ID",
            &good,
            body(order("D2", "P-OK", 100)),
            ("F", "DUPLICATED_DECLARATION"),
        ),
        (
            "more than was paid",
            &good,
            body(split("D3", "P-SPLIT", "R1", 1001)),
            ("F", "DECLARED_AMOUNT_EXCEED_LIMIT"),
        ),
        (
            "unknown payment",
            &good,
            body(order("D4", "P-NONE", 1)),
            ("F", "ORDER_NOT_EXIST"),
        ),
        (
            "payment refused",
            &good,
            body(order("D5", "P-DENIED", 1)),
            ("F", "ACCESS_DENIED"),
        ),
        (
            "payer blocked",
            &good,
            body(order("D6", "P-ABNORMAL", 1)),
            ("F", "USER_STATUS_ABNORMAL"),
        ),
        (
            "business failure",
            &good,
            body(order("D7", "P-FAIL", 1)),
            ("F", "PROCESS_FAIL"),
        ),
        (
            "closed payment",
            &good,
            body(order("D8", "P-CLOSED", 1)),
            ("F", "INVALID_ORDER_STATUS"),
        ),
        ("region US", &good, illegal, ("F", "PARAM_ILLEGAL")),
        (
            "wrong Client-Id",
            &wrong_client,
            body(order("D9", "P-SPLIT", 1)),
            ("F", "INVALID_CLIENT"),
        ),
        (
            "wrong private key",
            &wrong_key,
            body(order("D9", "P-SPLIT", 1)),
            ("F", "INVALID_SIGNATURE"),
        ),
        (
            "unknown keyVersion",
            &unknown_version,
            body(order("D9", "P-SPLIT", 1)),
            ("F", "KEY_NOT_FOUND"),
        ),
        (
            "wrong URL",
            &wrong_path,
            body(order("D9", "P-SPLIT", 1)),
            ("F", "NO_INTERFACE_DEF"),
        ),
    ];
    for (what, client, body, expected) in table {
        let got = client.declare(&body).await;
        assert_eq!(
            outcome(&got),
            (expected.0, expected.1.to_owned()),
            "{what}: {got:?}"
        );
    }
    let got = raw(&sandbox, reqwest::Method::GET, "application/json").await;
    assert_eq!(outcome(&got), ("F", "METHOD_NOT_SUPPORTED".to_owned()));
    let got = raw(&sandbox, reqwest::Method::POST, "text/plain").await;
    assert_eq!(outcome(&got), ("F", "MEDIA_TYPE_NOT_ACCEPTABLE".to_owned()));

    // The two U codes need a sandbox set up for them (same keys).
    let limited = start(&work, &["--rate-limit", "1"]);
    let limited_client = client(settings(&limited));
    let mut codes = Vec::new();
    for n in 0..20 {
        let got = limited_client
            .declare(&order(&format!("L{n}"), "P-SPLIT", 1).to_body())
            .await;
        codes.push(outcome(&got));
        if got.code() == "REQUEST_TRAFFIC_EXCEED_LIMIT" {
            break;
        }
    }
    assert_eq!(
        codes.last().unwrap(),
        &("U", "REQUEST_TRAFFIC_EXCEED_LIMIT".to_owned()),
        "{codes:?}"
    );
    let failing = start(&work, &["--fail-u-before", "1"]);
    let got = client(settings(&failing))
        .declare(&order("U1", "P-OK", 1).to_body())
        .await;
    assert_eq!(outcome(&got), ("U", "UNKNOWN_EXCEPTION".to_owned()));
    let stats = failing.stats().await;
    assert_eq!(stats.by_code["UNKNOWN_EXCEPTION"], 1);
    assert!(!stats.by_code.contains_key("SUCCESS"), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_repeats_get_the_first_answer_and_count_once() {
    let work = Workdir::new();
    let sandbox = start(&work, &[]);
    let client = client(settings(&sandbox));
    let body = split("D1", "P-SPLIT", "R1", 600).to_body();
    let first = client.declare(&body).await;
    assert_eq!(outcome(&first).0, "S", "{first:?}");
    let again = client.declare(&body).await;
    assert_eq!(again, first, "the first answer again");
    // Declared once: 600 of 1000 is used, so 400 more fits and 401 would not.
    let rest = client
        .declare(&split("D2", "P-SPLIT", "R2", 401).to_body())
        .await;
    assert_eq!(
        outcome(&rest),
        ("F", "DECLARED_AMOUNT_EXCEED_LIMIT".to_owned())
    );
    let rest = client
        .declare(&split("D3", "P-SPLIT", "R3", 400).to_body())
        .await;
    assert_eq!(outcome(&rest), ("S", "SUCCESS".to_owned()));
    let stats = sandbox.stats().await;
    assert_eq!(stats.requests_per_id["D1"], 2);
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmission_replaces_the_declared_amount() {
    let work = Workdir::new();
    let sandbox = start(&work, &["--retransmit-window-ms", "1000"]);
    let client = client(settings(&sandbox));
    let first = client
        .declare(&order("D1", "P-RETRANSMIT", 600).to_body())
        .await;
    assert_eq!(outcome(&first).0, "S", "{first:?}");
    let mut corrected = order("D1", "P-RETRANSMIT", 900);
    corrected.merchant_customs_info.merchant_customs_name = "Shop (corrected)".into();
    corrected.customs.customs_code = "NINGBO".into();
    let early = client.declare(&corrected.to_body()).await;
    assert_eq!(outcome(&early), ("F", "REPEAT_REQ_INCONSISTENT".to_owned()));
    // The window runs from the last call with this ID.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let retransmitted = client.declare(&corrected.to_body()).await;
    assert_eq!(retransmitted, first, "the first successful answer again");
    // 900 replaced 600: 100 more fits (1000), 101 would not. Had the amounts
    // been added, 600 + 900 would have exceeded the payment already.
    let over = client
        .declare(&split("D2", "P-RETRANSMIT", "R2", 101).to_body())
        .await;
    assert_eq!(
        outcome(&over),
        ("F", "DECLARED_AMOUNT_EXCEED_LIMIT".to_owned())
    );
    let fits = client
        .declare(&split("D3", "P-RETRANSMIT", "R3", 100).to_body())
        .await;
    assert_eq!(outcome(&fits), ("S", "SUCCESS".to_owned()));
}

/// Forwards requests to `target` and flips the declared amount in every
/// answer, keeping its headers: a man in the middle.
async fn tampering_proxy(target: String) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    declare_batch::protocol::use_aws_lc_for_tls();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let target = target.clone();
        async move {
            let mut request = reqwest::Client::new().post(format!("{target}{DECLARE_PATH}"));
            for name in ["Content-Type", "Client-Id", "Request-Time", "Signature"] {
                if let Some(value) = headers.get(name) {
                    request = request.header(name, value.to_str().unwrap());
                }
            }
            let response = request.body(body).send().await.unwrap();
            let mut out = axum::http::Response::builder().status(StatusCode::OK);
            for name in ["Content-Type", "Client-Id", "Response-Time", "Signature"] {
                if let Some(value) = response.headers().get(name) {
                    out = out.header(name, value.to_str().unwrap());
                }
            }
            let text = response.text().await.unwrap();
            let tampered = text.replace("\"value\":\"1000\"", "\"value\":\"9000\"");
            assert_ne!(tampered, text, "the proxy changes the answer");
            out.body(axum::body::Body::from(tampered)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_answer_is_not_trusted() {
    let work = Workdir::new();
    let sandbox = start(&work, &[]);
    let proxy = tampering_proxy(sandbox.endpoint.clone()).await;
    let mut through_proxy = settings(&sandbox);
    through_proxy.base = parse_endpoint(&proxy).unwrap();
    let body = order("D1", "P-OK", 100).to_body();
    let got = client(through_proxy).declare(&body).await;
    assert_eq!(
        outcome(&got),
        ("U", "RESPONSE_SIGNATURE_INVALID".to_owned()),
        "{got:?}"
    );
    // The untampered answer to the same request is a signed S: the client
    // refused only the change.
    let direct = client(settings(&sandbox)).declare(&body).await;
    assert_eq!(outcome(&direct), ("S", "SUCCESS".to_owned()));
    // Without alipay_public_key nothing is verified, so even a tampered
    // answer is taken as is: the key is what makes answers trustworthy.
    let mut unverified = settings(&sandbox);
    unverified.base = parse_endpoint(&proxy).unwrap();
    unverified.verifier = None;
    assert_eq!(outcome(&client(unverified).declare(&body).await).0, "S");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_reach_the_client_as_unknown_outcomes() {
    let work = Workdir::new();
    let cases: [(&[&str], (&str, &str)); 4] = [
        (&["--fail-http-500", "1"], ("U", "HTTP_500")),
        (&["--fail-drop", "1"], ("U", "CONNECTION_ERROR")),
        (&["--fail-u-after", "1"], ("U", "UNKNOWN_EXCEPTION")),
        (&["--slow", "1", "--latency-ms", "3000"], ("U", "TIMEOUT")),
    ];
    for (args, expected) in cases {
        let sandbox = start(&work, args);
        let mut quick = settings(&sandbox);
        quick.timeout = Duration::from_millis(500);
        let got = client(quick)
            .declare(&order("D1", "P-OK", 100).to_body())
            .await;
        assert_eq!(
            outcome(&got),
            (expected.0, expected.1.to_owned()),
            "{args:?}: {got:?}"
        );
    }
}

/// Sends the same body until the outcome is not unknown (at most 20
/// times), as the run does; returns the outcome and the attempts it took.
async fn until_answered(client: &DeclareClient, body: &[u8]) -> (DeclareOutcome, u32) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let got = client.declare(body).await;
        if got.status().as_str() != "U" || attempts == 20 {
            return (got, attempts);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_an_unknown_outcome_is_answered_idempotently() {
    let work = Workdir::new();
    // Seeded: whether an attempt meets a fault depends only on ID and attempt.
    let sandbox = start(
        &work,
        &[
            "--fail-u-after",
            "0.5",
            "--fail-drop",
            "0.3",
            "--seed",
            "42",
        ],
    );
    let client = client(settings(&sandbox));
    let (last, attempts) =
        until_answered(&client, &split("D1", "P-SPLIT", "R1", 1000).to_body()).await;
    assert_eq!(
        outcome(&last),
        ("S", "SUCCESS".to_owned()),
        "after {attempts} attempts"
    );
    let stats = sandbox.stats().await;
    assert_eq!(stats.requests_per_id["D1"], attempts);
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
    // Recorded once although answered U or cut off before: the whole
    // payment was declared once, so one more fen does not fit.
    let more = client
        .declare(&split("D2", "P-SPLIT", "R2", 1).to_body())
        .await;
    assert_eq!(outcome(&more).1, "DECLARED_AMOUNT_EXCEED_LIMIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inquiry_reports_recorded_declarations_only() {
    let work = Workdir::new();
    let sandbox = start(&work, &[]);
    let client = client(settings(&sandbox));
    let declared = client.declare(&order("D1", "P-OK", 250).to_body()).await;
    assert_eq!(outcome(&declared).0, "S");
    let refused = client.declare(&order("D2", "P-CLOSED", 1).to_body()).await;
    assert_eq!(outcome(&refused).0, "F");
    let inquiry = client.inquire(&["D1", "D2", "NEVER"]).await.unwrap();
    assert_eq!(inquiry.declaration_records.len(), 1);
    let record = &inquiry.declaration_records[0];
    assert_eq!(record.customs_declaration_request_id.as_deref(), Some("D1"));
    assert_eq!(record.declaration_amount.as_ref().unwrap().value, "250");
    assert_eq!(
        record.declaration_request_status.as_deref(),
        Some("WAITING_FOR_PROCESSING")
    );
    let DeclareOutcome::Success(first) = declared else {
        unreachable!()
    };
    assert_eq!(
        record.psp_declaration_request_id,
        first.psp_declaration_request_id
    );
    assert_eq!(inquiry.declaration_requests_not_found, ["D2", "NEVER"]);
    let ids: Vec<String> = (0..11).map(|n| format!("D{n}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let too_many = client.inquire(&ids).await.unwrap_err();
    assert_eq!(outcome(&too_many), ("F", "PARAM_ILLEGAL".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_settings_come_from_the_config_file() {
    use declare_batch::settings::{Overrides, Settings};
    let api_settings_of = |path: &std::path::Path| {
        Settings::load(Some(path), Overrides::default())
            .unwrap()
            .remote_api()
    };
    let work = Workdir::new();
    let sandbox = start(&work, &[]);
    let config_text = format!(
        "[api]\nendpoint = \"{}\"\nclient_id = \"SANDBOX_CLIENT\"\n\
         private_key = \"keys/client_private.pem\"\nalipay_public_key = \"keys/sandbox_public.pem\"\n\
         timeout_ms = 2500\n",
        sandbox.endpoint
    );
    let path = work.write("declare.toml", &config_text);
    let settings = api_settings_of(&path).unwrap();
    assert_eq!(settings.timeout, Duration::from_millis(2500));
    assert!(settings.verifier.is_some());
    let got = client(settings)
        .declare(&order("D1", "P-OK", 1).to_body())
        .await;
    assert_eq!(outcome(&got), ("S", "SUCCESS".to_owned()));

    let no_client = work.write(
        "no-client.toml",
        config_text.replace("client_id = \"SANDBOX_CLIENT\"\n", ""),
    );
    let error = api_settings_of(&no_client).unwrap_err();
    assert!(error.to_string().contains("DECLARE_CLIENT_ID"), "{error}");
    work.write(
        "keys/broken.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let broken = work.write(
        "broken.toml",
        config_text.replace("client_private.pem", "broken.pem"),
    );
    let error = api_settings_of(&broken).unwrap_err();
    assert!(error.to_string().contains("broken.pem"), "{error}");
    let remote = work.write(
        "remote.toml",
        config_text.replace(&sandbox.endpoint, "http://declare.example.com"),
    );
    let error = api_settings_of(&remote).unwrap_err();
    assert!(error.to_string().contains("https://"), "{error}");

    // Answers must be signed: a remote endpoint needs alipay_public_key.
    let remote_unverified = config_text
        .replace(&sandbox.endpoint, "https://declare.example.com")
        .replace("alipay_public_key = \"keys/sandbox_public.pem\"\n", "");
    let path = work.write("remote-unverified.toml", &remote_unverified);
    let error = api_settings_of(&path).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("alipay_public_key is not set"),
        "{message}"
    );
    assert!(message.contains("verify_responses = false"), "{message}");
    let path = work.write(
        "remote-opted-out.toml",
        remote_unverified.replace("[api]\n", "[api]\nverify_responses = false\n"),
    );
    let settings = api_settings_of(&path).unwrap();
    assert!(settings.verifier.is_none());
    // Opting out drops the verifier even when a key is given.
    let path = work.write(
        "opted-out-with-key.toml",
        config_text.replace("[api]\n", "[api]\nverify_responses = false\n"),
    );
    assert!(api_settings_of(&path).unwrap().verifier.is_none());
    // Loopback without a key is allowed (and warned about by `run`).
    let path = work.write(
        "loopback-unverified.toml",
        config_text.replace("alipay_public_key = \"keys/sandbox_public.pem\"\n", ""),
    );
    assert!(api_settings_of(&path).unwrap().verifier.is_none());

    let no_endpoint = work.write(
        "no-endpoint.toml",
        config_text.replace(&format!("endpoint = \"{}\"\n", sandbox.endpoint), ""),
    );
    let error = api_settings_of(&no_endpoint).unwrap_err();
    assert!(
        error.to_string().contains("endpoint = \"sandbox\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_answers_are_refused_when_a_key_is_configured() {
    let work = Workdir::new();
    let sandbox = start(&work, &["--unsigned-answers"]);
    let body = order("D1", "P-OK", 100).to_body();
    let got = client(settings(&sandbox)).declare(&body).await;
    assert_eq!(
        outcome(&got),
        ("U", "RESPONSE_SIGNATURE_INVALID".to_owned())
    );
    let mut unverified = settings(&sandbox);
    unverified.verifier = None;
    assert_eq!(
        outcome(&client(unverified).declare(&body).await),
        ("S", "SUCCESS".to_owned())
    );
}
