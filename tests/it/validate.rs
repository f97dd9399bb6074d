//! `declare-batch validate` and `keygen` on fixture files each test writes.
//! What the command line itself does (exit codes, the table on stdout,
//! `--quiet`, usage) runs the binary; what the reading and the rules make
//! of a file is checked in this process (`Workdir::validate_in_process`):
//! the same arguments, settings and library call, without a process per
//! check.

use std::path::Path;

use rust_xlsxwriter::{Format, Formula, Workbook, Worksheet};

use crate::common::{BOM, Workdir, rows, write_header};

const HEADER: &str = "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,referenceOrderId,buyerCertificate.certificateType,\
buyerCertificate.certificateNo,buyerCertificate.holderName.fullName,\
buyerCertificate.holderName.lastName,note";

#[test]
fn utf8_csv_rejections_are_reported_exactly() {
    let work = Workdir::new();
    let lines = [
        HEADER,
        "P1,D1,ZONGSHU,M1,Shop One,100,false,,ID_CARD,11010519491231002x,张三,,ok",
        "P2,D2,ningbo,M1,Shop One,250,1,R2-1,,,,,split",
        ",,,,,,,,,,,,",
        "",
        "P1,D1,ZONGSHU,M1,Shop One,100,false,,ID_CARD,11010519491231002X,张三,,same as line 2",
        "P1,D7,ZONGSHU,M1,Shop One,300,false,,,,,,same order as line 2",
        "P8,D8,ZONGSHU,M1,Shop One,0,maybe,,,,,,three problems",
        "P9,D9,ZONGSHU,M1,Shop One,100,false,,ID_CARD,440305198511114568,,Wang,no full name",
        "2.02108E+24,D10,ZONGSHU,M1,Shop One,100,false,,,,,,excel ate it",
        "P11,D11,ZONGSHU,M1,Shop, Ltd,100,false,,,,,,unquoted comma",
        "P12,D12,SHANGHAI_CBT,M1,\"Shop",
        "Two\",100,false,,,,,,two lines",
        "P14,D14,hangzhou,M1,Shop One,100,true,R14,,,,,",
    ];
    work.write("orders.csv", lines.join("\n") + "\n");
    let run = work.run(&["validate", "orders.csv"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let expected = [
        "row,field,error,paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,referenceOrderId,buyerCertificate.certificateType,\
buyerCertificate.certificateNo,buyerCertificate.holderName.fullName,\
buyerCertificate.holderName.lastName,note",
        "6,customsDeclarationRequestId,\"customsDeclarationRequestId: duplicate of row 2: same \
customsDeclarationRequestId \"\"D1\"\" and identical content; the declaration is made once, from \
row 2\",P1,D1,ZONGSHU,M1,Shop One,100,false,,ID_CARD,11010519491231002X,张三,,same as line 2",
        "7,paymentRequestId,\"paymentRequestId: order \"\"P1\"\" is already declared at customs \
ZONGSHU by row 2 under another customsDeclarationRequestId; an order is declared once per customs \
(the API would answer DUPLICATED_DECLARATION)\",P1,D7,ZONGSHU,M1,Shop One,300,false,,,,,,same \
order as line 2",
        "8,declarationAmount.value; isSplit,\"declarationAmount.value: the amount must be at least 1 \
fen; isSplit: \"\"maybe\"\" is not a yes/no value; use true or false (1/0, 是/否 and Y/N are \
accepted too)\",P8,D8,ZONGSHU,M1,Shop One,0,maybe,,,,,,three problems",
        "9,buyerCertificate.holderName.fullName,\"buyerCertificate.holderName.fullName: required when \
a first, middle or last name is given\",P9,D9,ZONGSHU,M1,Shop One,100,false,,ID_CARD,\
440305198511114568,,Wang,no full name",
        "10,paymentRequestId,\"paymentRequestId: \"\"2.02108E+24\"\" is an ID in scientific \
notation: the spreadsheet has already lost its digits; format the column as text and re-export\",\
2.02108E+24,D10,ZONGSHU,M1,Shop One,100,false,,,,,,excel ate it",
        "11,row,\"the row has 14 fields but the header has 13; a value containing a comma must be in \
double quotes, or the columns shift\",P11,D11,ZONGSHU,M1,Shop, Ltd,100,false,,,,,,unquoted comma",
        "14,customs.customsCode,\"customs.customsCode: \"\"HANGZHOU\"\" is not an accepted customs \
code (ZONGSHU, ZHENGZHOU, NINGBO, SHANGHAI_CBT); declare to ZONGSHU for districts not in this \
list (Hangzhou, Guangzhou, Tianjin, …)\",P14,D14,hangzhou,M1,Shop One,100,true,R14,,,,,",
    ];
    assert_eq!(
        work.read_csv_output("out/rejected.csv"),
        expected.join("\n") + "\n"
    );
    let summary = work.summary();
    // Lines 4 (all empty cells) and 5 (empty) are blank; line 12-13 is one
    // record, valid, as are lines 2 and 3.
    assert_eq!(rows(&summary), (10, 3, 7, 2));
    assert_eq!(summary["exit_code"], 3);
    assert_eq!(summary["encoding"], "utf-8");
    assert!(
        run.stdout
            .contains("10 rows read: 3 valid, 7 rejected; 2 blank rows skipped"),
        "{}",
        run.stdout
    );
}

#[test]
fn row_messages_in_chinese_when_the_config_asks() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let work = Workdir::new();
    let lines = [
        HEADER,
        "P1,D1,ZONGSHU,M1,Shop One,100,false,,,,,,ok",
        "P1,D1,ZONGSHU,M1,Shop One,100,false,,,,,,same as line 2",
        "P8,D8,ZONGSHU,M1,Shop One,0,maybe,,,,,,two problems",
    ];
    work.write("orders.csv", lines.join("\n") + "\n");
    work.write("zh.toml", "[output]\nlanguage = \"zh-CN\"\n");
    let run = work.run(&["validate", "orders.csv", "--config", "zh.toml"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rejected = work.read_csv_output("out/rejected.csv");
    assert!(
        rejected.contains(
            "3,customsDeclarationRequestId,customsDeclarationRequestId：与第 2 行重复：\
customsDeclarationRequestId“D1”相同且内容一致；只按第 2 行申报一次,P1,D1,"
        ),
        "{rejected}"
    );
    assert!(
        rejected
            .contains("declarationAmount.value：金额至少为 1 分；isSplit：“maybe”不是“是/否”值"),
        "{rejected}"
    );
    // The header names the columns as the contract does, in every language.
    assert!(rejected.starts_with("row,field,error,"), "{rejected}");
    let mut workbook: Xlsx<_> = open_workbook(work.path("out/rejected.xlsx")).unwrap();
    let sheet = workbook.worksheet_range("rejected").unwrap();
    let errors = sheet.get_value((2, 1));
    assert!(
        matches!(errors, Some(Data::String(text)) if text.starts_with("declarationAmount.value：金额至少为 1 分")),
        "{errors:?}"
    );
    // The end-of-run table says what each code means.
    assert!(run.stdout.contains("最常见的错误"), "{}", run.stdout);
    assert!(run.stdout.contains("AMOUNT_INVALID"), "{}", run.stdout);
    assert!(run.stdout.contains("金额无效"), "{}", run.stdout);
    assert!(run.stdout.contains("重复行"), "{}", run.stdout);
    // English by default, from the same catalogue.
    let run = work.run(&["validate", "orders.csv", "--out", "en"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.contains("amount not valid"), "{}", run.stdout);
    let rejected = work.read_csv_output("en/rejected.csv");
    assert!(
        rejected.contains("declarationAmount.value: the amount must be at least 1 fen; isSplit:"),
        "{rejected}"
    );
    // report.html speaks the same language, with the same messages.
    let report = std::fs::read_to_string(work.path("out/report.html")).unwrap();
    assert!(report.contains("<html lang=\"zh-CN\">"), "{report}");
    for shown in [
        "需要处理的行",
        "被拒绝",
        "金额无效",
        "与第 2 行重复",
        "<b>3</b>",
    ] {
        assert!(report.contains(shown), "{shown} not in report.html");
    }
    assert!(!report.contains("<script"));
    assert!(run.stdout.contains("report.html"), "{}", run.stdout);
    // A language the catalogue does not have is a config error.
    work.write("fr.toml", "[output]\nlanguage = \"fr\"\n");
    let run = work.run(&[
        "validate",
        "orders.csv",
        "--config",
        "fr.toml",
        "--out",
        "fr",
    ]);
    run.expect_fatal(&["fr.toml", "\"fr\"", "zh-CN"]);
}

#[test]
fn totals_and_footer_rows_are_skipped_and_listed() {
    let work = Workdir::new();
    work.write(
        "orders.csv",
        format!(
            "{HEADER}\nP1,D1,ZONGSHU,M1,Shop,100,false,,,,,,\nP2,D2,ZONGSHU,M1,Shop,250,false,,,,,,\n\
             合计,,,,,350,,,,,,,\n\"制表人：张三\"\n"
        ),
    );
    let run = work.run(&["validate", "orders.csv"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("totals rows skipped: 4, 5"),
        "{}",
        run.stdout
    );
    let summary = work.summary();
    assert_eq!(rows(&summary), (4, 2, 0, 0));
    assert_eq!(summary["rows"]["totals"], 2);
    assert_eq!(summary["rows"]["totals_rows"], serde_json::json!([4, 5]));
    // A run neither rejects nor sends them.
    let run = work.run(&["run", "orders.csv", "--out", "declared"]);
    assert!(run.code == 3 || run.code == 0, "{}", run.stderr);
    let results = std::fs::read_to_string(work.path("declared/results.csv")).unwrap();
    assert!(
        !results.contains("合计") && !results.contains("\n4,"),
        "{results}"
    );
    let rejected = std::fs::read_to_string(work.path("declared/rejected.csv")).unwrap();
    assert_eq!(rejected.lines().count(), 1, "{rejected}");
}

#[test]
fn bom_and_crlf_line_endings_and_header_whitespace() {
    let work = Workdir::new();
    let text = format!(
        "{BOM} paymentRequestId ,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit\r\n\
P1,D1,ZONGSHU,M1,店铺,100,否\r\n\r\n\r\n\
P2,D2,ZONGSHU,M1,店铺,-5,是\r\n"
    );
    work.write("orders.csv", text);
    let run = work.validate_in_process(&["validate", "orders.csv", "--out", "result"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rejected = work.read_csv_output("result/rejected.csv");
    assert_eq!(
        rejected,
        "row,field,error,paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit\n\
5,declarationAmount.value; referenceOrderId,\"declarationAmount.value: \"\"-5\"\" is not a whole \
number of fen (digits only, e.g. 1234 for ¥12.34); referenceOrderId: required when isSplit is true: \
a split order is declared under its referenceOrderId\",P2,D2,ZONGSHU,M1,店铺,'-5,是\n"
    );
}

/// A GBK export as Excel on Chinese Windows writes it, with a config that
/// maps its Chinese headers.
#[test]
fn gb18030_export_with_chinese_headers() {
    let work = Workdir::new();
    let text = "支付单号,报关流水号,海关编码,商户备案号,商户名称,金额(元),是否拆单,子订单号,证件号码,姓名\r\n\
                P1,D1,宁波,M1,杭州优选,\"¥1,280.00\",否,,,\r\n\
                P2,D2,NINGBO,M1,杭州优选,12.345,否,,,\r\n\
                P3,D3,NINGBO,M1,杭州优选,99.9,是,R3,310115199003071239,李四\r\n";
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    work.write("orders.csv", &bytes);
    work.write(
        "gbk.toml",
        "[input]\namount_unit = \"yuan\"\n\
         [columns]\n\"paymentRequestId\" = \"支付单号\"\n\"customsDeclarationRequestId\" = \"报关流水号\"\n\
         \"customs.customsCode\" = \"海关编码\"\n\"merchantCustomsInfo.merchantCustomsCode\" = \"商户备案号\"\n\
         \"merchantCustomsInfo.merchantCustomsName\" = \"商户名称\"\n\"declarationAmount.value\" = \"金额(元)\"\n\
         \"isSplit\" = \"是否拆单\"\n\"referenceOrderId\" = \"子订单号\"\n\
         \"buyerCertificate.certificateNo\" = \"证件号码\"\n\"buyerCertificate.holderName.fullName\" = \"姓名\"\n\
         [defaults]\n\"buyerCertificate.certificateType\" = \"ID_CARD\"\n",
    );
    let run = work.validate_in_process(&["validate", "orders.csv", "--config", "gbk.toml"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        work.read_csv_output("out/rejected.csv"),
        "row,field,error,支付单号,报关流水号,海关编码,商户备案号,商户名称,金额(元),是否拆单,子订单号,证件号码,姓名\n\
2,customs.customsCode,\"海关编码 (customs.customsCode): \"\"宁波\"\" is not an accepted customs code \
(ZONGSHU, ZHENGZHOU, NINGBO, SHANGHAI_CBT); declare to ZONGSHU for districts not in this list \
(Hangzhou, Guangzhou, Tianjin, …)\",P1,D1,宁波,M1,杭州优选,\"¥1,280.00\",否,,,\n\
3,declarationAmount.value,\"金额(元) (declarationAmount.value): \"\"12.345\"\" has more than two \
decimal places; an amount in yuan is exact to the fen (where the sheet shows fewer, a cell format \
hides them: round the value in the sheet, e.g. =ROUND(A2,2))\",P2,D2,NINGBO,M1,杭州优选,12.345,否,,,\n"
    );
    let summary = work.summary();
    assert_eq!(summary["encoding"], "gb18030");
    assert_eq!(rows(&summary), (3, 1, 2, 0));
}

/// `orders.csv`: the header, a valid UTF-8 row on line 2, then `line`.
fn write_after_a_good_row(work: &Workdir, line: &[u8]) {
    let mut bytes =
        format!("{HEADER}\nP1,D1,ZONGSHU,M1,杭州优选跨境贸易,100,false,,,,,,\n").into_bytes();
    bytes.extend_from_slice(line);
    work.write("orders.csv", &bytes);
}

#[test]
fn utf8_with_a_few_bad_bytes_is_refused_naming_the_line() {
    let work = Workdir::new();
    write_after_a_good_row(
        &work,
        b"P2,D2,ZONGSHU,M1,\xE6\x9D\xAD\xFF,100,false,,,,,,\n",
    );
    let run = work.validate_in_process(&["validate", "orders.csv"]);
    run.expect_fatal(&["orders.csv, line 3", "not"]);
    assert!(
        !work.path("out/rejected.csv").exists(),
        "nothing is written for a fatal input"
    );
    // Forcing UTF-8 still refuses, naming the line.
    work.write("utf8.toml", "[input]\nencoding = \"utf-8\"\n");
    let run = work.validate_in_process(&["validate", "orders.csv", "--config", "utf8.toml"]);
    run.expect_fatal(&["line 3", "UTF-8"]);
}

#[test]
fn a_character_split_by_a_comma_is_refused_naming_its_field() {
    let work = Workdir::new();
    // 杭 is E6 9D AD: its bytes run on across the comma, so the line's
    // bytes end to end are UTF-8 while fields 5 and 6 are not.
    write_after_a_good_row(&work, b"P2,D2,ZONGSHU,M1,\xE6,\x9D\xAD,false,,,,,,\n");
    work.write("utf8.toml", "[input]\nencoding = \"utf-8\"\n");
    let run = work.validate_in_process(&["validate", "orders.csv", "--config", "utf8.toml"]);
    run.expect_fatal(&["line 3", "field 5", "UTF-8"]);
}

#[test]
fn missing_required_columns_are_fatal_before_any_row() {
    let work = Workdir::new();
    work.write(
        "orders.csv",
        "支付单号,customsDeclarationRequestId,customs.customsCode,isSplit\nP1,D1,ZONGSHU,false\n",
    );
    let run = work.validate_in_process(&["validate", "orders.csv"]);
    run.expect_fatal(&[
        "orders.csv",
        "paymentRequestId",
        "merchantCustomsInfo.merchantCustomsCode",
        "merchantCustomsInfo.merchantCustomsName",
        "declarationAmount.value",
        "\"支付单号\"",
        "[columns]",
    ]);
    // Region and currency have built-in defaults, so they are not missing.
    assert!(!run.stderr.contains("customs.region"), "{}", run.stderr);
}

#[test]
fn all_valid_and_header_only_inputs_exit_zero() {
    let work = Workdir::new();
    // A row of empty cells at the end is a blank row; the empty line after
    // it ends the file and is not a row.
    work.write(
        "orders.csv",
        format!("{HEADER}\nP1,D1,ZONGSHU,M1,Shop,100,false,,,,,,\n,,,,,,,,,,,,\n\n"),
    );
    let run = work.validate_in_process(&["validate", "orders.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rows(&work.summary()), (1, 1, 0, 1));
    assert_eq!(
        work.read_csv_output("out/rejected.csv").lines().count(),
        1,
        "only the header"
    );

    work.write("empty.csv", format!("{HEADER}\n"));
    let run = work.run(&["validate", "empty.csv", "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "--quiet prints nothing");
    assert_eq!(rows(&work.summary()), (0, 0, 0, 0));

    work.write("nothing.csv", "");
    let run = work.validate_in_process(&["validate", "nothing.csv"]);
    run.expect_fatal(&["no header row"]);
}

/// Text cells of one sheet row, by column.
fn write_texts(sheet: &mut Worksheet, row: u32, cells: &[(u16, &str)]) {
    for &(col, value) in cells {
        sheet.write_string(row, col, value).unwrap();
    }
}

/// Request ID, customs code and merchant: the text cells every order has.
fn order_cells<'a>(id: &'a str, customs: &'a str) -> [(u16, &'a str); 4] {
    [(1, id), (2, customs), (3, "M1"), (4, "Shop")]
}

/// Writes an XLSX export with typed cells: IDs as numbers (the classic
/// Excel corruption), date cells, booleans and an error cell.
fn write_typed_workbook(path: &Path) {
    let mut workbook = Workbook::new();
    let notes = workbook.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write_string(0, 0, "not the orders").unwrap();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Orders").unwrap();
    let headers = [
        "paymentRequestId",
        "customsDeclarationRequestId",
        "customs.customsCode",
        "merchantCustomsInfo.merchantCustomsCode",
        "merchantCustomsInfo.merchantCustomsName",
        "declarationAmount.value",
        "isSplit",
        "referenceOrderId",
        "buyerCertificate.certificateType",
        "buyerCertificate.certificateNo",
        "buyerCertificate.holderName.fullName",
        "buyerCertificate.effectiveDate",
    ];
    for (col, header) in headers.iter().enumerate() {
        sheet.write_string(0, col as u16, *header).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let effective = chrono::NaiveDate::from_ymd_opt(2015, 3, 1).unwrap();
    // Row 2: a valid row with a 15-digit numeric ID, a boolean and a date.
    sheet.write_number(1, 0, 202_611_220_000_001.0).unwrap();
    write_texts(sheet, 1, &order_cells("D1", "ZONGSHU"));
    sheet.write_number(1, 5, 12800.0).unwrap();
    sheet.write_boolean(1, 6, false).unwrap();
    write_texts(
        sheet,
        1,
        &[(8, "ID_CARD"), (9, "440305198511114568"), (10, "王五")],
    );
    sheet
        .write_datetime_with_format(1, 11, effective, &date)
        .unwrap();
    // Row 3 left blank; row 4: a 24-digit payment ID stored as a number.
    sheet.write_number(3, 0, 2.021_081_2e23).unwrap();
    write_texts(sheet, 3, &order_cells("D4", "ZONGSHU"));
    sheet.write_number(3, 5, 100.0).unwrap();
    sheet.write_boolean(3, 6, true).unwrap();
    write_texts(sheet, 3, &[(7, "R4")]);
    // Row 5: an ID card number stored as a number, and an error cell amount.
    write_texts(sheet, 4, &[(0, "P5")]);
    write_texts(sheet, 4, &order_cells("D5", "NINGBO"));
    sheet
        .write_formula(4, 5, Formula::new("=NA()").set_result("#N/A"))
        .unwrap();
    sheet.write_boolean(4, 6, false).unwrap();
    write_texts(sheet, 4, &[(8, "ID_CARD"), (10, "王五")]);
    sheet.write_number(4, 9, 440_305_198_511_114_560.0).unwrap();
    // Row 6: a fractional amount that a sum left as 12.300000000000002.
    write_texts(sheet, 5, &[(0, "P6")]);
    write_texts(sheet, 5, &order_cells("D6", "ZONGSHU"));
    sheet
        .write_number(5, 5, f64::from_bits(12.3f64.to_bits() + 1))
        .unwrap();
    sheet.write_boolean(5, 6, false).unwrap();
    workbook.save(path).unwrap();
}

#[test]
fn xlsx_typed_cells_are_converted_or_refused() {
    let work = Workdir::new();
    write_typed_workbook(&work.path("orders.xlsx"));
    work.write(
        "yuan.toml",
        "[input]\namount_unit = \"yuan\"\nsheet = \"Notes\"\n",
    );

    // The first sheet holds no orders: without --sheet the first sheet
    // whose header row is found is read; named, it has no header row.
    let run = work.validate_in_process(&["validate", "orders.xlsx", "--out", "found"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let found: serde_json::Value = work.summary_of("found");
    assert_eq!(found["sheet"], "Orders");
    let run = work.validate_in_process(&["validate", "orders.xlsx", "--sheet", "Notes"]);
    run.expect_fatal(&[
        "no header row",
        "sheet \"Notes\"",
        "\"not the orders\"",
        "lacks",
    ]);

    let run = work.validate_in_process(&["validate", "orders.xlsx", "--sheet", "Orders"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        work.read_csv_output("out/rejected.csv"),
        "row,field,error,paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,referenceOrderId,buyerCertificate.certificateType,\
buyerCertificate.certificateNo,buyerCertificate.holderName.fullName,buyerCertificate.effectiveDate\n\
4,paymentRequestId,\"paymentRequestId: the cell holds a number with 24 digits, but a spreadsheet keeps \
only 15 significant digits, so this ID may already be corrupted; format the column as text and \
re-enter or re-export the IDs\",2.0210812E+23,D4,ZONGSHU,M1,Shop,100,true,R4,,,,\n\
5,declarationAmount.value; buyerCertificate.certificateNo,\"declarationAmount.value: the cell \
holds the spreadsheet error #N/A; fix the formula or type the value; \
buyerCertificate.certificateNo: the cell holds a number with 18 digits, but a spreadsheet keeps only 15 \
significant digits, so this ID may already be corrupted; format the column as text and re-enter \
or re-export the IDs\",P5,D5,NINGBO,M1,Shop,#N/A,false,,ID_CARD,4.40305198511115E+17,王五,\n\
6,declarationAmount.value,\"declarationAmount.value: \"\"12.3\"\" is not a whole number of fen \
(digits only, e.g. 1234 for ¥12.34); it looks like yuan: set [input] amount_unit = \"\"yuan\"\"\",\
P6,D6,ZONGSHU,M1,Shop,12.3,false,,,,,\n"
    );
    let summary = work.summary();
    assert_eq!(rows(&summary), (4, 1, 3, 1));
    assert_eq!(summary["sheet"], "Orders");
    assert_eq!(summary["format"], "xlsx");

    // In yuan, 12.300000000000002 is exactly ¥12.30; the config's sheet is
    // overridden by --sheet.
    let run = work.validate_in_process(&[
        "validate",
        "orders.xlsx",
        "--config",
        "yuan.toml",
        "--sheet",
        "Orders",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rejected = work.read_csv_output("out/rejected.csv");
    assert!(!rejected.contains("\n6,"), "{rejected}");
    assert_eq!(rows(&work.summary()), (4, 2, 2, 1));

    let run = work.validate_in_process(&["validate", "orders.xlsx", "--sheet", "Sheet9"]);
    run.expect_fatal(&["no sheet named \"Sheet9\"", "Notes, Orders"]);
}

#[test]
fn excel_numbers_read_at_15_digits_whatever_the_display_format() {
    let work = Workdir::new();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_header(sheet, 0, HEADER.split(','));
    let two_places = Format::new().set_num_format("0.00");
    // A formula's saved value 21.610000000000003 is ¥21.61; a typed 12.345
    // shown as 12.35 by its format is still three places.
    for (row, id, amount) in [(1, "1", None), (2, "2", Some(12.345))] {
        write_texts(sheet, row, &[(0, &format!("P{id}"))]);
        write_texts(sheet, row, &order_cells(&format!("D{id}"), "ZONGSHU"));
        match amount {
            None => {
                sheet
                    .write_formula_with_format(
                        row,
                        5,
                        Formula::new("=10.81+10.8").set_result("21.610000000000003"),
                        &two_places,
                    )
                    .unwrap();
            }
            Some(amount) => {
                sheet
                    .write_number_with_format(row, 5, amount, &two_places)
                    .unwrap();
            }
        }
        write_texts(sheet, row, &[(6, "否")]);
    }
    workbook.save(work.path("orders.xlsx")).unwrap();
    work.write("yuan.toml", "[input]\namount_unit = \"yuan\"\n");
    let run = work.validate_in_process(&["validate", "orders.xlsx", "--config", "yuan.toml"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rejected = work.read_csv_output("out/rejected.csv");
    assert_eq!(rejected.lines().count(), 2, "{rejected}");
    assert!(
        rejected.contains("\n3,declarationAmount.value"),
        "{rejected}"
    );
    assert!(rejected.contains("=ROUND("), "{rejected}");
    assert_eq!(rows(&work.summary()), (2, 1, 1, 0));
}

#[test]
fn values_as_chinese_exports_write_them_are_read() {
    let work = Workdir::new();
    work.write(
        "orders.csv",
        "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit,buyerCertificate.certificateType,buyerCertificate.certificateNo,\
buyerCertificate.holderName.fullName,buyerCertificate.effectiveDate,buyerCertificate.expireDate\n\
Ｐ１,Ｄ１,ＮＩＮＧＢＯ,M1,Ｓｈｏｐ,1234.5元,N,ID_CARD,11010519491231002X,张三,2020年1月1日,长期\n\
P2,D2,zongshu,M1,Shop,RMB 12.00,no,ID_CARD,11010519491231002X,张三,2020.01.01,2040/1/1\n",
    );
    work.write(
        "yuan.toml",
        "[api]\nendpoint = \"sandbox\"\n[input]\namount_unit = \"yuan\"\n",
    );
    let run = work.run(&[
        "run",
        "orders.csv",
        "--config",
        "yuan.toml",
        "--out",
        "checked",
    ]);
    // The embedded sandbox takes one's own payments as paid.
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rejected = std::fs::read_to_string(work.path("checked/rejected.csv")).unwrap();
    assert_eq!(rejected.lines().count(), 1, "nothing rejected: {rejected}");
    let summary: serde_json::Value = work.summary_of("checked");
    assert_eq!(summary["rows"]["long_term_id_cards"], 1);
    let results = std::fs::read_to_string(work.path("checked/results.csv")).unwrap();
    // IDs, codes and amounts half-width; the name (Ｓｈｏｐ) as given.
    assert!(results.contains("2,P1,D1,,NINGBO,123450,"), "{results}");
    assert!(results.contains("3,P2,D2,,ZONGSHU,1200,"), "{results}");
}

#[test]
fn usage_errors_exit_two_and_version_prints() {
    let work = Workdir::new();
    assert_eq!(work.run(&["validate"]).code, 2);
    assert_eq!(work.run(&["frobnicate"]).code, 2);
    let run = work.run(&["--version"]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stdout.trim(),
        format!("declare-batch {}", env!("CARGO_PKG_VERSION"))
    );
    let run = work.run(&["validate", "orders.txt"]);
    run.expect_fatal(&["neither a .csv nor a .xlsx"]);
}

#[test]
fn bad_config_is_fatal_and_names_the_file() {
    let work = Workdir::new();
    work.write("orders.csv", format!("{HEADER}\n"));
    work.write("bad.toml", "[columns]\n\"customsCode\" = \"海关\"\n");
    let run = work.validate_in_process(&["validate", "orders.csv", "--config", "bad.toml"]);
    run.expect_fatal(&["bad.toml", "customsCode"]);
}

/// The shipped samples are the README's examples; keep them honest.
#[test]
fn samples_validate_as_the_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = Workdir::new();
    for (input, config) in [
        ("samples/orders.csv", None),
        ("samples/orders.xlsx", None),
        ("samples/orders_gbk.csv", Some("config/gbk-columns.toml")),
        ("samples/orders.csv", Some("config/example.toml")),
    ] {
        let input = root.join(input);
        let mut args = vec!["validate".to_owned(), input.display().to_string()];
        if let Some(config) = config {
            args.extend([
                "--config".to_owned(),
                root.join(config).display().to_string(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = work.run(&args);
        assert_eq!(run.code, 3, "{input:?}: {}", run.stderr);
        assert_eq!(rows(&work.summary()), (25, 20, 5, 1), "{input:?}");
        let rejected = work.read_csv_output("out/rejected.csv");
        let rejected_rows: Vec<&str> = rejected
            .lines()
            .skip(1)
            .map(|line| line.split(',').next().unwrap())
            .collect();
        assert_eq!(rejected_rows, ["23", "24", "25", "26", "27"], "{input:?}");
    }
}

/// Thousands of rows cross many batches and worker threads: outcomes must
/// still come out in row order, and the cross-row rules must name the
/// earliest row, whichever thread checked it.
#[test]
fn many_rows_keep_their_order_and_first_claims() {
    let work = Workdir::new();
    let mut text = format!("{HEADER}\n");
    for index in 0..3000 {
        // Every row from 1000 on repeats the ID of the row 1000 lines
        // earlier, with a different amount: a reused request ID.
        let id = index % 1000;
        let amount = 100 + index / 1000;
        text.push_str(&format!(
            "P{index},D{id},ZONGSHU,M1,Shop,{amount},false,,,,,,\n"
        ));
    }
    work.write("orders.csv", &text);
    let run = work.validate_in_process(&["validate", "orders.csv"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(rows(&work.summary()), (3000, 1000, 2000, 0));
    let rejected = work.read_csv_output("out/rejected.csv");
    let mut reader = csv::Reader::from_reader(rejected.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2000);
    for (position, record) in records.iter().enumerate() {
        let line = 1002 + position as u64;
        assert_eq!(record[0].parse::<u64>().unwrap(), line, "rows in order");
        let first = 2 + (line - 2) % 1000;
        assert!(
            record[2].contains(&format!("already used by row {first} ")),
            "line {line}: {}",
            &record[2]
        );
    }
}

#[test]
fn a_decoding_error_deep_in_the_file_names_its_line() {
    let work = Workdir::new();
    let mut text = "支付单号,报关流水号\r\n".to_owned();
    // Far more than one 64 KiB decoding chunk, so that the error comes
    // after the outputs were started.
    for index in 0..20_000 {
        text.push_str(&format!("付{index},D{index}\r\n"));
    }
    let mut bytes = encoding_rs::GB18030.encode(&text).0.into_owned();
    bytes.extend_from_slice(b"\x81\x20,D\r\n");
    work.write("orders.csv", &bytes);
    work.write(
        "gbk.toml",
        "[input]\nencoding = \"gb18030\"\n\
         [columns]\n\"paymentRequestId\" = \"支付单号\"\n\"customsDeclarationRequestId\" = \"报关流水号\"\n\
         [defaults]\n\"customs.customsCode\" = \"ZONGSHU\"\n\
         \"merchantCustomsInfo.merchantCustomsCode\" = \"M1\"\n\
         \"merchantCustomsInfo.merchantCustomsName\" = \"Shop\"\n\
         \"declarationAmount.value\" = \"100\"\n\"isSplit\" = \"false\"\n",
    );
    let run = work.validate_in_process(&["validate", "orders.csv", "--config", "gbk.toml"]);
    run.expect_fatal(&["line 20002", "GB18030"]);
    assert!(!run.stderr.contains("required fields"), "{}", run.stderr);
    // Part-written outputs are removed, not left as temporary files.
    let leftovers: Vec<_> = std::fs::read_dir(work.path("out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn keygen_writes_a_pair_that_ring_reads_and_never_overwrites() {
    let work = Workdir::new();
    let run = work.run(&["keygen", "keys", "--name", "merchant"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let private = work.path("keys/merchant_private.pem");
    let public = work.path("keys/merchant_public.pem");
    let private_text = std::fs::read_to_string(&private).unwrap();
    assert!(private_text.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert!(
        !run.stdout.contains("BEGIN"),
        "key material is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by its owner only");
    }
    // aws-lc-rs, which parses keys independently of the rsa crate that
    // wrote them, checks the pair's consistency and that the halves match.
    let der = |pem: &str| {
        use base64::Engine;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    use aws_lc_rs::signature::KeyPair;
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der(&private_text))
        .expect("aws-lc-rs reads and checks the PKCS#8 key");
    assert_eq!(pair.public_modulus_len(), 256, "RSA-2048");
    let spki = der(&std::fs::read_to_string(&public).unwrap());
    assert!(
        spki.ends_with(pair.public_key().as_ref()),
        "the public file holds the private key's public half"
    );
    let run = work.run(&["keygen", "keys", "--name", "merchant"]);
    run.expect_fatal(&["already exists"]);
    assert_eq!(std::fs::read_to_string(&private).unwrap(), private_text);
}

#[test]
fn a_quote_that_is_never_closed_is_fatal_and_names_its_line() {
    let work = Workdir::new();
    // Found by fuzzing: the stray quote on line 3 made lines 3 to 5 one
    // value, and the row was numbered wrongly.
    work.write(
        "orders.csv",
        format!(
            "{HEADER}\nP1,D1,ZONGSHU,M1,Shop,100,false,,,,,,\nP2,D2,ZONGSHU,M1,\"Shop,100,false,,,,,,\n\
             P3,D3,ZONGSHU,M1,Shop,100,false,,,,,,\nP4,D4,ZONGSHU,M1,Shop,100,false,,,,,,\n"
        ),
    );
    let run = work.validate_in_process(&["validate", "orders.csv"]);
    run.expect_fatal(&["orders.csv, line 3", "never closed", "stray quote"]);
    // A quoted value with line breaks that is closed is fine.
    work.write(
        "closed.csv",
        format!("{HEADER}\nP1,D1,ZONGSHU,M1,\"Shop\nline two\",100,false,,,,,,\n"),
    );
    let run = work.validate_in_process(&["validate", "closed.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn xlsx_rows_stored_out_of_order_are_fatal_and_name_the_row() {
    use std::io::{Read, Write};
    // Found by fuzzing: a sheet that stored row 3 before row 2 gave two
    // rows one row number. Excel never writes that; it is refused.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = std::fs::File::open(root.join("samples/orders.xlsx")).unwrap();
    let mut archive = zip::ZipArchive::new(sample).unwrap();
    let work = Workdir::new();
    let output = std::fs::File::create(work.path("orders.xlsx")).unwrap();
    let mut writer = zip::ZipWriter::new(output);
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            let row_2 = text.find("<row r=\"2\"").expect("row 2 in the sheet");
            let row_3 = text.find("<row r=\"3\"").expect("row 3 in the sheet");
            let row_4 = text.find("<row r=\"4\"").expect("row 4 in the sheet");
            text = [
                &text[..row_2],
                &text[row_3..row_4],
                &text[row_2..row_3],
                &text[row_4..],
            ]
            .concat();
        }
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
    let run = work.validate_in_process(&["validate", "orders.xlsx"]);
    run.expect_fatal(&["orders.xlsx, line 2", "row 2 after row 3", "save it again"]);
}

/// The workbook an ERP really exports: an instructions sheet first, the
/// orders on a second sheet under a merged title, an export-time row and a
/// blank row, Chinese headers, amounts in yuan from formulas, certificate
/// dates as date cells, and a 合计 row at the bottom.
fn write_finance_workbook(path: &Path) {
    let mut workbook = Workbook::new();
    let notes = workbook.add_worksheet();
    notes.set_name("说明").unwrap();
    notes.write_string(0, 0, "填写说明：请勿修改表头").unwrap();
    notes.write_string(1, 0, "金额单位：元").unwrap();
    let sheet = workbook.add_worksheet();
    sheet.set_name("订单明细").unwrap();
    sheet
        .merge_range(0, 0, 0, 7, "2026年11月跨境订单报关明细", &Format::new())
        .unwrap();
    sheet
        .write_string(1, 0, "导出时间：2026-11-24 09:00")
        .unwrap();
    let headers = [
        "支付单号",
        "报关流水号",
        "海关",
        "商户备案号",
        "商户名称",
        "申报金额(元)",
        "是否拆单",
        "身份证号",
        "姓名",
        "证件生效日期",
    ];
    write_header(sheet, 3, headers);
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let two_places = Format::new().set_num_format("0.00");
    for (n, row) in (4u32..7).enumerate() {
        write_texts(
            sheet,
            row,
            &[
                (0, &format!("P{n}")),
                (1, &format!("D{n}")),
                (2, "ZONGSHU"),
                (3, "M1"),
                (4, "杭州优选"),
                (6, "否"),
            ],
        );
        sheet
            .write_formula_with_format(
                row,
                5,
                Formula::new("=10.81+10.8").set_result("21.610000000000003"),
                &two_places,
            )
            .unwrap();
    }
    write_texts(sheet, 4, &[(7, "11010519491231002X"), (8, "张三")]);
    let effective = rust_xlsxwriter::ExcelDateTime::from_ymd(2015, 3, 1).unwrap();
    sheet
        .write_datetime_with_format(4, 9, &effective, &date)
        .unwrap();
    write_texts(sheet, 7, &[(0, "合计")]);
    sheet
        .write_formula(7, 5, Formula::new("=SUM(F5:F7)").set_result("64.83"))
        .unwrap();
    workbook.save(path).unwrap();
}

const FINANCE_CONFIG: &str = "[input]\namount_unit = \"yuan\"\n[columns]\n\
\"paymentRequestId\" = \"支付单号\"\n\"customsDeclarationRequestId\" = \"报关流水号\"\n\
\"customs.customsCode\" = \"海关\"\n\"merchantCustomsInfo.merchantCustomsCode\" = \"商户备案号\"\n\
\"merchantCustomsInfo.merchantCustomsName\" = \"商户名称\"\n\"declarationAmount.value\" = \"申报金额(元)\"\n\
\"isSplit\" = \"是否拆单\"\n\"buyerCertificate.certificateNo\" = \"身份证号\"\n\
\"buyerCertificate.holderName.fullName\" = \"姓名\"\n\"buyerCertificate.effectiveDate\" = \"证件生效日期\"\n\
[defaults]\n\"buyerCertificate.certificateType\" = \"ID_CARD\"\n";

#[test]
fn a_finance_workbook_is_read_as_a_clerk_sees_it() {
    let work = Workdir::new();
    write_finance_workbook(&work.path("export.xlsx"));
    work.write("finance.toml", FINANCE_CONFIG);
    let run = work.validate_in_process(&["validate", "export.xlsx", "--config", "finance.toml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let summary = work.summary();
    assert_eq!(
        summary["sheet"], "订单明细",
        "the first sheet with a header row"
    );
    assert_eq!(summary["header_row"], 4);
    assert_eq!(rows(&summary), (4, 3, 0, 0));
    assert_eq!(
        summary["rows"]["above_header"], 2,
        "the title and the export time"
    );
    assert_eq!(summary["rows"]["totals_rows"], serde_json::json!([8]));
    // Declared to the embedded sandbox, which takes the clerk's own
    // payments as paid: the formula's amount is ¥21.61.
    work.write(
        "declare.toml",
        format!("[api]\nendpoint = \"sandbox\"\n{FINANCE_CONFIG}"),
    );
    let run = work.run(&[
        "run",
        "export.xlsx",
        "--config",
        "declare.toml",
        "--out",
        "declared",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = std::fs::read_to_string(work.path("declared/results.csv")).unwrap();
    assert_eq!(results.matches(",ZONGSHU,2161,S,").count(), 3, "{results}");
    assert!(results.contains(",CHECK_PASSED,"), "{results}");
    // A header row that is never found: each sheet's best candidate.
    work.write(
        "wrong.toml",
        FINANCE_CONFIG.replace("= \"海关\"", "= \"关区\""),
    );
    let run = work.validate_in_process(&[
        "validate",
        "export.xlsx",
        "--config",
        "wrong.toml",
        "--out",
        "wrong",
    ]);
    run.expect_fatal(&[
        "has no header row",
        "sheet \"说明\"",
        "sheet \"订单明细\": the best candidate, row 4",
        "lacks: 关区",
        "header_row",
    ]);
    // [input] header_row names it instead.
    work.write(
        "fixed.toml",
        FINANCE_CONFIG.replace(
            "[input]\n",
            "[input]\nheader_row = 4\nsheet = \"订单明细\"\n",
        ),
    );
    let run = work.validate_in_process(&[
        "validate",
        "export.xlsx",
        "--config",
        "fixed.toml",
        "--out",
        "fixed",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn title_lines_above_a_csv_header_are_skipped_and_lines_keep_their_numbers() {
    let work = Workdir::new();
    work.write(
        "orders.csv",
        format!("Orders of November\nexported,2026-11-24\n\n{HEADER}\nP1,D1,ZONGSHU,M1,Shop,100,false,,,,,,\nP2,D2,XIAN,M1,Shop,100,false,,,,,,\n"),
    );
    let run = work.validate_in_process(&["validate", "orders.csv"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let summary = work.summary();
    assert_eq!(summary["header_row"], 4);
    assert_eq!(summary["rows"]["above_header"], 2);
    assert_eq!(rows(&summary), (2, 1, 1, 0));
    let rejected = work.read_csv_output("out/rejected.csv");
    assert!(
        rejected.contains("\n6,customs.customsCode"),
        "physical line 6: {rejected}"
    );
}

/// Copies the workbook at `from` to `to` with `change` applied to the XML
/// of `sheet` (e.g. `xl/worksheets/sheet1.xml`).
fn rewrite_sheet_xml(from: &Path, to: &Path, sheet: &str, change: impl Fn(String) -> String) {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name == sheet {
            bytes = change(String::from_utf8(bytes).unwrap()).into_bytes();
        }
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(&bytes).unwrap();
    }
    writer.finish().unwrap();
}

/// Every formula's saved value removed, as a library that does not
/// calculate formulas leaves them.
fn without_formula_values(mut xml: String) -> String {
    while let Some(start) = xml.find("</f><v>") {
        let end = xml[start..].find("</v>").expect("a closed value") + start + "</v>".len();
        xml.replace_range(start + "</f>".len()..end, "");
    }
    xml
}

#[test]
fn a_formula_without_a_saved_value_rejects_its_row_naming_the_cell() {
    let work = Workdir::new();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_header(sheet, 0, HEADER.split(','));
    for (row, id) in [(1u32, "1"), (2, "2")] {
        write_texts(sheet, row, &[(0, &format!("P{id}"))]);
        write_texts(sheet, row, &order_cells(&format!("D{id}"), "ZONGSHU"));
        write_texts(sheet, row, &[(6, "false")]);
    }
    sheet.write_number(1, 5, 100.0).unwrap();
    sheet.write_formula(2, 5, Formula::new("=F2*2")).unwrap();
    // A totals row whose formula has no value either: ignored.
    write_texts(sheet, 3, &[(0, "合计")]);
    sheet
        .write_formula(3, 5, Formula::new("=SUM(F2:F3)"))
        .unwrap();
    workbook.save(work.path("written.xlsx")).unwrap();
    rewrite_sheet_xml(
        &work.path("written.xlsx"),
        &work.path("orders.xlsx"),
        "xl/worksheets/sheet1.xml",
        without_formula_values,
    );
    let run = work.validate_in_process(&["validate", "orders.xlsx"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rejected = work.read_csv_output("out/rejected.csv");
    assert_eq!(rejected.lines().count(), 2, "{rejected}");
    assert!(
        rejected.contains("3,declarationAmount.value,\"declarationAmount.value: cell F3: the cell holds a formula whose value was never saved"),
        "{rejected}"
    );
    assert!(
        rejected.contains("open the file in Excel or LibreOffice and save it"),
        "{rejected}"
    );
    let summary = work.summary();
    assert_eq!(rows(&summary), (3, 1, 1, 0));
    assert_eq!(summary["rows"]["totals_rows"], serde_json::json!([4]));
}

#[test]
fn merged_cells_read_as_the_range_value() {
    let work = Workdir::new();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    write_header(sheet, 0, HEADER.split(','));
    // One order split in two rows; the ERP merges the merchant code and
    // name over both, and the customs code over rows 2 to 4.
    sheet.merge_range(1, 3, 2, 4, "M1", &Format::new()).unwrap();
    sheet
        .merge_range(1, 2, 3, 2, "ZONGSHU", &Format::new())
        .unwrap();
    for (row, id) in [(1u32, "1"), (2, "2"), (3, "3")] {
        write_texts(
            sheet,
            row,
            &[
                (0, &format!("P{id}")),
                (1, &format!("D{id}")),
                (6, "true"),
                (7, &format!("ORDER-1-{id}")),
            ],
        );
        sheet.write_number(row, 5, 100.0).unwrap();
    }
    // Row 4 is outside the merchant range: its own (empty) cells.
    workbook.save(work.path("orders.xlsx")).unwrap();
    let run = work.validate_in_process(&["validate", "orders.xlsx"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let rejected = work.read_csv_output("out/rejected.csv");
    assert_eq!(rejected.lines().count(), 2, "only row 4: {rejected}");
    assert!(
        rejected.contains(
            "\n4,merchantCustomsInfo.merchantCustomsCode; merchantCustomsInfo.merchantCustomsName,"
        ),
        "{rejected}"
    );
    assert_eq!(rows(&work.summary()), (3, 2, 1, 0));
}

#[test]
fn rejected_xlsx_marks_each_bad_cell_and_feeds_back() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    use std::io::Read;
    let work = Workdir::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = root.join("samples/orders.xlsx");
    let run = work.validate_in_process(&["validate", input.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let path = work.path("out/rejected.xlsx");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let mut workbook: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(workbook.sheet_names(), ["rejected"]);
    let range = workbook.worksheet_range("rejected").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 6, "the header and five rejected rows");
    assert_eq!(rows[0][0], Data::String("row".into()));
    assert_eq!(rows[0][1], Data::String("errors".into()));
    assert_eq!(rows[0][2], Data::String("paymentRequestId".into()));
    // Row numbers are numbers; the customs code stays text.
    assert_eq!(rows[1][0], Data::Float(23.0));
    assert!(matches!(&rows[1][1], Data::String(errors) if errors.contains("HANGZHOU")));
    assert!(
        rows.iter()
            .any(|row| row.contains(&Data::String("HANGZHOU".into())))
    );
    // The notes and the red fill are in the workbook's XML.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut text = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    let comments = text("xl/comments1.xml");
    assert!(
        comments.contains("not an accepted customs code"),
        "{comments}"
    );
    assert!(
        comments.contains("check character does not match"),
        "{comments}"
    );
    assert!(text("xl/styles.xml").contains("FFC7CE"), "red fill");
    let sheet = text("xl/worksheets/sheet1.xml");
    assert!(sheet.contains("<autoFilter ref=\"A1:"), "a filter");
    assert!(sheet.contains("state=\"frozen\""), "the header frozen");
    // Fed back as it is: `row` and `errors` are ignored, and the rows are
    // checked again, alone (the reused request ID has no earlier row now).
    let run = work.validate_in_process(&["validate", path.to_str().unwrap(), "--out", "again"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let again: serde_json::Value = work.summary_of("again");
    assert_eq!(rows_of(&again), (5, 1, 4));
    // Whatever the config says of the sheet and the header row.
    work.write(
        "original.toml",
        "[input]\nsheet = \"Orders\"\nheader_row = 3\n",
    );
    let run = work.validate_in_process(&[
        "validate",
        path.to_str().unwrap(),
        "--config",
        "original.toml",
        "--out",
        "configured",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
}

fn rows_of(summary: &serde_json::Value) -> (u64, u64, u64) {
    let (read, valid, rejected, _) = rows(summary);
    (read, valid, rejected)
}

#[test]
fn init_writes_a_config_that_reads_each_sample_and_the_finance_workbook() {
    let work = Workdir::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, sample, unit) in [
        ("csv", "samples/orders.csv", "fen"),
        // Its amount header says 元.
        ("gbk", "samples/orders_gbk.csv", "yuan"),
        ("xlsx", "samples/orders.xlsx", "fen"),
    ] {
        let input = root.join(sample);
        let config = format!("{name}.toml");
        let run = work.run(&["init", input.to_str().unwrap(), "--config-out", &config]);
        assert_eq!(run.code, 0, "{sample}: {}", run.stderr);
        assert!(run.stdout.contains("-> paymentRequestId"), "{}", run.stdout);
        let text = std::fs::read_to_string(work.path(&config)).unwrap();
        assert!(text.contains("endpoint = \"sandbox\""), "{text}");
        assert!(
            text.contains(&format!("amount_unit = \"{unit}\"")),
            "{sample}: {text}"
        );
        let out = format!("out-{name}");
        let run = work.run(&[
            "validate",
            input.to_str().unwrap(),
            "--config",
            &config,
            "--out",
            &out,
        ]);
        assert_eq!(run.code, 3, "{sample}: {}", run.stderr);
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(work.path(&format!("{out}/summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(rows(&summary), (25, 20, 5, 1), "{sample}");
        // Never overwritten.
        let run = work.run(&["init", input.to_str().unwrap(), "--config-out", &config]);
        run.expect_fatal(&["already exists"]);
        assert_eq!(std::fs::read_to_string(work.path(&config)).unwrap(), text);
    }
    // The clerk's workbook: the orders sheet, its Chinese headers, yuan.
    write_finance_workbook(&work.path("export.xlsx"));
    let run = work.run(&["init", "export.xlsx", "--config-out", "finance.toml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("sheet \"订单明细\", row 4"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("海关 -> customs.customsCode"),
        "{}",
        run.stdout
    );
    let text = std::fs::read_to_string(work.path("finance.toml")).unwrap();
    assert!(text.contains("amount_unit = \"yuan\""), "{text}");
    let run = work.run(&[
        "run",
        "export.xlsx",
        "--config",
        "finance.toml",
        "--out",
        "declared",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
