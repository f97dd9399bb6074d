//! The page against hostile requests, the real binary on a loopback port:
//! another `Host` (DNS rebinding), the security headers and no inline
//! script, bodies and fields past their limits, stalled connections, short
//! tokens, guessed tokens, the session cookie, two files in one upload,
//! failed uploads, and server paths on error pages.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};

use crate::common::Workdir;
use crate::serve::{ServeProcess, client, location, samples, upload, upload_request};

const TOKEN: &str = "0123456789abcdef0123456789abcdef-serve";

fn sandbox_profile(work: &Workdir) {
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// `serve.base` with its `127.0.0.1` replaced by `host`.
fn port_of(serve: &ServeProcess) -> String {
    serve.base.rsplit(':').next().unwrap().to_owned()
}

#[test]
fn requests_for_another_host_are_refused_unless_allowed() {
    let work = Workdir::new();
    sandbox_profile(&work);
    let serve = ServeProcess::start_with(
        &work,
        "127.0.0.1:0",
        &[],
        &["--data", "data", "--allow-host", "orders.example.internal"],
    );
    let port = port_of(&serve);
    runtime().block_on(async {
        // DNS rebinding: evil.example resolves to 127.0.0.1; its page reads
        // and posts with its own Host and a matching Origin.
        let evil = format!("evil.example:{port}");
        let page = client()
            .get(serve.url("/"))
            .header("Host", &evil)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::MISDIRECTED_REQUEST);
        let posted = upload_request(&serve, "try", "orders.csv", samples())
            .header("Host", &evil)
            .header("Origin", format!("http://{evil}"))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::MISDIRECTED_REQUEST);
        assert!(
            std::fs::read_dir(work.path("data/jobs"))
                .unwrap()
                .next()
                .is_none(),
            "nothing was uploaded"
        );
        // The bound address, localhost and an allowed name are answered.
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("orders.example.internal:{port}"),
            "orders.example.internal".to_owned(),
        ] {
            let page = client()
                .get(serve.url("/"))
                .header("Host", &host)
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), StatusCode::OK, "{host}");
        }
    });
}

#[test]
fn every_response_carries_the_security_headers_and_no_inline_script() {
    let work = Workdir::new();
    sandbox_profile(&work);
    // A data folder whose name would break out of a script string.
    let data = "x'),alert(1),('";
    let serve = ServeProcess::start_with(&work, "127.0.0.1:0", &[], &["--data", data]);
    runtime().block_on(async {
        let uploaded = upload(&serve, "try", "orders.csv", samples()).await;
        assert_eq!(uploaded.status(), StatusCode::SEE_OTHER);
        let job = location(&uploaded);
        for (path, is_file) in [
            ("/".to_owned(), false),
            (job.clone(), false),
            (format!("{job}/files/rejected.csv"), true),
            (format!("{job}/files/report.html"), true),
            ("/static/page.js".to_owned(), false),
            ("/no/such/page".to_owned(), false),
        ] {
            let response = client().get(serve.url(&path)).send().await.unwrap();
            let headers = response.headers().clone();
            let policy = headers["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                policy.contains("frame-ancestors 'none'"),
                "{path}: {policy}"
            );
            assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
            let scripts = policy
                .split(';')
                .find(|part| part.trim().starts_with("script-src"))
                .unwrap_or("");
            assert!(!scripts.contains("unsafe-inline"), "{path}: {policy}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            if !path.starts_with("/static/") {
                assert_eq!(headers["cache-control"], "no-store", "{path}");
            }
            if is_file {
                assert!(policy.contains("sandbox"), "{path}: {policy}");
            }
            let body = response.text().await.unwrap();
            if !is_file && !path.starts_with("/static/") {
                // The one script is the served file; no script inline.
                assert_eq!(
                    body.matches("<script").count(),
                    body.matches("<script src=\"/static/page.js\" defer></script>")
                        .count(),
                    "{path}: {body}"
                );
                assert!(
                    !body.contains(data),
                    "{path}: the data folder shows: {body}"
                );
            }
        }
    });
}

