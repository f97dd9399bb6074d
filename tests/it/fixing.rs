//! The page's way to the Declare button without a terminal or Excel, over
//! HTTP against the real binary: a renamed column mapped on the page (and
//! remembered for the next export with those headers), rejected rows
//! corrected in the grid and by find-and-replace (each re-checked with
//! every rule, then declared with the others), the sheet of a workbook
//! with orders on two sheets, and a profile's pinned sheet that is
//! missing.

use reqwest::StatusCode;

use crate::common::{Workdir, orders};
use crate::serve::{ServeProcess, client, declare, get_text_in, location, upload, wait_done};

/// A sandbox profile `try` that knows the payments of `payments`.
fn sandbox_profile(work: &Workdir, payments: &str) {
    work.write(
        "profiles/try.toml",
        format!("[api]\nendpoint = \"sandbox\"\n[sandbox]\npayments = \"{payments}\"\n"),
    );
}

/// Posts a form of the page to `path`.
async fn post_form(serve: &ServeProcess, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(serve.url(path))
        .header("Origin", serve.base.clone())
        .header("Accept-Language", "zh-CN")
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A file of a job (`/jobs/ID`), as text.
async fn job_file(serve: &ServeProcess, job: &str, name: &str) -> String {
    client()
        .get(serve.url(&format!("{job}/files/{name}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A job's progress, as the page's script reads it.
async fn progress_of(serve: &ServeProcess, job: &str) -> serde_json::Value {
    client()
        .get(serve.url(&format!("{job}/progress")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The number in the element with `id` of a page (`<b id="valid">12</b>`).
fn count_in(page: &str, id: &str) -> u64 {
    let start = page
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no {id} in {page}"))
        + id.len()
        + 6;
    page[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// The orders of `orders()` with the payment ID's column headed `PayRef`,
/// a header neither the profile nor `init` knows.
fn renamed(orders: &str) -> Vec<u8> {
    std::fs::read_to_string(orders)
        .unwrap()
        .replacen("paymentRequestId", "PayRef", 1)
        .into_bytes()
}

#[test]
fn a_renamed_column_is_mapped_on_the_page_and_remembered() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 6);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let job = location(&upload(&serve, "try", "orders.csv", renamed(&orders)).await);
        // The job page sends the clerk to the mapping first.
        let answer = client().get(serve.url(&job)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&answer), format!("{job}/columns"));
        let page = get_text_in(&serve, &format!("{job}/columns"), "zh-CN").await;
        assert!(page.contains("匹配列"), "{page}");
        // The missing field by the clerk's name, the file's headers offered
        // with what is under them, the known ones proposed.
        assert!(page.contains("id=\"columns-missing\""), "{page}");
        assert!(page.contains("支付单号"), "{page}");
        assert!(
            page.contains("<option value=\"0\">PayRef</option>"),
            "{page}"
        );
        assert!(
            page.contains("P0 · P1 · P2") || page.contains("D0 · D1 · D2"),
            "{page}"
        );
        assert!(
            page.contains("<option value=\"1\" selected>customsDeclarationRequestId</option>"),
            "{page}"
        );
        for jargon in ["[columns]", "header_row", "/data/"] {
            assert!(!page.contains(jargon), "{jargon} in {page}");
        }

        // A header chosen twice is refused, saying which.
        let twice = post_form(
            &serve,
            &format!("{job}/columns"),
            &mapping(&[("paymentRequestId", "1")]),
        )
        .await;
        assert_eq!(twice.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let twice = twice.text().await.unwrap();
        assert!(twice.contains("id=\"columns-twice\""), "{twice}");

        let mapped = post_form(
            &serve,
            &format!("{job}/columns"),
            &mapping(&[("paymentRequestId", "0")]),
        )
        .await;
        assert_eq!(mapped.status(), StatusCode::SEE_OTHER);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 6, "{page}");
        assert!(page.contains("id=\"declare\""), "{page}");

        // The next export with the same headers goes straight through.
        let next = location(&upload(&serve, "try", "next.csv", renamed(&orders)).await);
        let answer = client().get(serve.url(&next)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "asked again");
        let page = answer.text().await.unwrap();
        assert_eq!(count_in(&page, "valid"), 6, "{page}");

        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["S"], 6, "{done}");
    });
}

/// The mapping form as the page posts it: the fields of `orders()` at
/// their columns, with `changes` over them.
fn mapping<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("paymentRequestId", ""),
        ("customsDeclarationRequestId", "1"),
        ("customs.customsCode", "2"),
        ("merchantCustomsInfo.merchantCustomsCode", "3"),
        ("merchantCustomsInfo.merchantCustomsName", "4"),
        ("declarationAmount.value", "5"),
        ("isSplit", "6"),
    ];
    for (field, column) in changes {
        form.retain(|(name, _)| name != field);
        form.push((field, column));
    }
    form
}

#[test]
fn rejected_rows_are_fixed_in_the_grid_and_declared_with_the_others() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 8);
    sandbox_profile(&work, &payments);
    // Rows 3 and 4 (P1, P2) with a customs code that does not exist, row
    // 5 (P3) with an amount that is not one.
    let text = std::fs::read_to_string(&orders)
        .unwrap()
        .replace("P1,D1,ZONGSHU", "P1,D1,ZONGSHUX")
        .replace("P2,D2,ZONGSHU", "P2,D2,ZONGSHUX")
        .replace("P3,D3,ZONGSHU,M1,Shop,100", "P3,D3,ZONGSHU,M1,Shop,1o0");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let job = location(&upload(&serve, "try", "orders.csv", text.into_bytes()).await);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 5, "{page}");
        assert!(page.contains("id=\"fix-link\""), "{page}");

        let grid = get_text_in(&serve, &format!("{job}/fix"), "zh-CN").await;
        assert!(grid.contains("修正被拒绝的行"), "{grid}");
        // Grouped by kind, with counts; the bad cells marked, in the
        // clerk's own headers.
        assert!(grid.contains("id=\"kinds\""), "{grid}");
        assert!(grid.contains("(2)</li>"), "{grid}");
        assert!(grid.contains("<th>customs.customsCode</th>"), "{grid}");
        assert!(grid.contains("id=\"row-3\""), "{grid}");
        assert!(grid.contains("class=\"bad\""), "{grid}");
        assert!(grid.contains("value=\"ZONGSHUX\""), "{grid}");
        // The filter by kind shows the rows of that kind only.
        let kind = grid
            .split("href=\"/jobs/")
            .filter_map(|rest| rest.split_once('"').map(|(href, _)| href))
            .find(|href| href.contains("kind=") && href.contains("customsCode"))
            .unwrap_or_else(|| panic!("no kind link in {grid}"))
            .replace("&amp;", "&");
        let only = get_text_in(&serve, &format!("/jobs/{kind}"), "zh-CN").await;
        assert!(only.contains("id=\"row-3\""), "{only}");
        assert!(!only.contains("id=\"row-5\""), "{only}");

        // One cell fixed in the grid: checked again, the row joins the valid.
        let fixed = post_form(
            &serve,
            &format!("{job}/fix"),
            &[("row", "5"), ("c5", "100"), ("kind", ""), ("page", "0")],
        )
        .await;
        assert_eq!(fixed.status(), StatusCode::SEE_OTHER);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 6, "{page}");
        // A fix that is still wrong stays rejected, with its new reason.
        post_form(
            &serve,
            &format!("{job}/fix"),
            &[("row", "3"), ("c2", "NOWHERE")],
        )
        .await;
        let grid = get_text_in(&serve, &format!("{job}/fix"), "zh-CN").await;
        assert!(grid.contains("value=\"NOWHERE\""), "{grid}");
        // Find and replace in the column fixes both at once.
        let replaced = post_form(
            &serve,
            &format!("{job}/replace"),
            &[("column", "2"), ("find", "NOWHERE"), ("replace", "ZONGSHU")],
        )
        .await;
        assert_eq!(replaced.status(), StatusCode::SEE_OTHER);
        post_form(
            &serve,
            &format!("{job}/replace"),
            &[
                ("column", "2"),
                ("find", "ZONGSHUX"),
                ("replace", "ZONGSHU"),
            ],
        )
        .await;
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 8, "{page}");
        assert_eq!(count_in(&page, "rejected"), 0, "{page}");
        // The upload itself is unchanged; the corrections are beside it.
        let input = std::fs::read_dir(work.path("data/jobs"))
            .unwrap()
            .flatten()
            .map(|entry| entry.path().join("input.csv"))
            .next()
            .unwrap();
        assert!(std::fs::read_to_string(input).unwrap().contains("ZONGSHUX"));

        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["S"], 8, "{done}");
        // Declared, the file can no longer be changed.
        let late = post_form(&serve, &format!("{job}/fix"), &[("row", "3"), ("c2", "X")]).await;
        assert_eq!(late.status(), StatusCode::CONFLICT);
        let results = job_file(&serve, &job, "results.csv").await;
        assert!(
            results.contains("\n4,P2,D2,,ZONGSHU,100,S,SUCCESS"),
            "{results}"
        );
    });
}

