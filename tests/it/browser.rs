//! The web page in a real browser: headless Chromium from Debian's
//! packages, driven over WebDriver (chromedriver) with fantoccini. A
//! finance clerk's path: upload `samples/orders.xlsx` through the file
//! input, see the rejected rows, declare to the sandbox, wait for the run
//! and find its S count on the page. Screenshots of each page are taken;
//! with `DECLARE_UPDATE_SCREENSHOTS=1` they replace the README's, in
//! `docs/screenshots/`. Where Chromium or its driver is
//! missing the test fails (scripts/test.sh installs them); it never skips.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::{DEADLINE, SandboxProcess, Workdir, config_for, orders};
use crate::serve::ServeProcess;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "a-long-random-secret-for-the-browser-test";

/// chromedriver on a loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install Debian's chromium and chromium-driver \
                 (scripts/test.sh does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Driver { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = driver.child.try_wait().expect("poll chromedriver") {
                panic!("chromedriver exited: {status}");
            }
            assert!(started.elapsed() < DEADLINE, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    async fn browser(&self, profile_dir: &Path) -> Client {
        // Two crypto providers are built in (ring, aws-lc-rs); say which.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1200,1000",
                    format!("--user-data-dir={}", profile_dir.display()),
                ],
            }),
        );
        ClientBuilder::rustls()
            .expect("a TLS connector")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots go: the README's folder when