#[test]
fn bodies_and_fields_past_their_limits_are_refused() {
    let work = Workdir::new();
    sandbox_profile(&work);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[("DECLARE_SERVE_TOKEN", TOKEN)]);
    runtime().block_on(async {
        // 20 MB to the sign-in form, without the token.
        let huge = client()
            .post(serve.url("/login"))
            .header("Origin", serve.base.clone())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={}", "x".repeat(20 << 20)))
            .send()
            .await;
        // Refused with 413, or the connection is cut while the body is sent.
        if let Ok(huge) = huge {
            assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
        }
        let post_with_token = |form: Form| {
            client()
                .post(serve.url("/uploads"))
                .bearer_auth(TOKEN)
                .header("Origin", serve.base.clone())
                .multipart(form)
                .send()
        };
        // A profile field of 100 KB in an upload.
        let long_profile = post_with_token(
            Form::new()
                .text("profile", "p".repeat(100 * 1024))
                .part("file", Part::bytes(samples()).file_name("orders.csv")),
        )
        .await
        .unwrap();
        assert_eq!(long_profile.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Two files in one upload.
        let two = post_with_token(
            Form::new()
                .text("profile", "try")
                .part("file", Part::bytes(samples()).file_name("a.csv"))
                .part("file", Part::bytes(samples()).file_name("b.csv")),
        )
        .await
        .unwrap();
        assert_eq!(two.status(), StatusCode::BAD_REQUEST);
        assert!(
            two.text()
                .await
                .unwrap()
                .contains("Upload one file at a time")
        );
        // The upload alone takes more than 16 KB: a file of 1 MB.
        let mut big = String::from_utf8(samples()).unwrap();
        while big.len() < 1 << 20 {
            big.push_str("PAYX,DCLX,ZONGSHU,CN,3301960ABC,shop,12800,CNY,false,,,,,,\n");
        }
        let accepted = post_with_token(
            Form::new()
                .text("profile", "try")
                .part("file", Part::bytes(big.into_bytes()).file_name("big.csv")),
        )
        .await
        .unwrap();
        assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
        let job = accepted.headers()["location"].to_str().unwrap().to_owned();
        std::fs::remove_dir_all(
            work.path(&format!("data/jobs/{}", job.rsplit('/').next().unwrap())),
        )
        .unwrap();
        // Nothing of the refused uploads is left.
        assert!(
            std::fs::read_dir(work.path("data/jobs"))
                .unwrap()
                .next()
                .is_none()
        );
    });
}