/// A workbook with orders on the sheets `sheets` (an instructions sheet
/// first), `rows` orders on each.
fn workbook(work: &Workdir, sheets: &[&str], rows: usize) -> Vec<u8> {
    let sheets: Vec<(&str, usize)> = sheets.iter().map(|sheet| (*sheet, rows)).collect();
    workbook_of(work, true, &sheets)
}

/// A workbook whose sheets have these numbers of orders under the
/// canonical headers (P0, P1 … across the sheets), after an instructions
/// sheet when `instructions`.
fn workbook_of(work: &Workdir, instructions: bool, sheets: &[(&str, usize)]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    if instructions {
        workbook
            .add_worksheet()
            .set_name("说明")
            .unwrap()
            .write(0, 0, "本工作簿为订单导出")
            .unwrap();
    }
    let mut n = 0;
    for (name, rows) in sheets {
        let sheet = workbook.add_worksheet().set_name(*name).unwrap();
        for (column, header) in [
            "paymentRequestId",
            "customsDeclarationRequestId",
            "customs.customsCode",
            "merchantCustomsInfo.merchantCustomsCode",
            "merchantCustomsInfo.merchantCustomsName",
            "declarationAmount.value",
            "isSplit",
        ]
        .iter()
        .enumerate()
        {
            sheet.write(0, column as u16, *header).unwrap();
        }
        for row in 0..*rows {
            let cells = [
                format!("P{n}"),
                format!("D{n}"),
                "ZONGSHU".into(),
                "M1".into(),
                "Shop".into(),
                "100".into(),
                "false".into(),
            ];
            for (column, cell) in cells.iter().enumerate() {
                sheet.write(row as u32 + 1, column as u16, cell).unwrap();
            }
            n += 1;
        }
    }
    let path = work.path("orders.xlsx");
    workbook.save(&path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn a_workbook_with_orders_on_two_sheets_asks_which() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 10);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = workbook(&work, &["一月", "二月"], 3);
        let job = location(&upload(&serve, "try", "orders.xlsx", bytes).await);
        let answer = client().get(serve.url(&job)).send().await.unwrap();
        assert_eq!(location(&answer), format!("{job}/sheet"));
        let page = get_text_in(&serve, &format!("{job}/sheet"), "zh-CN").await;
        assert!(page.contains("id=\"sheet-several\""), "{page}");
        assert!(page.contains("value=\"一月\""), "{page}");
        assert!(page.contains("value=\"二月\""), "{page}");
        // The instructions sheet has no orders: it is not offered.
        assert!(!page.contains("value=\"说明\""), "{page}");
        // A sheet the workbook does not have is refused.
        let wrong = post_form(&serve, &format!("{job}/sheet"), &[("sheet", "三月")]).await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        post_form(&serve, &format!("{job}/sheet"), &[("sheet", "二月")]).await;
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert!(page.contains("«二月»"), "{page}");
        assert_eq!(count_in(&page, "valid"), 3, "{page}");
        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["S"], 3, "{done}");
        let results = job_file(&serve, &job, "results.csv").await;
        // The second sheet's orders, P3 to P5.
        assert!(results.contains(",P3,D3,,ZONGSHU,100,S,"), "{results}");
        assert!(!results.contains(",P0,D0,"), "{results}");
    });
}

