//! A hostile or misconfigured network, against the real binary: an API
//! that redirects elsewhere or answers without end, an endpoint with a
//! password in it, a private key written into the config.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::common::orders;
use crate::common::{Run, SandboxProcess, Workdir};

fn vectors_key() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vectors/client_private_pkcs8.pem")
}

/// Serves `app` on a loopback port of `ip`; returns `http://ip:port`.
async fn serve(ip: &str, app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// A config declaring to `endpoint` with the test vectors' key, one
/// attempt per row apart from retries, unthrottled.
fn config(work: &Workdir, endpoint: &str) -> String {
    let key = vectors_key();
    work.write(
        "api.toml",
        format!(
            "[api]\nendpoint = \"{endpoint}\"\nclient_id = \"C1\"\nprivate_key = \"{}\"\n\
             timeout_ms = 5000\n[run]\nrate_per_sec = 0\nmax_attempts = 2\n\
             backoff_base_ms = 1\n",
            key.display()
        ),
    )
    .display()
    .to_string()
}

async fn run_blocking(work: Arc<Workdir>, args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        work.run(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_stops_the_run_naming_where_it_pointed() {
    // The place the redirect points to counts what reaches it.
    let reached = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&reached);
    let elsewhere = serve(
        "127.0.0.2",
        axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::OK }
        }),
    )
    .await;
    let location = elsewhere.replace("http://", "http://collector:hunter2@") + "/steal";
    let endpoint = serve(
        "127.0.0.1",
        axum::Router::new().fallback(move || {
            let location = location.clone();
            async move {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response()
            }
        }),
    )
    .await;
    let work = Arc::new(Workdir::new());
    let (input, _) = orders(&work, 5);
    let config = config(&work, &endpoint);
    let run = run_blocking(
        Arc::clone(&work),
        ["run", &input, "--config", &config, "--out", "out"]
            .map(str::to_owned)
            .to_vec(),
    )
    .await;
    run.expect_fatal(&[
        "HTTP 307",
        "Location: http://***@127.0.0.2",
        "redirects are not followed",
    ]);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert_eq!(reached.load(Ordering::SeqCst), 0, "the body went elsewhere");
    let retry = work.read_csv_output("out/retry.csv");
    assert_eq!(
        retry.lines().count(),
        6,
        "every row is left to send again: {retry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_read_to_1_mb_then_the_row_is_unknown() {
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    let endpoint = serve(
        "127.0.0.1",
        axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            // 512 MB, made as it is sent, without a length.
            let chunks = futures_util::stream::iter(
                (0..8192).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])),
            );
            async move { axum::body::Body::from_stream(chunks) }
        }),
    )
    .await;
    let work = Arc::new(Workdir::new());
    let (input, _) = orders(&work, 2);
    let config = config(&work, &endpoint);
    let (run, peak) = tokio::task::spawn_blocking({
        let work = Arc::clone(&work);
        move || work.run_measuring_memory(&["run", &input, "--config", &config, "--out", "out"])
    })
    .await
    .unwrap();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(peak < 256 << 20, "peaked at {} MB", peak >> 20);
    let results = work.read_csv_output("out/results.csv");
    assert!(results.contains("RESPONSE_TOO_LARGE"), "{results}");
    // Retried once (max_attempts = 2), as any transport failure.
    assert_eq!(served.load(Ordering::SeqCst), 4);
}

#[test]
fn an_endpoint_with_a_password_is_refused_without_showing_it() {
    let work = Workdir::new();
    let (input, _) = orders(&work, 1);
    // Also in a URL too broken to parse (its port is out of range).
    for endpoint in [
        "https://merchant:s3cret-pw@open.example.com",
        "https://merchant:s3cret-pw@open.example.com:99999",
    ] {
        let config = config(&work, endpoint);
        for args in [
            vec!["run", &input, "--config", &config],
            vec!["validate", &input, "--config", &config],
            vec!["ledger", "export", "--config", &config],
        ] {
            let run = work.run(&args);
            run.expect_fatal(&["api.toml", "[api] endpoint has a user name or password"]);
            assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
        }
    }
}

#[test]
fn a_private_key_written_into_the_config_signs_and_is_never_printed() {
    let work = Workdir::new();
    let sandbox = SandboxProcess::start(work.path("keys"), &["--client-id", "C1"]);
    let (input, payments) = orders(&work, 3);
    let _ = payments;
    let key_text = std::fs::read_to_string(sandbox.keys.join("client_private.pem")).unwrap();
    let body_line = key_text.lines().nth(1).unwrap().to_owned();
    let write_config = |key: &str| {
        work.write(
            "inline.toml",
            format!(
                "[api]\nendpoint = \"{}\"\nclient_id = \"C1\"\nprivate_key = \"\"\"{key}\"\"\"\n\
                 alipay_public_key = \"{}\"\n[run]\nrate_per_sec = 0\n",
                sandbox.endpoint,
                sandbox.keys.join("sandbox_public.pem").display()
            ),
        )
        .display()
        .to_string()
    };
    // The key's text, as PEM, declares.
    let config = write_config(&key_text);
    let run = work.run(&["run", &input, "--config", &config, "--out", "good"]);
    assert!(run.code == 0 || run.code == 3, "{}", run.stderr);
    assert!(!run.stderr.contains(&body_line));
    let results = work.read_csv_output("good/results.csv");
    assert!(!results.contains("INVALID_SIGNATURE"), "{results}");
    // A damaged key is refused naming the file and the key, never its text.
    let damaged = key_text.replace(&body_line, &body_line.chars().rev().collect::<String>());
    let config = write_config(&damaged);
    let run = work.run(&["run", &input, "--config", &config, "--out", "bad"]);
    run.expect_fatal(&["[api] private_key in", "inline.toml"]);
    for line in damaged.lines().skip(1).take(3) {
        assert!(!run.stderr.contains(line), "key text in: {}", run.stderr);
    }
    // Bare Base64 on one line, spaces and all, is key text too: a damaged
    // one is not taken for a file's name and printed.
    let bare: String = damaged
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<Vec<_>>()
        .join(" ");
    let config = write_config(&bare);
    let run = work.run(&["run", &input, "--config", &config, "--out", "bare"]);
    run.expect_fatal(&["[api] private_key in", "inline.toml"]);
    assert!(
        !run.stderr.contains(&bare[..40]),
        "key text in: {}",
        run.stderr
    );
    // A TOML error on the key's line quotes no part of it.
    let broken = work.write(
        "broken.toml",
        format!("[api]\nprivate_key = \"\"\"{key_text}\"\"\" trailing\n"),
    );
    let run = work.run(&["validate", &input, "--config", broken.to_str().unwrap()]);
    run.expect_fatal(&["broken.toml", "line"]);
    assert!(!run.stderr.contains(&body_line), "{}", run.stderr);
}