#[test]
fn a_failed_upload_leaves_nothing_and_its_error_shows_no_server_path() {
    let work = Workdir::new();
    sandbox_profile(&work);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime().block_on(async {
        let broken = upload(&serve, "try", "orders.xlsx", b"PK not a workbook".to_vec()).await;
        assert_eq!(broken.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = broken.text().await.unwrap();
        assert!(page.contains("orders.xlsx"), "{page}");
        let data = work.path("data");
        for form in [
            data.display().to_string(),
            "data/jobs".to_owned(),
            "input.xlsx".to_owned(),
        ] {
            assert!(!page.contains(&form), "{form} in {page}");
        }
        assert!(
            std::fs::read_dir(work.path("data/jobs"))
                .unwrap()
                .next()
                .is_none()
        );
        // A good upload records the file's name beside it.
        let good = upload(&serve, "try", "orders.csv", samples()).await;
        let job = location(&good);
        let id = job.rsplit('/').next().unwrap();
        let record =
            std::fs::read_to_string(work.path(&format!("data/jobs/{id}/job.json"))).unwrap();
        assert!(
            record.contains("\"input_name\": \"orders.csv\""),
            "{record}"
        );
    });
}

#[test]
fn a_short_token_is_refused_and_guesses_are_throttled() {
    let work = Workdir::new();
    sandbox_profile(&work);
    let run = work.run_with_env(
        &[("DECLARE_SERVE_TOKEN", "a")],
        &["serve", "--config-dir", "profiles", "--addr", "127.0.0.1:0"],
    );
    run.expect_fatal(&["DECLARE_SERVE_TOKEN", "at least 32"]);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[("DECLARE_SERVE_TOKEN", TOKEN)]);
    runtime().block_on(async {
        let sign_in = |token: String| {
            client()
                .post(serve.url("/login"))
                .header("Origin", serve.base.clone())
                .form(&[("token", token)])
                .send()
        };
        // The cookie holds a random session ID, never the token.
        let signed_in = sign_in(TOKEN.to_owned()).await.unwrap();
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let cookie = signed_in.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!cookie.contains(TOKEN), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
        let session = cookie.split(';').next().unwrap().to_owned();
        let value = session.split('=').nth(1).unwrap();
        assert_eq!(value.len(), 32, "{session}");
        let home = client()
            .get(serve.url("/"))
            .header("Cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(home.status(), StatusCode::OK);
        // Behind a TLS proxy, the cookie is marked Secure.
        let proxied = client()
            .post(serve.url("/login"))
            .header("Origin", serve.base.clone())
            .header("X-Forwarded-Proto", "https")
            .form(&[("token", TOKEN)])
            .send()
            .await
            .unwrap();
        let cookie = proxied.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("; Secure"), "{cookie}");
        // Ten wrong guesses, then every try is refused for the minute,
        // the right token too.
        let mut statuses = Vec::new();
        for guess in 0..12 {
            statuses.push(sign_in(format!("guess-{guess}")).await.unwrap().status());
        }
        assert!(
            statuses[..10]
                .iter()
                .all(|s| *s == StatusCode::UNAUTHORIZED),
            "{statuses:?}"
        );
        assert!(
            statuses[10..]
                .iter()
                .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        assert_eq!(
            sign_in(TOKEN.to_owned()).await.unwrap().status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        let guessed = client()
            .get(serve.url("/"))
            .bearer_auth("another-guess")
            .send()
            .await
            .unwrap();
        assert_eq!(guessed.status(), StatusCode::TOO_MANY_REQUESTS);
        // A session already given still works.
        let home = client()
            .get(serve.url("/"))
            .header("Cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(home.status(), StatusCode::OK);
    });
}

/// A connection that sends half its request head is closed by the server
/// (its header timeout is 30 s); the test waits at most 60 s for that.
#[test]
fn a_connection_that_stalls_in_its_head_is_closed() {
    let work = Workdir::new();
    sandbox_profile(&work);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let address = serve.base.trim_start_matches("http://").to_owned();
    let mut stalled = std::net::TcpStream::connect(&address).unwrap();
    stalled
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // The server closes it (end of stream), maybe after a 408 answer.
    let read = stalled.read_to_end(&mut answer);
    assert!(
        read.is_ok(),
        "still open after {:?}: {read:?}",
        started.elapsed()
    );
    // The page still answers others.
    runtime().block_on(async {
        let page = client().get(serve.url("/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
    });
}

#[test]
fn a_data_folder_that_is_a_link_or_shared_is_refused_not_changed() {
    use std::os::unix::fs::PermissionsExt;
    let work = Workdir::new();
    sandbox_profile(&work);
    std::fs::create_dir(work.path("shared")).unwrap();
    std::fs::set_permissions(work.path("shared"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(work.path("mine")).unwrap();
    std::fs::set_permissions(work.path("mine"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(work.path("mine"), work.path("link")).unwrap();
    for (data, needle) in [
        ("shared", "can be read or entered by other users"),
        ("link", "is a symbolic link"),
    ] {
        let run = work.run(&[
            "serve",
            "--config-dir",
            "profiles",
            "--addr",
            "127.0.0.1:0",
            "--data",
            data,
        ]);
        run.expect_fatal(&[data, needle]);
    }
    let mode = std::fs::metadata(work.path("shared"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "left as it was");
}