#[test]
fn a_profiles_pinned_sheet_that_is_missing_offers_the_sheets_there_are() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 10);
    work.write(
        "profiles/try.toml",
        format!(
            "[api]\nendpoint = \"sandbox\"\n[input]\nsheet = \"Orders\"\n[sandbox]\npayments = \"{payments}\"\n"
        ),
    );
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = workbook(&work, &["订单"], 4);
        let job = location(&upload(&serve, "try", "orders.xlsx", bytes).await);
        let page = get_text_in(&serve, &format!("{job}/sheet"), "zh-CN").await;
        assert!(page.contains("id=\"sheet-missing\""), "{page}");
        assert!(page.contains("«Orders»"), "{page}");
        assert!(page.contains("value=\"订单\""), "{page}");
        assert!(page.contains("value=\"说明\""), "{page}");
        post_form(&serve, &format!("{job}/sheet"), &[("sheet", "订单")]).await;
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 4, "{page}");
    });
}

#[test]
fn two_thousand_rows_with_one_wrong_code_are_one_kind_fixed_by_one_replace() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 2010);
    sandbox_profile(&work, &payments);
    let mut text = String::new();
    for (index, line) in std::fs::read_to_string(&orders)
        .unwrap()
        .lines()
        .enumerate()
    {
        // Rows 2 to 2001: the first 2,000 orders.
        if (1..=2000).contains(&index) {
            text.push_str(&line.replacen(",ZONGSHU,", ",ZONGSHUX,", 1));
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let job = location(&upload(&serve, "try", "orders.csv", text.into_bytes()).await);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 10, "{page}");
        assert_eq!(count_in(&page, "rejected"), 2000, "{page}");
        // The list says how much of it is shown, and the Declare button
        // comes before it, not 2,000 rows down.
        assert!(page.contains("500 / 2000"), "{page}");
        let button = page.find("id=\"declare-form\"").expect("a Declare button");
        let list = page.find("id=\"rejected-rows\"").expect("the list");
        assert!(button < list, "{page}");

        // One kind, 2,000 rows, paged.
        let grid = get_text_in(&serve, &format!("{job}/fix"), "zh-CN").await;
        assert!(grid.contains("(2000)</li>"), "{grid}");
        assert!(grid.contains("id=\"page-note\""), "{grid}");
        assert!(grid.contains("id=\"next\""), "{grid}");
        assert_eq!(
            grid.matches("class=\"save-row\"").count(),
            50,
            "a page at a time"
        );
        let second = get_text_in(&serve, &format!("{job}/fix?page=1"), "zh-CN").await;
        assert!(second.contains("id=\"row-52\""), "{second}");
        assert!(second.contains("id=\"previous\""), "{second}");

        // One replacement fixes them all.
        let replaced = post_form(
            &serve,
            &format!("{job}/replace"),
            &[
                ("column", "2"),
                ("find", "ZONGSHUX"),
                ("replace", "ZONGSHU"),
            ],
        )
        .await;
        assert_eq!(replaced.status(), StatusCode::SEE_OTHER);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 2010, "{page}");
        assert_eq!(count_in(&page, "rejected"), 0, "{page}");
        let grid = get_text_in(&serve, &format!("{job}/fix"), "zh-CN").await;
        assert!(grid.contains("id=\"none-left\""), "{grid}");
    });
}

#[test]
fn a_header_only_file_is_said_before_any_mapping() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 1);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Headers the profile does not know, and no row under them.
        let answer = crate::serve::upload_request(
            &serve,
            "try",
            "headers.csv",
            "支付凭证编码,报关流水号,海关\n".into(),
        )
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = answer.text().await.unwrap();
        assert!(page.contains("只有表头（第 1 行）"), "{page}");
    });
}

