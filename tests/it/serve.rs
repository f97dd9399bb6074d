//! `declare-batch serve` over HTTP: upload, the validation view, declaring
//! to the sandbox with live progress, downloads, the token, an oversize
//! upload, a path in a file name, a cross-site post, and two runs of one
//! profile — the real binary on a loopback port.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode, redirect};

use crate::common::{SandboxProcess, WithoutDeclareEnv, Workdir};
use crate::common::{config_for, orders};

/// `declare-batch serve` as a child process, killed when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub base: String,
}

impl ServeProcess {
    pub fn start(work: &Workdir, addr: &str, env: &[(&str, &str)]) -> ServeProcess {
        ServeProcess::start_with(work, addr, env, &["--data", "data"])
    }

    /// Starts `serve` with `args` after the profiles and the address
    /// (`--data` among them; relative to the work folder).
    pub fn start_with(
        work: &Workdir,
        addr: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> ServeProcess {
        use std::io::BufRead;
        let mut command = Command::new(env!("CARGO_BIN_EXE_declare-batch"));
        command
            .without_declare_env()
            .current_dir(work.path(""))
            .args(["serve", "--config-dir"])
            .arg(work.path("profiles"))
            .args(["--addr", addr])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start serve");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("serve did not print its address within 60 s")
            });
        let base = line.trim().trim_end_matches('/').to_owned();
        assert!(base.starts_with("http://"), "{base:?}");
        ServeProcess { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn client() -> Client {
    declare_batch::protocol::use_aws_lc_for_tls();
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The upload of `bytes` as `file_name` for `profile`, as the page's form
/// posts it.
pub(crate) fn upload_request(
    serve: &ServeProcess,
    profile: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> reqwest::RequestBuilder {
    let form = Form::new()
        .text("profile", profile.to_owned())
        .part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
    client()
        .post(serve.url("/uploads"))
        .header("Origin", serve.base.clone())
        .multipart(form)
}

/// Uploads `bytes` as `file_name` for `profile`, as the page's form does.
pub(crate) async fn upload(
    serve: &ServeProcess,
    profile: &str,
    file_name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    upload_request(serve, profile, file_name, bytes)
        .send()
        .await
        .unwrap()
}

/// The page at `path`, as text.
pub(crate) async fn get_text(serve: &ServeProcess, path: &str) -> String {
    get_text_in(serve, path, "en").await
}

/// The page at `path` for a browser whose language is `accept_language`.
pub(crate) async fn get_text_in(serve: &ServeProcess, path: &str, accept_language: &str) -> String {
    client()
        .get(serve.url(path))
        .header("Accept-Language", accept_language)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Presses the page's "Declare" button for a job, confirmed.
pub(crate) async fn declare(serve: &ServeProcess, job: &str) -> reqwest::Response {
    client()
        .post(serve.url(&format!("{job}/declare")))
        .header("Origin", serve.base.clone())
        .form(&[("confirm", "yes")])
        .send()
        .await
        .unwrap()
}

/// Declares a job whose file was declared before, saying so.
pub(crate) async fn declare_again(serve: &ServeProcess, job: &str) -> reqwest::Response {
    client()
        .post(serve.url(&format!("{job}/declare")))
        .header("Origin", serve.base.clone())
        .form(&[("confirm", "yes"), ("again", "yes")])
        .send()
        .await
        .unwrap()
}

/// A profile `slow` declaring `rows` orders to a sandbox that answers
/// every request after `latency_ms`, one at a time: a run that lasts.
fn slow_profile(work: &Workdir, rows: usize, latency_ms: &str) -> (String, SandboxProcess) {
    let (orders, payments) = orders(work, rows);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--slow",
            "1",
            "--latency-ms",
            latency_ms,
        ],
    );
    let config = config_for(work, &sandbox, &[("concurrency", "1")]);
    std::fs::create_dir_all(work.path("profiles")).unwrap();
    std::fs::copy(&config, work.path("profiles/slow.toml")).unwrap();
    (orders, sandbox)
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Polls a job's progress until `reached` holds; fails after `deadline`.
async fn wait_progress(
    serve: &ServeProcess,
    job: &str,
    deadline: Duration,
    reached: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let progress: serde_json::Value = client()
            .get(serve.url(&format!("{job}/progress")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if reached(&progress) {
            return progress;
        }
        assert!(
            started.elapsed() < deadline,
            "the run did not get there: {progress}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a job's progress until it is done; fails after a deadline.
pub(crate) async fn wait_done(serve: &ServeProcess, job: &str) -> serde_json::Value {
    wait_progress(serve, job, Duration::from_secs(120), |progress| {
        progress["done"] == true
    })
    .await
}

pub(crate) fn samples() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/orders.csv")).unwrap()
}

#[test]
fn upload_validate_declare_and_download() {
    let work = Workdir::new();
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let home = client().get(serve.url("/")).send().await.unwrap();
        assert_eq!(home.status(), StatusCode::OK);
        let home = home.text().await.unwrap();
        assert!(home.contains("<input type=\"file\""), "{home}");
        assert!(home.contains("SANDBOX"), "the sandbox is marked: {home}");
        assert!(home.contains("embedded-sandbox"));

        let uploaded = upload(&serve, "try", "orders.csv", samples()).await;
        assert_eq!(
            uploaded.status(),
            StatusCode::SEE_OTHER,
            "{:?}",
            uploaded.text().await
        );
        let job = location(&uploaded);
        let page = get_text(&serve, &job).await;
        assert!(page.contains("<b id=\"valid\">20</b>"), "{page}");
        assert!(page.contains("<b id=\"rejected\">5</b>"), "{page}");
        // The reasons, as rejected.csv gives them.
        assert!(
            page.contains("the check character does not match"),
            "{page}"
        );
        assert!(
            page.contains("&quot;HANGZHOU&quot; is not an accepted customs code"),
            "{page}"
        );
        assert!(page.contains("id=\"declare\""), "{page}");
        assert!(page.contains("SANDBOX"));
        let rejected = client()
            .get(serve.url(&format!("{job}/files/rejected.xlsx")))
            .send()
            .await
            .unwrap();
        assert_eq!(rejected.status(), StatusCode::OK);
        assert!(rejected.bytes().await.unwrap().starts_with(b"PK"));

        // Declaring needs the confirmation.
        let unconfirmed = client()
            .post(serve.url(&format!("{job}/declare")))
            .header("Origin", serve.base.clone())
            .form(&[("other", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
        let declared = declare(&serve, &job).await;
        assert_eq!(declared.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["exit_code"], 3, "{done}");
        assert_eq!(done["S"], 17, "{done}");
        for (name, needle) in [
            ("results.csv", "PAY202611220015"),
            ("retry.csv", "paymentRequestId"),
            ("report.html", "<!DOCTYPE html>"),
        ] {
            let file = client()
                .get(serve.url(&format!("{job}/files/{name}")))
                .send()
                .await
                .unwrap();
            assert_eq!(file.status(), StatusCode::OK, "{name}");
            assert!(file.text().await.unwrap().contains(needle), "{name}");
        }
        // Only the files the page offers.
        let other = client()
            .get(serve.url(&format!("{job}/files/journal.jsonl")))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        let unknown = client()
            .get(serve.url("/jobs/0000/progress"))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        // In Chinese, chosen by the browser's language.
        let chinese = client()
            .get(serve.url("/"))
            .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(chinese.contains("<html lang=\"zh-CN\">") && chinese.contains("海关申报"));
    });
    // Files under --data are the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path("data"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}

#[test]
fn what_the_server_refuses() {
    let work = Workdir::new();
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A post from another site.
        let form = Form::new()
            .text("profile", "try")
            .part("file", Part::bytes(samples()).file_name("orders.csv"));
        let cross = client()
            .post(serve.url("/uploads"))
            .header("Origin", "http://evil.example")
            .header("Accept-Language", "zh-CN")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN);
        let said = cross.text().await.unwrap();
        assert!(
            said.contains("必须来自本页面"),
            "said in the clerk's language: {said}"
        );
        // Larger than 100 MB: refused while it streams, nothing kept.
        let big = vec![b'a'; 101 * 1024 * 1024];
        let refused = upload_request(&serve, "try", "big.csv", big).send().await;
        match refused {
            Ok(response) => assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE),
            // The server answered 413 and closed the connection while the
            // rest was still being sent: refused while streaming too.
            Err(error) => assert!(error.is_request(), "{error:?}"),
        }
        let kept: Vec<_> = std::fs::read_dir(work.path("data/jobs")).unwrap().collect();
        assert!(kept.is_empty(), "{kept:?}");
        // A path in the file name is no path: the server names the file.
        let sneaky = upload(&serve, "try", "../../../evil.csv", samples()).await;
        assert_eq!(sneaky.status(), StatusCode::SEE_OTHER);
        assert!(!work.path("evil.csv").exists());
        assert!(!work.path("data/evil.csv").exists());
        let job = location(&sneaky);
        let id = job.trim_start_matches("/jobs/");
        assert!(work.path(&format!("data/jobs/{id}/input.csv")).exists());
        // Neither a file that is no export nor a profile that does not exist.
        let text = upload(&serve, "try", "notes.txt", b"hello".to_vec()).await;
        assert_eq!(text.status(), StatusCode::BAD_REQUEST);
        let nobody = upload(&serve, "nobody", "orders.csv", samples()).await;
        assert_eq!(nobody.status(), StatusCode::BAD_REQUEST);
    });
}

#[test]
fn a_profile_without_an_endpoint_is_no_sandbox_and_says_why_it_cannot_declare() {
    let work = Workdir::new();
    work.write("profiles/nowhere.toml", "[output]\nlanguage = \"en\"\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Said to the clerk without the config's words; the reason is in
        // the server's log, for IT.
        let home = get_text(&serve, "/").await;
        assert!(
            home.contains("IT has to finish its endpoint and keys"),
            "{home}"
        );
        assert!(!home.contains("[api]"), "{home}");
        assert!(!home.contains("(sandbox)"), "{home}");
        assert!(!home.contains("class=\"sandbox\""), "{home}");
        // Its files can still be checked.
        let uploaded = upload(&serve, "nowhere", "orders.csv", samples()).await;
        assert_eq!(uploaded.status(), StatusCode::SEE_OTHER);
        let job = location(&uploaded);
        let page = get_text(&serve, &job).await;
        assert!(page.contains("id=\"profile-problem\""), "{page}");
        assert!(!page.contains("id=\"declare\""), "{page}");
        assert!(!page.contains("id=\"sandbox\""), "{page}");
        // Declaring anyway is refused with the reason, before anything starts.
        let declared = declare(&serve, &job).await;
        assert_eq!(declared.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = declared.text().await.unwrap();
        assert!(text.contains("IT has to finish"), "{text}");
        assert!(
            !text.contains("[api]") && !text.contains("endpoint ="),
            "{text}"
        );
    });
    let job_folders: Vec<_> = std::fs::read_dir(work.path("data/jobs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(job_folders.len(), 1);
    assert!(!job_folders[0].path().join("out/run.json").exists());
}

#[test]
fn another_address_needs_the_token() {
    let work = Workdir::new();
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
    let run = work.run(&["serve", "--config-dir", "profiles", "--addr", "0.0.0.0:0"]);
    run.expect_fatal(&["DECLARE_SERVE_TOKEN", "0.0.0.0"]);
    let token = "a-long-random-secret-for-the-test";
    let serve = ServeProcess::start(&work, "0.0.0.0:0", &[("DECLARE_SERVE_TOKEN", token)]);
    let port = serve.base.rsplit(':').next().unwrap().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let without = client().get(format!("{base}/")).send().await.unwrap();
        assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
        assert!(without.text().await.unwrap().contains("name=\"token\""));
        let wrong = client()
            .get(format!("{base}/"))
            .bearer_auth("not-it")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let right = client()
            .get(format!("{base}/"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), StatusCode::OK);
        // The login form sets a cookie that later requests carry.
        let login = client()
            .post(format!("{base}/login"))
            .header("Origin", base.clone())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let with_cookie = client()
            .get(format!("{base}/"))
            .header("Cookie", cookie.split(';').next().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(with_cookie.status(), StatusCode::OK);
    });
}

#[test]
fn one_run_per_profile_at_a_time() {
    let work = Workdir::new();
    // A slow endpoint keeps the first run going.
    let (orders, _sandbox) = slow_profile(&work, 20, "300");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = std::fs::read(&orders).unwrap();
        let first = location(&upload(&serve, "slow", "a.csv", bytes.clone()).await);
        let second = location(&upload(&serve, "slow", "b.csv", bytes).await);
        assert_eq!(
            declare(&serve, &first).await.status(),
            StatusCode::SEE_OTHER
        );
        // The same file: declaring it needs the clerk's word that they mean it.
        let busy = declare_again(&serve, &second).await;
        assert_eq!(busy.status(), StatusCode::CONFLICT);
        assert!(busy.text().await.unwrap().contains("slow"));
        // Said in the clerk's language, with the running job to follow.
        let busy_zh = client()
            .post(serve.url(&format!("{second}/declare")))
            .header("Origin", serve.base.clone())
            .header("Accept-Language", "zh-CN")
            .form(&[("confirm", "yes"), ("again", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(busy_zh.status(), StatusCode::CONFLICT);
        let text = busy_zh.text().await.unwrap();
        assert!(text.contains("该配置正在申报中"), "{text}");
        assert!(text.contains(&first), "{text}");
        // Declare pressed again in a second tab of the running job: the
        // page of the run, not an error.
        let again = declare_again(&serve, &first).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&again), first);
        let done = wait_done(&serve, &first).await;
        assert_eq!(done["exit_code"], 0, "{done}");
        // Free again once the first is done.
        assert_eq!(
            declare_again(&serve, &second).await.status(),
            StatusCode::SEE_OTHER
        );
        let done = wait_done(&serve, &second).await;
        assert_eq!(done["exit_code"], 0, "{done}");
        // The ledger beside the profile knew the rows: nothing sent twice,
        // and the page counts them as declared, earlier.
        assert_eq!(done["earlier"], 20, "{done}");
        assert_eq!(
            (done["settled"].clone(), done["valid"].clone()),
            (20.into(), 20.into())
        );
        assert_eq!(done["S"], 20, "{done}");
        let text = done["text"].as_str().unwrap();
        assert!(
            text.starts_with("Finished: 20 rows declared (20 of them earlier)."),
            "{text}"
        );
    });
}

#[test]
fn a_run_cut_short_by_a_restart_resumes_from_the_page() {
    let work = Workdir::new();
    let (orders, sandbox) = slow_profile(&work, 30, "200");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let job = runtime.block_on(async {
        let bytes = std::fs::read(&orders).unwrap();
        let job = location(&upload(&first, "slow", "orders.csv", bytes).await);
        let declared = declare(&first, &job).await;
        assert_eq!(declared.status(), StatusCode::SEE_OTHER);
        // Some rows settled, the run still going.
        let progress = wait_progress(&first, &job, Duration::from_secs(60), |progress| {
            progress["settled"].as_u64().unwrap_or(0) >= 5
        })
        .await;
        assert_eq!(progress["done"], false, "{progress}");
        job
    });
    drop(first); // SIGKILL: the server and its run stop mid-way.
    let second = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime.block_on(async {
        let home = get_text(&second, "/").await;
        assert!(home.contains("interrupted: open it to resume"), "{home}");
        let page = get_text(&second, &job).await;
        assert!(page.contains("id=\"declare\""), "it can be resumed: {page}");
        let resumed = declare(&second, &job).await;
        assert_eq!(resumed.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&second, &job).await;
        assert_eq!(done["exit_code"], 0, "{done}");
    });
    // Every row once, all S; no ID with two bodies at the sandbox.
    let results = crate::common::csv_records(
        &work,
        &format!(
            "data/jobs/{}/out/results.csv",
            job.trim_start_matches("/jobs/")
        ),
    );
    assert_eq!(results.len(), 30);
    assert!(results.iter().all(|row| row["resultStatus"] == "S"));
    let stats = runtime.block_on(sandbox.stats());
    assert_eq!(stats.request_ids, 30);
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
    // After a second restart the finished run shows as finished.
    drop(second);
    let third = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime.block_on(async {
        let home = get_text(&third, "/").await;
        assert!(home.contains("finished: every row declared"), "{home}");
        let done = wait_done(&third, &job).await;
        assert_eq!(done["S"], 30, "{done}");
        let page = get_text(&third, &job).await;
        assert!(
            !page.contains("id=\"declare\""),
            "not declared twice: {page}"
        );
    });
}

#[test]
fn past_runs_from_the_ledger_and_their_customs_outcomes() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 20);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--fail-u-after",
            "0.5",
            "--seed",
            "5",
            "--customs-delay-ms",
            "0",
        ],
    );
    let config = config_for(&work, &sandbox, &[("max_attempts", "1")]);
    std::fs::create_dir_all(work.path("profiles")).unwrap();
    let profile = work.path("profiles/shop.toml");
    std::fs::copy(&config, &profile).unwrap();
    // A nightly run from the command line, with the profile's config.
    let run = work.run(&[
        "run",
        &orders,
        "--config",
        profile.to_str().unwrap(),
        "--out",
        "nightly",
    ]);
    assert_eq!(run.code, 4, "some rows unknown: {}", run.stderr);
    let out = std::fs::canonicalize(work.path("nightly")).unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let home = get_text(&serve, "/").await;
        assert!(home.contains("Past runs in the ledger — shop"), "{home}");
        // The run by its folder's name and a key, never the server's path.
        assert!(home.contains(">nightly</a>"), "{home}");
        assert!(!home.contains(&out.display().to_string()), "{home}");
        let key = format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(out.display().to_string().as_bytes())
        );
        assert!(home.contains(&format!("run={key}")), "{home}");
        // Opened: its counts and its files.
        let query = [("profile", "shop"), ("run", key.as_str())];
        let past = client()
            .get(serve.url("/past"))
            .query(&query)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(past.contains("id=\"counts\">declared "), "{past}");
        assert!(!past.contains(&out.display().to_string()), "{past}");
        assert!(
            past.contains("report.html") && past.contains("id=\"inquire\""),
            "{past}"
        );
        let report = client()
            .get(serve.url("/past"))
            .query(&[
                ("profile", "shop"),
                ("run", key.as_str()),
                ("file", "report.html"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(report.status(), StatusCode::OK);
        assert!(report.text().await.unwrap().contains("<!DOCTYPE html>"));
        // A folder named in the request is never read: only keys the ledger lists.
        for forged_run in ["/tmp", "0000000000000000", out.to_str().unwrap()] {
            let elsewhere = client()
                .get(serve.url("/past"))
                .query(&[
                    ("profile", "shop"),
                    ("run", forged_run),
                    ("file", "report.html"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND, "{forged_run}");
        }
        let forged = client()
            .post(serve.url("/inquire"))
            .header("Origin", serve.base.clone())
            .form(&[("profile", "shop"), ("run", "/etc")])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::NOT_FOUND);
        let inquired = client()
            .post(serve.url("/inquire"))
            .header("Origin", serve.base.clone())
            .form(&[("profile", "shop"), ("run", key.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(inquired.status(), StatusCode::OK);
        let page = inquired.text().await.unwrap();
        assert!(page.contains("CUSTOMS_ACCEPT_SUCCESS"), "{page}");
        assert!(
            page.contains("not settled 0"),
            "every lost answer was recorded: {page}"
        );
    });
    // The page's inquiry is recorded as a run of the ledger, as `inquire`'s is.
    let ledger = rusqlite::Connection::open(work.path("profiles/declare-batch.db")).unwrap();
    let (inquiries, without_run): (i64, i64) = ledger
        .query_row(
            "SELECT count(*), coalesce(sum(run_id IS NULL), 0) FROM inquiries",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(inquiries > 0);
    assert_eq!(without_run, 0, "inquiries recorded without a run");
    let customs = crate::common::csv_records(&work, "nightly/customs.csv");
    assert_eq!(customs.len(), 20);
    let summary: serde_json::Value = work.summary_of("nightly");
    assert_eq!(summary["results"]["U"], 0, "{summary}");
}

#[test]
fn rejected_rows_are_explained_in_the_page_language() {
    let work = Workdir::new();
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let uploaded = upload_request(&serve, "try", "orders.csv", samples())
            .header("Accept-Language", "zh-CN,zh;q=0.9")
            .send()
            .await
            .unwrap();
        let job = location(&uploaded);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert!(page.contains("校验码不符"), "{page}");
        assert!(page.contains("被拒绝的行及原因"), "{page}");
        // Read by someone else in English: the same reasons, said in
        // English (kept as codes, said when the page is drawn).
        let page = get_text_in(&serve, &job, "en").await;
        assert!(page.contains("Rejected rows and their reasons"), "{page}");
        assert!(
            page.contains("the check character does not match"),
            "{page}"
        );
        assert!(!page.contains("校验码不符"), "{page}");
        // rejected.xlsx stays in the language of the upload.
        let csv = get_text(&serve, &format!("{job}/files/rejected.csv")).await;
        assert!(csv.contains("校验码不符"), "{csv}");
    });
}

#[test]
fn progress_counts_the_jobs_valid_rows_and_the_clerk_can_stop_the_run() {
    let work = Workdir::new();
    // One request at a time, 50 ms each: about 20 rows a second.
    let (orders, _sandbox) = slow_profile(&work, 200, "50");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = std::fs::read(&orders).unwrap();
        let job = location(&upload(&serve, "slow", "orders.csv", bytes).await);
        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        let progress = wait_progress(&serve, &job, Duration::from_secs(60), |p| {
            p["eta_secs"].is_u64()
        })
        .await;
        // The whole job from the start, not the rows read so far.
        assert_eq!(progress["valid"], 200, "{progress}");
        let text = progress["text"].as_str().unwrap();
        assert!(text.contains(" of 200 rows settled"), "{text}");
        assert!(text.contains("left"), "{text}");
        // Measured from the run's start: one request at a time cannot go
        // faster than its answers come.
        assert!(progress["rate"].as_f64().unwrap() <= 25.0, "{progress}");
        // Another tab, in Chinese, sees the same run.
        let zh: serde_json::Value = client()
            .get(serve.url(&format!("{job}/progress?lang=zh-CN")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = zh["text"].as_str().unwrap();
        assert!(
            text.starts_with("已处理 ") && text.contains(" / 200 行"),
            "{text}"
        );
        let page = get_text(&serve, &job).await;
        assert!(
            page.contains("id=\"stop\""),
            "a running job offers to stop: {page}"
        );
        assert!(!page.contains("id=\"declare\""), "{page}");

        // Another site cannot stop it.
        let forged = client()
            .post(serve.url(&format!("{job}/stop")))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let stopped = client()
            .post(serve.url(&format!("{job}/stop")))
            .header("Origin", serve.base.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(stopped.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        let text = done["text"].as_str().unwrap();
        assert!(text.starts_with("Stopped: "), "{text}");
        assert!(text.contains("retry.xlsx"), "{text}");
        assert!(!text.contains("exit"), "{text}");
        let unknown = done["U"].as_u64().unwrap();
        assert!(unknown > 0, "{done}");
        assert_eq!(done["settled"], 200, "every row accounted for: {done}");
        assert_eq!(done["exit_code"], 4, "{done}");
        let retry = get_text(&serve, &format!("{job}/files/retry.csv")).await;
        assert_eq!(retry.lines().count() as u64, unknown + 1, "{retry}");
        let page = get_text(&serve, &job).await;
        assert!(!page.contains("id=\"stop\""), "{page}");
        // Excel-ready files for a CSV upload too; customs.csv only once an
        // inquiry wrote it.
        for name in ["results.xlsx", "retry.xlsx", "results.csv", "report.html"] {
            assert!(page.contains(&format!("files/{name}\"")), "{name}: {page}");
        }
        assert!(!page.contains("customs.csv"), "{page}");
        let workbook = client()
            .get(serve.url(&format!("{job}/files/results.xlsx")))
            .send()
            .await
            .unwrap();
        assert_eq!(workbook.status(), StatusCode::OK);
        let bytes = workbook.bytes().await.unwrap();
        let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        use calamine::Reader;
        let range = book.worksheet_range("results").unwrap();
        assert_eq!(range.rows().count(), 201, "the header and every valid row");
    });
}

#[test]
fn the_chosen_language_sticks() {
    let work = Workdir::new();
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let chosen = client()
            .get(serve.url("/?lang=zh-CN"))
            .header("Accept-Language", "en")
            .send()
            .await
            .unwrap();
        let cookie = chosen.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("declare_lang=zh-CN;"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        // Later pages, without ?lang= and with an English browser.
        let later = client()
            .get(serve.url("/"))
            .header("Accept-Language", "en")
            .header("Cookie", cookie.split(';').next().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(later.contains("<html lang=\"zh-CN\">"), "{later}");
        assert!(later.contains("海关申报"), "{later}");
        let english = get_text(&serve, "/").await;
        assert!(english.contains("<html lang=\"en\">"), "{english}");
        // A forged cookie or query is no language: ignored, never echoed.
        let forged = client()
            .get(serve.url("/?lang=%3Cscript%3E"))
            .header("Accept-Language", "en")
            .header("Cookie", "declare_lang=<script>alert(1)</script>")
            .send()
            .await
            .unwrap();
        assert!(forged.headers().get("set-cookie").is_none());
        let page = forged.text().await.unwrap();
        assert!(page.contains("<html lang=\"en\">"), "{page}");
        assert!(!page.contains("<script>alert"), "{page}");
    });
}

#[test]
fn the_same_file_again_is_noticed_and_the_sandbox_profile_remembers() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 12);
    work.write(
        "profiles/try.toml",
        format!("[api]\nendpoint = \"sandbox\"\n[sandbox]\npayments = \"{payments}\"\n"),
    );
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = std::fs::read(&orders).unwrap();
        let first = location(&upload(&serve, "try", "orders.csv", bytes.clone()).await);
        assert!(!get_text(&serve, &first).await.contains("id=\"identical\""));
        assert_eq!(
            declare(&serve, &first).await.status(),
            StatusCode::SEE_OTHER
        );
        let done = wait_done(&serve, &first).await;
        assert_eq!(done["S"], 12, "{done}");
        assert_eq!(done["earlier"], 0, "{done}");

        let second = location(&upload(&serve, "try", "orders.csv", bytes).await);
        let page = get_text_in(&serve, &second, "zh-CN").await;
        assert!(page.contains("id=\"identical\""), "{page}");
        assert!(page.contains("完全相同"), "{page}");
        // The first run's answers, explained in Chinese beside Alipay+'s text.
        let first_page = get_text_in(&serve, &first, "zh-CN").await;
        assert!(first_page.contains("id=\"outcomes\""), "{first_page}");
        assert!(
            first_page.contains("<td>SUCCESS</td><td>12</td><td>申报成功</td><td>Success</td>"),
            "{first_page}"
        );
        assert!(page.contains("id=\"again\""), "{page}");
        // Not without saying so.
        let refused = declare(&serve, &second).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            declare_again(&serve, &second).await.status(),
            StatusCode::SEE_OTHER
        );
        // The sandbox profile's ledger lives under --data: nothing is
        // declared a second time.
        let done = wait_done(&serve, &second).await;
        assert_eq!(done["earlier"], 12, "{done}");
        assert_eq!(done["S"], 12, "{done}");
    });
    assert!(work.path("data/sandbox-ledgers/try.db").exists());
}

#[test]
fn files_the_page_cannot_read_are_explained_in_the_clerks_language() {
    let work = Workdir::new();
    work.write("profiles/try.toml", "[api]\nendpoint = \"sandbox\"\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let header = b"paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit\n"
            .to_vec();
        for (name, bytes, needle) in [
            (
                "订单.xls",
                b"\xd0\xcf\x11\xe0".to_vec(),
                "旧版 Excel 工作簿（.xls）",
            ),
            ("orders.numbers", b"PK".to_vec(), "Numbers 文稿"),
            ("orders.pdf", b"%PDF-1.4".to_vec(), "PDF 文件"),
            ("empty.csv", Vec::new(), "是空文件"),
            ("header-only.csv", header, "只有表头（第 1 行）"),
        ] {
            let answer = upload_request(&serve, "try", name, bytes)
                .header("Accept-Language", "zh-CN")
                .send()
                .await
                .unwrap();
            assert!(
                answer.status().is_client_error(),
                "{name}: {}",
                answer.status()
            );
            let page = answer.text().await.unwrap();
            assert!(page.contains(needle), "{name}: {page}");
            assert!(page.contains("<html lang=\"zh-CN\">"), "{name}: {page}");
            for jargon in ["[columns]", "header_row", "/data/", "exit"] {
                assert!(!page.contains(jargon), "{name}: {jargon} in {page}");
            }
        }
        // Nothing is kept of a refused upload.
        let jobs: Vec<_> = std::fs::read_dir(work.path("data/jobs")).unwrap().collect();
        assert!(jobs.is_empty(), "{jobs:?}");
    });
}

#[test]
fn a_file_declared_from_the_command_line_is_noticed_on_the_page() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 5);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    std::fs::create_dir_all(work.path("profiles")).unwrap();
    let profile = work.path("profiles/shop.toml");
    std::fs::copy(&config, &profile).unwrap();
    let nightly = work.run(&["run", &orders, "--config", profile.to_str().unwrap()]);
    assert_eq!(nightly.code, 0, "{}", nightly.stderr);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = std::fs::read(&orders).unwrap();
        let job = location(&upload(&serve, "shop", "orders.csv", bytes).await);
        let page = get_text(&serve, &job).await;
        assert!(page.contains("id=\"identical\""), "{page}");
        assert_eq!(
            declare(&serve, &job).await.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            declare_again(&serve, &job).await.status(),
            StatusCode::SEE_OTHER
        );
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["earlier"], 5, "answered from the ledger: {done}");
    });
}