/// `DECLARE_UPDATE_SCREENSHOTS=1` asks to refresh them, else the build's
/// scratch folder, so that a test run leaves the working tree as it was.
fn screenshots() -> PathBuf {
    let folder = if std::env::var_os("DECLARE_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    };
    std::fs::create_dir_all(&folder).expect("the screenshots folder");
    folder
}

/// The element once the page shows it, waiting at most [`DEADLINE`].
async fn wait_for(
    browser: &Client,
    locator: Locator<'_>,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    browser.wait().at_most(DEADLINE).for_element(locator).await
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is no PNG");
    std::fs::write(screenshots().join(name), png).expect("write the screenshot");
}

#[test]
fn a_clerk_uploads_declares_and_sees_the_outcome_in_chromium() {
    let work = Workdir::new();
    work.write("profiles/try-it.toml", "[api]\nendpoint = \"sandbox\"\n");
    // Last night's run of a real profile, which its ledger lists.
    let (orders, payments) = orders(&work, 20);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let shop = work.path("profiles/shop.toml");
    std::fs::copy(config_for(&work, &sandbox, &[]), &shop).unwrap();
    let nightly = work.run(&["run", &orders, "--config", shop.to_str().unwrap()]);
    assert_eq!(nightly.code, 0, "{}", nightly.stderr);
    // With a token, the page asks for it once.
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[("DECLARE_SERVE_TOKEN", TOKEN)]);
    let driver = Driver::start();
    let workbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/orders.xlsx");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = driver.browser(&work.path("chromium")).await;
        let outcome = async {
            browser.goto(&serve.url("/?lang=en")).await?;
            let token = wait_for(&browser, Locator::Css("input[name='token']")).await?;
            screenshot(&browser, "login.png").await;
            token.send_keys(TOKEN).await?;
            browser
                .find(Locator::Css("form[action='/login'] button"))
                .await?
                .click()
                .await?;
            wait_for(&browser, Locator::Id("file")).await?;
            browser.goto(&serve.url("/?lang=en")).await?;
            let home = browser.current_url().await?.to_string();
            screenshot(&browser, "home.png").await;
            browser
                .find(Locator::Id("profile"))
                .await?
                .select_by_value("try-it")
                .await?;
            let file = browser.find(Locator::Id("file")).await?;
            file.send_keys(&workbook.display().to_string()).await?;
            browser.find(Locator::Id("check")).await?.click().await?;
            // The validation: the rejected rows with their reasons.
            let rejected = wait_for(&browser, Locator::Id("rejected-rows")).await?;
            let reasons = rejected.text().await?;
            assert!(reasons.contains("HANGZHOU"), "{reasons}");
            let valid = browser.find(Locator::Id("valid")).await?.text().await?;
            assert_eq!(valid, "20");
            // Which sheet and header row it read, said on the page.
            let read_from = browser.find(Locator::Id("read-from")).await?.text().await?;
            assert!(
                read_from.starts_with("Read from the sheet «"),
                "{read_from}"
            );
            assert!(read_from.contains("column headers on row "), "{read_from}");
            screenshot(&browser, "validation.png").await;
            browser.find(Locator::Id("confirm")).await?.click().await?;
            let button = browser.find(Locator::Id("declare")).await?;
            assert_eq!(button.text().await?, "Declare 20 rows to embedded-sandbox");
            button.click().await?;
            let job = browser.current_url().await?.to_string();
            // The run, followed live until it is done.
            wait_for(&browser, Locator::Css("#progress[data-done='yes']")).await?;
            let progress = browser.find(Locator::Id("progress")).await?.text().await?;
            assert!(
                progress.starts_with("Finished: 17 rows declared"),
                "{progress}"
            );
            assert!(
                !progress.contains("exit"),
                "no exit codes on the page: {progress}"
            );
            screenshot(&browser, "progress.png").await;
            let report = browser.find(Locator::LinkText("report.html")).await?;
            report.click().await?;
            let heading = wait_for(&browser, Locator::Css("h1")).await?.text().await?;
            assert_eq!(heading, "declare-batch report");
            screenshot(&browser, "report.png").await;
            // Last night's run among the shop profile's past runs, opened
            // and asked about.
            browser.goto(&serve.url("/?lang=en")).await?;
            browser
                .find(Locator::Css("table.past a"))
                .await?
                .click()
                .await?;
            let counts = wait_for(&browser, Locator::Id("counts"))
                .await?
                .text()
                .await?;
            assert_eq!(counts, "declared 20 · failed 0 · not settled 0");
            screenshot(&browser, "past-run.png").await;
            let past = browser.current_url().await?.to_string();
            // Switching language keeps the past run's page.
            browser
                .find(Locator::Css("nav a[data-lang='zh-CN']"))
                .await?
                .click()
                .await?;
            let counts_zh = wait_for(&browser, Locator::Id("counts"))
                .await?
                .text()
                .await?;
            assert!(counts_zh.starts_with("已申报 20"), "{counts_zh}");
            // And back: the choice is kept by a cookie.
            browser
                .find(Locator::Css("nav a[data-lang='en']"))
                .await?
                .click()
                .await?;
            wait_for(&browser, Locator::Id("counts")).await?;
            browser.find(Locator::Id("inquire")).await?.click().await?;
            let inquiry = wait_for(&browser, Locator::Id("inquiry"))
                .await?
                .text()
                .await?;
            assert!(inquiry.contains("not known to Alipay+ 0"), "{inquiry}");
            // In Chinese, drawn with a CJK font.
            browser.goto(&serve.url("/?lang=zh-CN")).await?;
            let title = browser.find(Locator::Css("h1")).await?.text().await?;
            assert_eq!(title, "海关申报");
            // Times in the clerk's zone and language, by the page's script.
            let created = browser
                .find(Locator::Css("#jobs time"))
                .await?
                .text()
                .await?;
            assert!(
                created.contains("年") && !created.contains('T'),
                "{created}"
            );
            screenshot(&browser, "home-zh.png").await;
            // On a phone, 390 px wide: no page scrolls sideways.
            browser.set_window_size(390, 844).await?;
            for page in [home.clone(), past.clone(), job.clone()] {
                browser.goto(&page).await?;
                let widths = browser
                    .execute(
                        "return [document.documentElement.scrollWidth, window.innerWidth];",
                        vec![],
                    )
                    .await?;
                let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
                assert!(inner <= 400, "the window is a phone's: {inner}");
                assert!(
                    scroll <= inner,
                    "{page} scrolls sideways: {scroll} > {inner}"
                );
            }
            screenshot(&browser, "job-phone.png").await;
            Ok::<(), fantoccini::error::CmdError>(())
        }
        .await;
        let _ = browser.close().await;
        outcome.expect("the page works in Chromium");
    });
}