#[test]
fn the_sandbox_profile_remembers_what_its_sandbox_accepted_across_uploads() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 5);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = std::fs::read(&orders).unwrap();
        let first = location(&upload(&serve, "try", "orders.csv", bytes).await);
        assert_eq!(
            declare(&serve, &first).await.status(),
            StatusCode::SEE_OTHER
        );
        assert_eq!(wait_done(&serve, &first).await["S"], 5);
    });
    // The server stopped, and the profile's ledger lost: the same orders
    // under new request IDs reach the sandbox, which remembers them, as
    // Alipay+ would.
    drop(serve);
    for name in ["try.db", "try.db.key"] {
        let _ = std::fs::remove_file(work.path(&format!("data/sandbox-ledgers/{name}")));
    }
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime.block_on(async {
        let again = std::fs::read_to_string(&orders)
            .unwrap()
            .replace(",D", ",E");
        let second = location(&upload(&serve, "try", "again.csv", again.into_bytes()).await);
        assert_eq!(
            declare(&serve, &second).await.status(),
            StatusCode::SEE_OTHER
        );
        let done = wait_done(&serve, &second).await;
        assert_eq!(done["F"], 5, "{done}");
        assert_eq!(done["S"], 0, "{done}");
        let results = job_file(&serve, &second, "results.csv").await;
        assert!(results.contains("DUPLICATED_DECLARATION"), "{results}");
    });
    let memory =
        std::fs::read_to_string(work.path("data/sandbox-ledgers/try.sandbox.jsonl")).unwrap();
    assert_eq!(memory.lines().count(), 5, "{memory}");
}

#[test]
fn hostile_cells_forms_and_headers_stay_bounded() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    sandbox_profile(&work, &payments);
    // A customs code of 100,000 characters in row 2.
    let text = std::fs::read_to_string(&orders).unwrap().replacen(
        "P0,D0,ZONGSHU",
        &format!("P0,D0,{}", "Z".repeat(100_000)),
        1,
    );
    // 3,000 columns and the payment ID's renamed: the mapping page.
    let mut wide = String::from(
        "PayRef,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit",
    );
    for column in 0..3000 {
        wide.push_str(&format!(",extra{column}"));
    }
    wide.push_str("\nP0,D0,ZONGSHU,M1,Shop,100,false\n");
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let job = location(&upload(&serve, "try", "orders.csv", text.into_bytes()).await);
        let grid = get_text_in(&serve, &format!("{job}/fix"), "en").await;
        // The cell is shown in part, not 100,000 characters of it.
        assert!(
            grid.contains(&format!("value=\"{}…\"", "Z".repeat(512))),
            "cut"
        );
        assert!(grid.len() < 60_000, "{} bytes", grid.len());
        // A correction longer than any field is refused, kept nowhere.
        let refused = post_form(
            &serve,
            &format!("{job}/fix"),
            &[("row", "2"), ("c2", &"Y".repeat(600))],
        )
        .await
        .text()
        .await
        .unwrap();
        assert!(refused.contains("id=\"fix-problem\""), "{refused}");
        assert!(!refused.contains(&"Y".repeat(600)));
        // A column that is no field's, a row that is not rejected, a sheet
        // that is not there: nothing is kept.
        for form in [
            vec![("row", "2"), ("c7", "x")],
            vec![("row", "3"), ("c2", "x")],
            vec![("row", "99999999999999999999"), ("c2", "x")],
        ] {
            post_form(&serve, &format!("{job}/fix"), &form).await;
        }
        let edits: Vec<_> = std::fs::read_dir(work.path("data/jobs"))
            .unwrap()
            .flatten()
            .filter(|entry| entry.path().join("edits.json").exists())
            .collect();
        assert!(edits.is_empty(), "{edits:?}");
        let sheet = post_form(&serve, &format!("{job}/sheet"), &[("sheet", "x")]).await;
        assert_eq!(sheet.status(), StatusCode::BAD_REQUEST);

        let wide_job = location(&upload(&serve, "try", "wide.csv", wide.into_bytes()).await);
        let page = get_text_in(&serve, &format!("{wide_job}/columns"), "en").await;
        let options = page.matches("<option value=\"").count();
        // 18 fields, each with "not in the file" and at most 1,000 headers.
        assert!(options <= 18 * 1001, "{options} options");
        assert!(page.contains(">PayRef</option>"));
    });
}

