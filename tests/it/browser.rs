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
        self.browser_in(profile_dir, None, None).await
    }

    /// A browser whose language is `language` (as a clerk's Chromium asks
    /// for pages) and whose downloads go to `downloads`.
    async fn browser_in(
        &self,
        profile_dir: &Path,
        language: Option<&str>,
        downloads: Option<&Path>,
    ) -> Client {
        // The build's one crypto provider, for fantoccini's rustls too.
        declare_batch::protocol::use_aws_lc_for_tls();
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
                    format!("--lang={}", language.unwrap_or("en-US")),
                ],
                "prefs": {
                    "intl.accept_languages": language.unwrap_or("en-US"),
                    "download.default_directory": downloads
                        .map(|folder| folder.display().to_string())
                        .unwrap_or_default(),
                    "download.prompt_for_download": false,
                },
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
            check_file(&browser, "try-it", &workbook).await?;
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

/// An ERP export as a Chinese finance team has it: an instructions sheet,
/// a title row, Chinese headers (the payment ID's renamed to one the
/// profile does not know), `rows` orders with amounts in yuan, two of them
/// wrong (rows 5 and 9: a customs code that does not exist, an amount that
/// is not one).
fn erp_workbook(path: &Path, rows: usize) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook
        .add_worksheet()
        .set_name("填写说明")
        .unwrap()
        .write(0, 0, "本表由 ERP 导出，请勿修改表头")
        .unwrap();
    let sheet = workbook.add_worksheet().set_name("订单").unwrap();
    sheet.write(0, 0, "跨境订单导出 2026-12-04").unwrap();
    let headers = [
        "支付凭证编码",
        "报关流水号",
        "海关",
        "商户备案号",
        "商户名称",
        "申报金额(元)",
        "是否拆单",
    ];
    for (column, header) in headers.iter().enumerate() {
        sheet.write(1, column as u16, *header).unwrap();
    }
    for n in 0..rows {
        let row = n as u32 + 2;
        let customs = if n == 2 { "ZONGSHUX" } else { "ZONGSHU" };
        sheet.write(row, 0, format!("P{n}")).unwrap();
        sheet.write(row, 1, format!("D{n}")).unwrap();
        sheet.write(row, 2, customs).unwrap();
        sheet.write(row, 3, "M1").unwrap();
        sheet.write(row, 4, "Shop").unwrap();
        if n == 6 {
            sheet.write(row, 5, "一元").unwrap();
        } else {
            sheet.write(row, 5, 1.0).unwrap();
        }
        sheet.write(row, 6, "否").unwrap();
    }
    workbook.save(path).unwrap();
}

/// On the home page: chooses `profile`, gives the file input `file` and
/// presses "Check the file", as a clerk does.
async fn check_file(
    browser: &Client,
    profile: &str,
    file: &Path,
) -> Result<(), fantoccini::error::CmdError> {
    browser
        .find(Locator::Id("profile"))
        .await?
        .select_by_value(profile)
        .await?;
    browser
        .find(Locator::Id("file"))
        .await?
        .send_keys(&file.display().to_string())
        .await?;
    browser.find(Locator::Id("check")).await?.click().await
}

/// Whether the page now shown scrolls sideways in the browser's window.
async fn scrolls_sideways(browser: &Client) -> Result<bool, fantoccini::error::CmdError> {
    let widths = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await?;
    Ok(widths[0].as_u64().unwrap() > widths[1].as_u64().unwrap())
}

