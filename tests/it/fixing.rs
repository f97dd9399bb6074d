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
        let results = client()
            .get(serve.url(&format!("{job}/files/results.csv")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            results.contains("\n4,P2,D2,,ZONGSHU,100,S,SUCCESS"),
            "{results}"
        );
    });
}

/// A workbook with orders on the sheets `sheets` (an instructions sheet
/// first), `rows` orders on each.
fn workbook(work: &Workdir, sheets: &[&str], rows: usize) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook
        .add_worksheet()
        .set_name("说明")
        .unwrap()
        .write(0, 0, "本工作簿为订单导出")
        .unwrap();
    for (index, name) in sheets.iter().enumerate() {
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
        for row in 0..rows {
            let n = index * rows + row;
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
        let results = client()
            .get(serve.url(&format!("{job}/files/results.csv")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
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
            "只有表头.csv",
            "支付凭证编码,报关流水号,海关\n".into(),
        )
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = answer.text().await.unwrap();
        assert!(page.contains("只有表头"), "{page}");
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
        // Without the profile's ledger, the same orders under new request
        // IDs reach the sandbox: it remembers them, as Alipay+ would.
        for name in ["try.db", "try.db.key"] {
            let _ = std::fs::remove_file(work.path(&format!("data/sandbox-ledgers/{name}")));
        }
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
        let results = client()
            .get(serve.url(&format!("{second}/files/results.csv")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
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