/// The job folder of the only job under `data/jobs`.
fn only_job_folder(work: &Workdir) -> std::path::PathBuf {
    let mut folders: Vec<_> = std::fs::read_dir(work.path("data/jobs"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders.pop().unwrap()
}

#[test]
fn corrections_are_checked_against_other_rows_and_the_ledger() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 4);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Declared first: P0 to P3 under D0 to D3.
        let bytes = std::fs::read(&orders).unwrap();
        let first = location(&upload(&serve, "try", "orders.csv", bytes).await);
        declare(&serve, &first).await;
        assert_eq!(wait_done(&serve, &first).await["S"], 4);

        // The next file: P1's order again under a new ID (the ledger holds
        // it), and a row with a customs code that does not exist.
        let next = "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit\n\
P1,E1,ZONGSHU,M1,Shop,100,false\n\
P2,E2,ZONGSHUX,M1,Shop,100,false\n";
        let job = location(&upload(&serve, "try", "next.csv", next.into()).await);
        let page = get_text_in(&serve, &job, "en").await;
        // The ledger's rule applies at the check, not only in the run.
        assert_eq!(count_in(&page, "rejected"), 2, "{page}");
        let grid = get_text_in(&serve, &format!("{job}/fix"), "en").await;
        assert!(grid.contains("id=\"row-2\""), "{grid}");
        assert!(
            grid.contains("row 2") || grid.contains("declared"),
            "{grid}"
        );
        // Fixing row 3's customs code but giving it row 2's ID: the rows
        // are checked against each other, and it stays rejected.
        post_form(
            &serve,
            &format!("{job}/fix"),
            &[("row", "3"), ("c1", "E1"), ("c2", "ZONGSHU")],
        )
        .await;
        let page = get_text_in(&serve, &job, "en").await;
        assert_eq!(count_in(&page, "valid"), 0, "{page}");
        let grid = get_text_in(&serve, &format!("{job}/fix"), "en").await;
        assert!(grid.contains("id=\"row-3\""), "{grid}");
        assert!(grid.contains("value=\"E1\""), "{grid}");
    });
}

#[test]
fn certificate_numbers_stay_masked_on_the_fixing_pages() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 2);
    sandbox_profile(&work, &payments);
    let number = "11010519491231002X";
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A rejected row (amount) with a buyer's certificate number.
        let file = format!(
            "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,buyerCertificate.certificateType,buyerCertificate.certificateNo,\
buyerCertificate.holderName.fullName\n\
P0,D0,ZONGSHU,M1,Shop,1o0,false,ID_CARD,{number},张三\n"
        );
        let job = location(&upload(&serve, "try", "orders.csv", file.into()).await);
        let grid = get_text_in(&serve, &format!("{job}/fix"), "en").await;
        assert!(!grid.contains(number), "{grid}");
        assert!(grid.contains("110105********002X"), "{grid}");
        let folder = only_job_folder(&work);
        let reasons = std::fs::read_to_string(folder.join("reasons.jsonl")).unwrap();
        assert!(!reasons.contains(number), "{reasons}");
        // The same file with the number's column renamed: the mapping page
        // shows its values masked in the certificate's row.
        let renamed = String::from(
            "PayRef,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,buyerCertificate.certificateType,证件 编号,\
buyerCertificate.holderName.fullName\n\
P0,D0,ZONGSHU,M1,Shop,100,false,ID_CARD,E 1234 5678,张三\n",
        );
        let mapped = location(&upload(&serve, "try", "renamed.csv", renamed.into()).await);
        // The number's column chosen for it (and the payment ID left out,
        // so that the page comes back with the choice shown).
        let mut form = mapping(&[]);
        form.push(("buyerCertificate.certificateNo", "8"));
        let refused = post_form(&serve, &format!("{mapped}/columns"), &form).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = refused.text().await.unwrap();
        assert!(page.contains("<option value=\"8\" selected>"), "{page}");
        assert!(!page.contains("E 1234 5678"), "{page}");
        assert!(page.contains("E 1234*5678"), "masked as everywhere: {page}");
    });
}

#[test]
fn a_restarted_server_keeps_the_mapping_question_and_the_corrections() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    sandbox_profile(&work, &payments);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let (asking, fixed) = runtime.block_on(async {
        let asking = location(&upload(&serve, "try", "renamed.csv", renamed(&orders)).await);
        let text = std::fs::read_to_string(&orders)
            .unwrap()
            .replace("P1,D1,ZONGSHU", "P1,D1,ZONGSHUX");
        let fixed = location(&upload(&serve, "try", "orders.csv", text.into_bytes()).await);
        post_form(
            &serve,
            &format!("{fixed}/fix"),
            &[("row", "3"), ("c2", "ZONGSHU")],
        )
        .await;
        let page = get_text_in(&serve, &fixed, "en").await;
        assert_eq!(count_in(&page, "valid"), 3, "{page}");
        (asking, fixed)
    });
    drop(serve);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime.block_on(async {
        let answer = client().get(serve.url(&asking)).send().await.unwrap();
        assert_eq!(location(&answer), format!("{asking}/columns"));
        let page = get_text_in(&serve, &fixed, "en").await;
        assert_eq!(count_in(&page, "valid"), 3, "{page}");
        declare(&serve, &fixed).await;
        let done = wait_done(&serve, &fixed).await;
        assert_eq!(done["S"], 3, "the corrected row too: {done}");
    });
}

#[test]
fn another_sheet_drops_the_corrections_and_a_sheet_without_rows_changes_nothing() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 10);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bytes = workbook(&work, &["一月", "二月"], 3);
        let job = location(&upload(&serve, "try", "orders.xlsx", bytes).await);
        post_form(&serve, &format!("{job}/sheet"), &[("sheet", "一月")]).await;
        // A correction on 一月's row 2 (P0): its declaration ID.
        post_form(&serve, &format!("{job}/fix"), &[("row", "2"), ("c1", "D9")]).await;
        let edits = only_job_folder(&work).join("edits.json");
        assert!(!edits.exists(), "row 2 is not rejected: nothing kept");
        std::fs::write(&edits, r#"{"rows":{"2":{"1":"D9"}}}"#).unwrap();
        // Another sheet: the corrections made for the first are dropped.
        post_form(&serve, &format!("{job}/sheet"), &[("sheet", "二月")]).await;
        assert!(!edits.exists(), "corrections of 一月 laid over 二月");
        declare(&serve, &job).await;
        wait_done(&serve, &job).await;
        let results = job_file(&serve, &job, "results.csv").await;
        assert!(!results.contains("D9"), "{results}");
        assert!(results.contains(",P3,D3,"), "{results}");
    });
}