/// Waits until the page no longer shows `css` (a row fixed and checked
/// again leaves the grid), at most [`DEADLINE`].
async fn wait_gone(browser: &Client, css: &str) -> Result<(), fantoccini::error::CmdError> {
    let started = Instant::now();
    while browser.find(Locator::Css(css)).await.is_ok() {
        assert!(started.elapsed() < DEADLINE, "{css} is still shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The file `name` once Chromium has finished downloading it.
fn downloaded(folder: &Path, name: &str) -> Vec<u8> {
    let started = Instant::now();
    loop {
        let path = folder.join(name);
        let partial = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|entry| entry.file_name().to_string_lossy().ends_with(".crdownload"))
            })
            .unwrap_or(false);
        if path.exists() && !partial {
            return std::fs::read(path).unwrap();
        }
        assert!(started.elapsed() < DEADLINE, "{name} was not downloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_chinese_clerk_maps_fixes_declares_and_reads_back_results_in_chromium() {
    let work = Workdir::new();
    const ROWS: usize = 60;
    let (_, payments) = orders(&work, ROWS);
    // The profile IT wrote for the ERP's headers, before the ERP renamed
    // the payment ID's column; 10 declarations a second, so that the run
    // lasts long enough to follow.
    work.write(
        "profiles/erp.toml",
        format!(
            "[api]\nendpoint = \"sandbox\"\n[run]\nrate_per_sec = 10\n[input]\namount_unit = \"yuan\"\n\
             [columns]\npaymentRequestId = \"支付单号\"\ncustomsDeclarationRequestId = \"报关流水号\"\n\
             \"customs.customsCode\" = \"海关\"\n\"merchantCustomsInfo.merchantCustomsCode\" = \"商户备案号\"\n\
             \"merchantCustomsInfo.merchantCustomsName\" = \"商户名称\"\n\"declarationAmount.value\" = \"申报金额(元)\"\n\
             isSplit = \"是否拆单\"\n[sandbox]\npayments = \"{payments}\"\n"
        ),
    );
    let export = work.path("订单导出.xlsx");
    erp_workbook(&export, ROWS);
    let header_only = work.write("headers.csv", "支付单号,报关流水号,海关\n");
    let wrong_kind = work.write("订单.xls", "\u{1}not a workbook");
    let downloads = work.path("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let driver = Driver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = driver
            .browser_in(&work.path("chromium-zh"), Some("zh-CN"), Some(&downloads))
            .await;
        let outcome = async {
            // Files the page cannot read, explained in Chinese.
            for (file, needle, shot) in [
                (&wrong_kind, "旧版 Excel 工作簿", "zh-wrong-kind.png"),
                (&header_only, "只有表头（第 1 行）", "zh-header-only.png"),
            ] {
                browser.goto(&serve.url("/")).await?;
                check_file(&browser, "erp", file).await?;
                let said = wait_for(&browser, Locator::Id("error")).await?.text().await?;
                assert!(said.contains(needle), "{said}");
                screenshot(&browser, shot).await;
            }

            // The export: its renamed column is mapped on the page.
            browser.goto(&serve.url("/")).await?;
            let title = browser.find(Locator::Css("h1")).await?.text().await?;
            assert_eq!(title, "海关申报");
            check_file(&browser, "erp", &export).await?;
            let missing = wait_for(&browser, Locator::Id("columns-missing"))
                .await?
                .text()
                .await?;
            assert!(missing.contains("支付单号"), "{missing}");
            let read_from = browser.find(Locator::Id("read-from")).await?.text().await?;
            assert!(read_from.contains("«订单»"), "{read_from}");
            assert!(read_from.contains("表头所在行 2"), "{read_from}");
            screenshot(&browser, "zh-mapping.png").await;
            browser.set_window_size(390, 844).await?;
            assert!(!scrolls_sideways(&browser).await?, "the mapping page");
            browser.set_window_size(1200, 1000).await?;
            browser
                .find(Locator::Id("map-paymentRequestId"))
                .await?
                .select_by_label("支付凭证编码")
                .await?;
            browser.find(Locator::Id("use-columns")).await?.click().await?;

            // The validation: 58 valid, 2 rejected, said in Chinese.
            let valid = wait_for(&browser, Locator::Id("valid")).await?.text().await?;
            assert_eq!(valid, "58");
            let reasons = browser
                .find(Locator::Id("rejected-rows"))
                .await?
                .text()
                .await?;
            assert!(reasons.contains("ZONGSHUX"), "{reasons}");
            screenshot(&browser, "zh-validation.png").await;

            // Two cells fixed in the grid, each checked again on the server.
            browser.find(Locator::Id("fix-link")).await?.click().await?;
            wait_for(&browser, Locator::Id("grid")).await?;
            let kinds = browser.find(Locator::Id("kinds")).await?.text().await?;
            assert!(kinds.contains("全部问题 (2)"), "{kinds}");
            screenshot(&browser, "zh-grid.png").await;
            browser.set_window_size(390, 844).await?;
            assert!(!scrolls_sideways(&browser).await?, "the grid");
            screenshot(&browser, "zh-grid-phone.png").await;
            browser.set_window_size(1200, 1000).await?;
            for (row, column, value) in [(5, 2, "ZONGSHU"), (9, 5, "1.00")] {
                let cell = browser
                    .find(Locator::Css(&format!("#row-{row} input[name='c{column}']")))
                    .await?;
                cell.clear().await?;
                cell.send_keys(value).await?;
                browser
                    .find(Locator::Css(&format!("#row-{row} button.save-row")))
                    .await?
                    .click()
                    .await?;
                wait_gone(&browser, &format!("#row-{row}")).await?;
            }
            let left = wait_for(&browser, Locator::Id("none-left")).await?.text().await?;
            assert_eq!(left, "已没有被拒绝的行。");
            let valid = browser.find(Locator::Id("valid")).await?.text().await?;
            assert_eq!(valid, "60");

            // Declared: progress against the job's 60 rows, with an ETA.
            browser.find(Locator::Id("back-to-job")).await?.click().await?;
            browser.find(Locator::Id("confirm")).await?.click().await?;
            let button = browser.find(Locator::Id("declare")).await?;
            assert_eq!(button.text().await?, "申报 60 行到 embedded-sandbox");
            button.click().await?;
            let job = browser.current_url().await?;
            let progress_url = format!("{}/progress", job.path());
            let (eta, seen_at) = loop {
                let line = wait_for(&browser, Locator::Id("progress")).await?.text().await?;
                let figures = browser
                    .execute_async(
                        "const done = arguments[1]; fetch(arguments[0]).then(r => r.json()).then(done);",
                        vec![serde_json::json!(progress_url)],
                    )
                    .await?;
                if let Some(eta) = figures["eta_secs"].as_u64()
                    && figures["settled"].as_u64().unwrap_or(0) >= 15
                {
                    assert_eq!(figures["valid"], 60, "{figures}");
                    if line.contains("预计还需") {
                        screenshot(&browser, "zh-progress.png").await;
                        break (eta, Instant::now());
                    }
                }
                assert!(figures["done"] != true, "the run ended before its ETA was seen");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            wait_for(&browser, Locator::Css("#progress[data-done='yes']")).await?;
            let truth = seen_at.elapsed().as_secs_f64().max(1.0);
            let eta = (eta as f64).max(1.0);
            assert!(
                eta <= truth * 2.0 + 1.0 && truth <= eta * 2.0 + 1.0,
                "the ETA said {eta} s, the run took {truth:.1} s more"
            );
            let done = browser.find(Locator::Id("progress")).await?.text().await?;
            assert!(done.starts_with("完成：60 行已申报"), "{done}");
            screenshot(&browser, "zh-done.png").await;
            browser.set_window_size(390, 844).await?;
            assert!(!scrolls_sideways(&browser).await?, "the finished job");
            browser.set_window_size(1200, 1000).await?;

            // results.xlsx downloaded and read back: every row, IDs as text.
            browser.find(Locator::LinkText("results.xlsx")).await?.click().await?;
            let bytes = downloaded(&downloads, "results.xlsx");
            let path = work.write("read-back.xlsx", bytes);
            use calamine::Reader;
            let mut read_back: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
            let sheet = read_back.worksheet_range_at(0).unwrap().unwrap();
            let rows: Vec<_> = sheet.rows().collect();
            assert_eq!(rows.len(), 61, "a header and 60 rows");
            let header: Vec<String> = rows[0].iter().map(|cell| cell.to_string()).collect();
            let id = header.iter().position(|h| h == "paymentRequestId").unwrap();
            let status = header.iter().position(|h| h == "resultStatus").unwrap();
            assert!(header.iter().any(|h| h == "declarationAmountYuan"), "{header:?}");
            assert!(rows[1..].iter().all(|row| row[status] == "S"));
            assert!(matches!(rows[1][id], calamine::Data::String(_)), "{:?}", rows[1][id]);
            // The run's report in the clerk's language.
            browser.find(Locator::LinkText("report.html")).await?.click().await?;
            let heading = wait_for(&browser, Locator::Css("h1")).await?.text().await?;
            assert_eq!(heading, "declare-batch 报告");
            Ok::<(), fantoccini::error::CmdError>(())
        }
        .await;
        let _ = browser.close().await;
        outcome.expect("the clerk's path works in Chromium, in Chinese");
    });
}