#[test]
fn a_choice_that_cannot_be_checked_is_undone() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 10);
    sandbox_profile(&work, &payments);
    // 一月 with orders, 模板 with headers only.
    let bytes = workbook_of(&work, false, &[("一月", 2), ("模板", 0)]);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let job = location(&upload(&serve, "try", "book.xlsx", bytes).await);
        // Only the sheet with orders has them: read without asking.
        let page = get_text_in(&serve, &job, "en").await;
        assert!(page.contains("«一月»"), "{page}");
        assert_eq!(count_in(&page, "valid"), 2, "{page}");
        let refused = post_form(&serve, &format!("{job}/sheet"), &[("sheet", "模板")]).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = get_text_in(&serve, &job, "en").await;
        assert!(page.contains("«一月»"), "{page}");
        assert_eq!(count_in(&page, "valid"), 2, "{page}");
        declare(&serve, &job).await;
        assert_eq!(wait_done(&serve, &job).await["S"], 2);
    });
}

#[test]
fn a_header_twice_in_the_file_is_explained_and_not_remembered() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 2);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let file = "编号,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,编号\nP0,D0,ZONGSHU,M1,Shop,100,false,x\n";
        let job = location(&upload(&serve, "try", "twice.csv", file.into()).await);
        let answer = post_form(
            &serve,
            &format!("{job}/columns"),
            &mapping(&[("paymentRequestId", "0")]),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = answer.text().await.unwrap();
        assert!(page.contains("id=\"columns-ambiguous\""), "{page}");
        assert!(page.contains("重命名"), "{page}");
        let remembered = std::fs::read_dir(work.path("data/mappings"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(remembered, 0, "a mapping that failed is not remembered");
    });
}

#[test]
fn a_field_left_not_in_the_file_is_read_from_nowhere() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 2);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The file has referenceOrderId under its canonical header, with
        // text too long for it; the clerk says the file has no such field.
        let text = String::from_utf8(renamed(&orders))
            .unwrap()
            .replace(",note\n", ",referenceOrderId\n")
            .replace("kept 0", &"R".repeat(80))
            .replace("kept 1", &"R".repeat(80));
        let job = location(&upload(&serve, "try", "orders.csv", text.into_bytes()).await);
        let mut form = mapping(&[("paymentRequestId", "0")]);
        form.push(("referenceOrderId", ""));
        post_form(&serve, &format!("{job}/columns"), &form).await;
        let page = get_text_in(&serve, &job, "en").await;
        assert_eq!(count_in(&page, "valid"), 2, "{page}");
        assert_eq!(count_in(&page, "rejected"), 0, "{page}");
    });
}

/// Uploads `bytes` for a new sandbox profile named `name`, in Chinese.
async fn upload_new_profile(serve: &ServeProcess, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("profile", "")
        .text("new_profile", name.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("订单.csv"),
        );
    client()
        .post(serve.url("/uploads"))
        .header("Origin", serve.base.clone())
        .header("Accept-Language", "zh-CN")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[test]
fn a_new_sandbox_profile_is_made_from_the_page_for_a_file_and_mapped() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 3);
    // No profile at all: the page still offers a sandbox profile to try.
    std::fs::create_dir_all(work.path("profiles")).unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _ = payments;
    runtime.block_on(async {
        let home = get_text_in(&serve, "/", "zh-CN").await;
        assert!(home.contains("id=\"no-profiles\""), "{home}");
        assert!(home.contains("id=\"new-profile\""), "{home}");
        // An ERP's Chinese headers, amounts in yuan.
        let file = "支付单号,报关流水号,海关,商户备案号,商户名称,申报金额,是否拆单\n\
                    P0,D0,ZONGSHU,M1,Shop,1.00,否\nP1,D1,ZONGSHU,M1,Shop,2.50,否\n";
        let answer = upload_new_profile(&serve, "试用ERP", file.into()).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let job = location(&answer);
        let profile =
            std::fs::read_to_string(work.path("data/sandbox-profiles/试用ERP.toml")).unwrap();
        assert!(profile.contains("endpoint = \"sandbox\""), "{profile}");
        assert!(profile.contains("amount_unit = \"yuan\""), "{profile}");
        // Its columns: init's guesses, for the clerk to confirm.
        let answer = client().get(serve.url(&job)).send().await.unwrap();
        assert_eq!(location(&answer), format!("{job}/columns"));
        let page = get_text_in(&serve, &format!("{job}/columns"), "zh-CN").await;
        assert!(
            page.contains("<option value=\"0\" selected>支付单号</option>"),
            "{page}"
        );
        assert!(!page.contains("id=\"columns-missing\""), "{page}");
        let form = [
            ("paymentRequestId", "0"),
            ("customsDeclarationRequestId", "1"),
            ("customs.customsCode", "2"),
            ("merchantCustomsInfo.merchantCustomsCode", "3"),
            ("merchantCustomsInfo.merchantCustomsName", "4"),
            ("declarationAmount.value", "5"),
            ("isSplit", "6"),
        ];
        post_form(&serve, &format!("{job}/columns"), &form).await;
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(count_in(&page, "valid"), 2, "{page}");
        assert!(page.contains("id=\"sandbox\""), "{page}");
        declare(&serve, &job).await;
        assert_eq!(wait_done(&serve, &job).await["S"], 2);
        // Listed with the others now; its name cannot be taken twice.
        let home = get_text_in(&serve, "/", "zh-CN").await;
        assert!(home.contains("<option value=\"试用ERP\">"), "{home}");
        let again = upload_new_profile(&serve, "试用erp", file.into()).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(again.text().await.unwrap().contains("已存在"));
        for bad in ["../etc", "a b", "", &"长".repeat(41)] {
            let refused = upload_new_profile(&serve, bad, file.into()).await;
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let made: Vec<_> = std::fs::read_dir(work.path("data/sandbox-profiles"))
            .unwrap()
            .collect();
        assert_eq!(made.len(), 1, "{made:?}");
    });
}

#[test]
fn all_order_sheets_are_declared_as_one_job_with_rows_numbered_per_sheet() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 10);
    sandbox_profile(&work, &payments);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let job = runtime.block_on(async {
        // P0-P2 on 一月, P3-P5 on 二月.
        let bytes = workbook(&work, &["一月", "二月"], 3);
        let job = location(&upload(&serve, "try", "orders.xlsx", bytes).await);
        let page = get_text_in(&serve, &format!("{job}/sheet"), "zh-CN").await;
        assert!(page.contains("id=\"all-sheets\""), "{page}");
        let chosen = post_form(&serve, &format!("{job}/sheet"), &[("sheet", "*")]).await;
        assert_eq!(chosen.status(), StatusCode::SEE_OTHER);
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert_eq!(page.matches("class=\"sheet\"").count(), 2, "{page}");
        assert!(
            page.contains(">一月</a>") && page.contains(">二月</a>"),
            "{page}"
        );
        assert_eq!(count_in(&page, "valid"), 6, "{page}");
        // Each sheet has its own page, for its grid; declared from here.
        let part = page
            .split("class=\"sheet\"><td><a href=\"/jobs/")
            .nth(2)
            .and_then(|rest| rest.split('"').next())
            .map(|id| format!("/jobs/{id}"))
            .unwrap();
        let part_page = get_text_in(&serve, &part, "zh-CN").await;
        assert!(part_page.contains("id=\"part-of\""), "{part_page}");
        assert!(!part_page.contains("id=\"declare-form\""), "{part_page}");
        // The home page lists the workbook once.
        let home = get_text_in(&serve, "/", "zh-CN").await;
        assert_eq!(home.matches("<a href=\"/jobs/").count(), 1, "{home}");

        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["valid"], 6, "{done}");
        assert_eq!(done["S"], 6, "{done}");
        let page = get_text_in(&serve, &job, "zh-CN").await;
        // Each sheet's results, its rows numbered as on its sheet.
        let mut results = Vec::new();
        let parts: Vec<String> = page
            .split("class=\"sheet\"><td><a href=\"/jobs/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect();
        assert_eq!(parts.len(), 2, "{page}");
        for id in parts {
            let text = job_file(&serve, &format!("/jobs/{id}"), "results.csv").await;
            results.push(text);
        }
        assert!(results[0].contains("\n2,P0,D0,") && results[0].contains("\n4,P2,D2,"));
        assert!(results[1].contains("\n2,P3,D3,") && results[1].contains("\n4,P5,D5,"));
        job
    });
    // A restart knows the group and that it is finished.
    drop(serve);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime.block_on(async {
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["S"], 6, "{done}");
        let page = get_text_in(&serve, &job, "zh-CN").await;
        assert!(!page.contains("id=\"declare-form\""), "{page}");
    });
}

#[test]
fn a_profile_header_twice_in_the_file_is_said_in_the_clerks_language() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 1);
    sandbox_profile(&work, &payments);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let file = "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,customs.customsCode\nP0,D0,ZONGSHU,M1,Shop,100,false,X\n";
        let answer = crate::serve::upload_request(&serve, "try", "twice.csv", file.into())
            .header("Accept-Language", "zh-CN")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = answer.text().await.unwrap();
        assert!(
            page.contains("两列的列标题都是“customs.customsCode”"),
            "{page}"
        );
        assert!(page.contains("第 3 列和第 8 列"), "{page}");
        assert!(!page.contains("rename"), "{page}");
    });
}

#[test]
fn a_workbook_stopped_between_sheets_is_declared_again_for_the_rest() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 10);
    // Two declarations a second: the first sheet lasts a while.
    work.write(
        "profiles/try.toml",
        format!(
            "[api]\nendpoint = \"sandbox\"\n[run]\nrate_per_sec = 2\nburst = 1\n\
             [sandbox]\npayments = \"{payments}\"\n"
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let job = runtime.block_on(async {
        let bytes = workbook(&work, &["一月", "二月"], 3);
        let job = location(&upload(&serve, "try", "orders.xlsx", bytes).await);
        post_form(&serve, &format!("{job}/sheet"), &[("sheet", "*")]).await;
        let page = get_text_in(&serve, &job, "en").await;
        let parts: Vec<String> = page
            .split("class=\"sheet\"><td><a href=\"/jobs/")
            .skip(1)
            .map(|rest| format!("/jobs/{}", rest.split('"').next().unwrap()))
            .collect();
        // A sheet's own sheet cannot be changed, nor made a group.
        for sheet in ["二月", "*"] {
            let refused =
                post_form(&serve, &format!("{}/sheet", parts[0]), &[("sheet", sheet)]).await;
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{sheet}");
        }
        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        // While the workbook is declared, its sheets wait unchanged.
        let late = post_form(
            &serve,
            &format!("{}/fix", parts[1]),
            &[("row", "2"), ("c1", "X")],
        )
        .await;
        assert_eq!(late.status(), StatusCode::CONFLICT);
        // Stopped from the first sheet's own page: the second is not begun.
        let deadline = std::time::Instant::now() + crate::common::DEADLINE;
        loop {
            let progress: serde_json::Value = progress_of(&serve, &parts[0]).await;
            if progress["settled"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{progress}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        post_form(&serve, &format!("{}/stop", parts[0]), &[]).await;
        let deadline = std::time::Instant::now() + crate::common::DEADLINE;
        loop {
            let page = get_text_in(&serve, &job, "en").await;
            if page.contains("id=\"declare-form\"") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{page}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let second: serde_json::Value = progress_of(&serve, &parts[1]).await;
        assert_eq!(second["started"], false, "{second}");
        let home = get_text_in(&serve, "/", "en").await;
        assert!(home.contains("interrupted"), "{home}");
        job
    });
    // After a restart, the workbook's own sheets are not "the same file
    // declared before"; Declare takes up the rest.
    drop(serve);
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    runtime.block_on(async {
        let page = get_text_in(&serve, &job, "en").await;
        assert!(page.contains("id=\"declare-form\""), "{page}");
        assert!(!page.contains("id=\"identical\""), "{page}");
        assert_eq!(declare(&serve, &job).await.status(), StatusCode::SEE_OTHER);
        let done = wait_done(&serve, &job).await;
        assert_eq!(done["valid"], 6, "{done}");
        // The stopped sheet keeps its rows left in its retry.xlsx, as a
        // stopped run does; the sheet not begun is declared whole.
        let (success, unknown) = (done["S"].as_u64().unwrap(), done["U"].as_u64().unwrap());
        assert_eq!(success + unknown, 6, "{done}");
        assert!(unknown >= 1 && success >= 3, "{done}");
        let page = get_text_in(&serve, &job, "en").await;
        let second = page
            .split("class=\"sheet\"><td><a href=\"/jobs/")
            .nth(2)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .unwrap();
        let second: serde_json::Value = progress_of(&serve, &format!("/jobs/{second}")).await;
        assert_eq!(second["S"], 3, "{second}");
    });
}

#[test]
fn the_sandbox_memory_never_holds_a_certificate_number_and_ignores_resends() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 2);
    sandbox_profile(&work, &payments);
    let number = "11010519491231002X";
    let file = format!(
        "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,buyerCertificate.certificateType,buyerCertificate.certificateNo,\
buyerCertificate.holderName.fullName\n\
P0,D0,ZONGSHU,M1,Shop,100,false,ID_CARD,{number},张三\n"
    );
    let memory = work.path("data/sandbox-ledgers/try.sandbox.jsonl");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for round in 0..2 {
        let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
        runtime.block_on(async {
            let job = location(&upload(&serve, "try", "orders.csv", file.clone().into()).await);
            crate::serve::declare_again(&serve, &job).await;
            let done = wait_done(&serve, &job).await;
            assert_eq!(done["S"], 1, "round {round}: {done}");
        });
        drop(serve);
        // The second time without the profile's ledger: the same request
        // reaches the sandbox again, which answers it as before.
        for name in ["try.db", "try.db.key"] {
            let _ = std::fs::remove_file(work.path(&format!("data/sandbox-ledgers/{name}")));
        }
    }
    let kept = std::fs::read_to_string(&memory).unwrap();
    assert!(!kept.contains(number), "{kept}");
    assert!(!kept.contains("张三"), "{kept}");
    assert_eq!(
        kept.lines().count(),
        1,
        "an identical resend adds nothing: {kept}"
    );
}

#[test]
fn a_new_sandbox_profile_is_not_left_by_a_refused_file_nor_named_like_another() {
    let work = Workdir::new();
    std::fs::create_dir_all(work.path("profiles")).unwrap();
    let serve = ServeProcess::start(&work, "127.0.0.1:0", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let header_only = "支付单号,报关流水号,海关,商户备案号,商户名称,申报金额,是否拆单\n";
        let refused = upload_new_profile(&serve, "trial", header_only.into()).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let made = std::fs::read_dir(work.path("data/sandbox-profiles"))
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(made, 0, "the name is free again");
        // Look-alikes and device names are not names.
        for name in ["ｐｒｏｄ", "рrod", "Ärger", "CON", "com1"] {
            let answer = upload_new_profile(&serve, name, header_only.into()).await;
            assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{name}");
            assert!(
                answer.text().await.unwrap().contains("不能用作配置名称"),
                "{name}"
            );
        }
    });
}
