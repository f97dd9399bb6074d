//! Hostile inputs: small files that inflate or stretch into gigabytes, and
//! files past Excel's limits. Each is generated here, run through the real
//! binary, and checked for the refusal (file, sheet, row, cell and limit
//! named) or the cut, and for peak memory under 256 MB.

use std::io::Write;
use std::path::Path;

use calamine::{Reader, Xlsx, open_workbook};
use zip::write::SimpleFileOptions;

use crate::common::{Run, Workdir};

/// The bound every command keeps, whatever the file.
const MEMORY_BOUND: u64 = 256 * 1024 * 1024;

const HEADERS: [&str; 10] = [
    "paymentRequestId",
    "customsDeclarationRequestId",
    "customs.customsCode",
    "customs.region",
    "merchantCustomsInfo.merchantCustomsCode",
    "merchantCustomsInfo.merchantCustomsName",
    "declarationAmount.value",
    "declarationAmount.currency",
    "buyerCertificate.holderName.fullName",
    "isSplit",
];

fn values(row: u32) -> [String; 10] {
    [
        format!("PAY{row:08}"),
        format!("DCL{row:08}"),
        "ZONGSHU".into(),
        "CN".into(),
        "3301960ABC".into(),
        "杭州优选跨境贸易有限公司".into(),
        "12800".into(),
        "CNY".into(),
        "张三".into(),
        "false".into(),
    ]
}

fn column_letters(mut column: usize) -> String {
    let mut letters = Vec::new();
    column += 1;
    while column > 0 {
        let rest = (column - 1) % 26;
        letters.push(b'A' + rest as u8);
        column = (column - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap()
}

fn text_cells(row: u32, texts: &[&str]) -> String {
    let mut xml = format!("<row r=\"{row}\">");
    for (column, text) in texts.iter().enumerate() {
        xml.push_str(&format!(
            "<c r=\"{}{row}\" t=\"inlineStr\"><is><t>{text}</t></is></c>",
            column_letters(column)
        ));
    }
    xml.push_str("</row>");
    xml
}

fn data_rows(first: u32, count: u32) -> String {
    (first..first + count)
        .map(|row| {
            let values = values(row);
            text_cells(row, &values.each_ref().map(String::as_str))
        })
        .collect()
}

/// Writes `bytes` `times` times.
fn repeat(out: &mut dyn Write, bytes: &[u8], times: usize) {
    let block = bytes.repeat((1 << 16) / bytes.len().max(1) + 1);
    let per_block = block.len() / bytes.len();
    let mut left = times;
    while left >= per_block {
        out.write_all(&block).unwrap();
        left -= per_block;
    }
    out.write_all(&bytes.repeat(left)).unwrap();
}

type PartWriter<'a> = Box<dyn FnOnce(&mut dyn Write) + 'a>;

/// A workbook of one sheet, "Orders", with every part as Excel names it;
/// `sheet`, `shared` and `rels_padding` write what makes it hostile.
fn workbook(
    path: &Path,
    sheet: PartWriter<'_>,
    shared: Option<PartWriter<'_>>,
    rels_padding: usize,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let part = |zip: &mut zip::ZipWriter<std::fs::File>, name: &str, text: &str| {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    };
    part(
        &mut zip,
        "[Content_Types].xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#,
    );
    part(
        &mut zip,
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    part(
        &mut zip,
        "xl/workbook.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    zip.start_file("xl/_rels/workbook.xml.rels", options)
        .unwrap();
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#).unwrap();
    repeat(&mut zip, b" ", rels_padding);
    zip.write_all(b"</Relationships>").unwrap();
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#).unwrap();
    sheet(&mut zip);
    zip.write_all(b"</sheetData></worksheet>").unwrap();
    zip.start_file("xl/sharedStrings.xml", options).unwrap();
    // `shared` writes the part's opening tag and the strings.
    match shared {
        Some(shared) => shared(&mut zip),
        None => zip.write_all(SST_START).unwrap(),
    }
    zip.write_all(b"</sst>").unwrap();
    zip.finish().unwrap();
}

const SST_START: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#;

fn header_row() -> String {
    text_cells(1, &HEADERS)
}

/// `validate` and `init` on `file`: both refuse it with exit 1 naming
/// each of `needles`, under the memory bound.
fn refused_by_validate_and_init(work: &Workdir, file: &str, needles: &[&str]) {
    for args in [
        vec!["validate", file, "--out", "out"],
        vec!["init", file, "--config-out", "mine.toml"],
    ] {
        let (run, peak) = work.run_measuring_memory(&args);
        run.expect_fatal(needles);
        assert!(peak < MEMORY_BOUND, "{args:?} peaked at {} MB", peak >> 20);
    }
}

#[test]
fn a_cell_that_inflates_to_64_mb_is_refused_naming_sheet_row_and_cell() {
    let work = Workdir::new();
    let path = work.path("bomb.xlsx");
    workbook(
        &path,
        Box::new(|out| {
            out.write_all(header_row().as_bytes()).unwrap();
            out.write_all(data_rows(2, 3).as_bytes()).unwrap();
            out.write_all(b"<row r=\"5\"><c r=\"A5\" t=\"inlineStr\"><is><t>")
                .unwrap();
            repeat(out, b"A", 64 << 20);
            out.write_all(b"</t></is></c></row>").unwrap();
        }),
        None,
        0,
    );
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    refused_by_validate_and_init(
        &work,
        "bomb.xlsx",
        &["bomb.xlsx", "sheet \"Orders\"", "cell A5", "1 MB", "32,767"],
    );
}

#[test]
fn rich_text_runs_cannot_join_into_a_huge_cell() {
    let work = Workdir::new();
    workbook(
        &work.path("runs.xlsx"),
        Box::new(|out| {
            out.write_all(header_row().as_bytes()).unwrap();
            out.write_all(b"<row r=\"2\"><c r=\"B2\" t=\"inlineStr\"><is>")
                .unwrap();
            repeat(out, b"<r><t>0123456789abcdef</t></r>", 1 << 20);
            out.write_all(b"</is></c></row>").unwrap();
        }),
        None,
        0,
    );
    refused_by_validate_and_init(&work, "runs.xlsx", &["cell B2", "32,767"]);
}

#[test]
fn shared_strings_past_their_total_or_count_are_refused() {
    let work = Workdir::new();
    let long = format!("<si><t>{}</t></si>", "x".repeat(200));
    workbook(
        &work.path("big.xlsx"),
        Box::new(|out| out.write_all(header_row().as_bytes()).unwrap()),
        Some(Box::new(|out| {
            out.write_all(SST_START).unwrap();
            repeat(out, long.as_bytes(), 400_000)
        })),
        0,
    );
    refused_by_validate_and_init(
        &work,
        "big.xlsx",
        &["xl/sharedStrings.xml", "shared texts take more than 64 MB"],
    );
    workbook(
        &work.path("many.xlsx"),
        Box::new(|out| out.write_all(header_row().as_bytes()).unwrap()),
        Some(Box::new(|out| {
            out.write_all(SST_START).unwrap();
            repeat(out, b"<si><t>a</t></si>", 2_100_000)
        })),
        0,
    );
    refused_by_validate_and_init(&work, "many.xlsx", &["more than 2,000,000 distinct texts"]);
    // calamine reserves room for the count the part claims: a claim of
    // four billion would take 100 GB before one string is read.
    workbook(
        &work.path("claims.xlsx"),
        Box::new(|out| out.write_all(header_row().as_bytes()).unwrap()),
        Some(Box::new(|out| {
            out.write_all(br#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4000000000" uniqueCount="4000000000"><si><t>a</t></si>"#).unwrap();
        })),
        0,
    );
    refused_by_validate_and_init(&work, "claims.xlsx", &["4000000000 distinct texts"]);
    // Twelve million empty strings: 60 MB of XML, 24 bytes each in memory
    // once read (init listed the sheets through calamine unchecked).
    workbook(
        &work.path("empty.xlsx"),
        Box::new(|out| out.write_all(header_row().as_bytes()).unwrap()),
        Some(Box::new(|out| {
            out.write_all(SST_START).unwrap();
            repeat(out, b"<si/>", 12_000_000)
        })),
        0,
    );
    refused_by_validate_and_init(&work, "empty.xlsx", &["more than 2,000,000 distinct texts"]);
}

#[test]
fn a_huge_relationships_part_or_blank_space_between_rows_is_refused() {
    let work = Workdir::new();
    workbook(
        &work.path("rels.xlsx"),
        Box::new(|out| out.write_all(header_row().as_bytes()).unwrap()),
        None,
        64 << 20,
    );
    refused_by_validate_and_init(&work, "rels.xlsx", &["xl/_rels/workbook.xml.rels", "1 MB"]);
    workbook(
        &work.path("blank.xlsx"),
        Box::new(|out| {
            out.write_all(header_row().as_bytes()).unwrap();
            out.write_all(data_rows(2, 5).as_bytes()).unwrap();
            repeat(out, b" ", 64 << 20);
            out.write_all(data_rows(7, 5).as_bytes()).unwrap();
        }),
        None,
        0,
    );
    refused_by_validate_and_init(
        &work,
        "blank.xlsx",
        &["sheet \"Orders\"", "after row 6", "blank space", "1 MB"],
    );
}

/// A line of 64 MB among good rows is one rejected row, read past under
/// the bound; a stray quote that runs to the end is the file's fault.
#[test]
fn a_csv_line_past_1_mb_is_a_rejected_row_and_a_stray_quote_is_refused() {
    let work = Workdir::new();
    let mut text = HEADERS.join(",").into_bytes();
    text.extend_from_slice(b"\n");
    text.extend_from_slice(values(2).join(",").as_bytes());
    text.extend_from_slice(b"\n");
    text.extend(std::iter::repeat_n(b'A', 64 << 20));
    text.extend_from_slice(b"\n");
    text.extend_from_slice(values(4).join(",").as_bytes());
    text.extend_from_slice(b"\n");
    // Then a row of 20,000 fields.
    text.extend(std::iter::repeat_n(b',', 20_000));
    text.extend_from_slice(b"\n");
    work.write("long-line.csv", &text);
    drop(text);
    let (run, peak) = work.run_measuring_memory(&["validate", "long-line.csv", "--out", "out"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(peak < MEMORY_BOUND, "peaked at {} MB", peak >> 20);
    let (read, valid, rejected, _) = crate::common::rows(&work.summary());
    assert_eq!((read, valid, rejected), (4, 2, 2));
    let rejected = work.read_csv_output("out/rejected.csv");
    let mut reader = csv::Reader::from_reader(rejected.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&rows[0][0], "3");
    assert!(rows[0][2].contains("longer than 1 MB"), "{:?}", rows[0]);
    assert_eq!(&rows[1][0], "5");
    assert!(rows[1][2].contains("16,384 fields"), "{:?}", rows[1]);
    assert!(rejected.len() < 10_000, "the long line is not copied out");
    // A stray quote makes the rest of the file one value: refused.
    let mut quoted = HEADERS.join(",").into_bytes();
    quoted.extend_from_slice(b"\n\"PAY1,");
    quoted.extend(b"x\n".repeat(1 << 20));
    work.write("quote.csv", &quoted);
    refused_by_validate_and_init(&work, "quote.csv", &["quote.csv", "line 2", "never closed"]);
}

#[test]
fn blank_lines_after_the_rows_do_not_size_memory() {
    let work = Workdir::new();
    let mut text = HEADERS.join(",").into_bytes();
    text.push(b'\n');
    for row in 2..302 {
        text.extend_from_slice(values(row).join(",").as_bytes());
        text.push(b'\n');
    }
    // The first rows are short, the file is long: an estimate of rows
    // from both was once trusted to size the cross-row index.
    text.extend(std::iter::repeat_n(b'\n', 200 << 20));
    work.write("blank.csv", &text);
    drop(text);
    let (run, peak) = work.run_measuring_memory(&["validate", "blank.csv", "--out", "out"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The index is sized from the estimate up to a million rows at most
    // (a unit test of the stream checks the cap); 1 GB of blank lines took
    // 2.1 GB before.
    assert!(peak < MEMORY_BOUND, "peaked at {} MB", peak >> 20);
    assert_eq!(crate::common::rows(&work.summary()).1, 300);
}

/// A sheet 16,384 columns wide (Excel's most), one cell in its last
/// column on every row, and one row with a merchant name over Excel's
/// 32,767 characters.
#[test]
fn a_workbook_16384_columns_wide_streams_and_cuts_what_excel_cannot_hold() {
    let work = Workdir::new();
    let long_name = "长".repeat(40_000);
    workbook(
        &work.path("wide.xlsx"),
        Box::new(|out| {
            let mut header = header_row();
            header.truncate(header.len() - "</row>".len());
            header.push_str("<c r=\"XFD1\" t=\"inlineStr\"><is><t>note</t></is></c></row>");
            out.write_all(header.as_bytes()).unwrap();
            for row in 2..3002u32 {
                let mut values = values(row);
                if row == 2 {
                    values[5] = long_name.clone();
                }
                let mut xml = text_cells(row, &values.each_ref().map(String::as_str));
                xml.truncate(xml.len() - "</row>".len());
                xml.push_str(&format!("<c r=\"XFD{row}\"><v>1</v></c></row>"));
                out.write_all(xml.as_bytes()).unwrap();
            }
        }),
        None,
        0,
    );
    let (run, peak): (Run, u64) =
        work.run_measuring_memory(&["validate", "wide.xlsx", "--out", "out"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(peak < MEMORY_BOUND, "peaked at {} MB", peak >> 20);
    let (read, valid, rejected, _) = crate::common::rows(&work.summary());
    assert_eq!((read, valid, rejected), (3000, 2999, 1));
    // The CSV keeps the whole name; the workbook cuts it and says so, and
    // gives the columns past Excel's last to a mark.
    let csv = work.read_csv_output("out/rejected.csv");
    assert!(csv.contains(&long_name));
    let mut book: Xlsx<_> = open_workbook(work.path("out/rejected.xlsx")).unwrap();
    let sheet = book.worksheet_range("rejected").unwrap();
    assert_eq!(sheet.width(), 16_384);
    let header: Vec<String> = sheet
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(
        header[16_383].contains("3 more columns cut"),
        "{}",
        header[16_383]
    );
    let name_column = header.iter().position(|h| h == HEADERS[5]).unwrap();
    let cut = sheet.get((1, name_column)).unwrap().to_string();
    assert_eq!(cut.chars().count(), 32_767);
    assert!(cut.starts_with("长长长") && cut.ends_with("the CSV file has the whole value]"));
}

#[test]
fn a_cell_past_excels_last_column_is_refused() {
    let work = Workdir::new();
    workbook(
        &work.path("far.xlsx"),
        Box::new(|out| {
            out.write_all(header_row().as_bytes()).unwrap();
            out.write_all(b"<row r=\"2\"><c r=\"ZZZZ2\"><v>1</v></c></row>")
                .unwrap();
        }),
        None,
        0,
    );
    let run = work.run(&["validate", "far.xlsx", "--out", "out"]);
    run.expect_fatal(&["far.xlsx", "line 2", "past column XFD"]);
}

/// IDs and names a spreadsheet would run as formulas are rejected with the
/// reason; every cell that would run is written to the CSV files behind a
/// `'`, and `rejected.xlsx` keeps it as a text cell.
#[test]
fn values_that_a_spreadsheet_would_run_are_rejected_and_written_inert() {
    let work = Workdir::new();
    let mut text = HEADERS.join(",");
    text.push_str(",note\n");
    let mut line = |row: u32, change: &dyn Fn(&mut [String; 10]), note: &str| {
        let mut values = values(row);
        change(&mut values);
        text.push_str(&values.join(","));
        text.push_str(&format!(",{note}\n"));
    };
    line(2, &|v| v[0] = "=HYPERLINK(\"http://x\")".into(), "ok");
    line(3, &|v| v[1] = "+8613800000000".into(), "ok");
    line(4, &|v| v[5] = "-shop".into(), "ok");
    line(5, &|v| v[4] = "@SUM(A1)".into(), "ok");
    line(6, &|v| v[0] = "'=1+1".into(), "ok");
    line(7, &|_| {}, "=cmd|' /C calc'!A0");
    // Quoted so that the CSV keeps the formula as one field.
    let text = text.replace(
        "=HYPERLINK(\"http://x\")",
        "\"=HYPERLINK(\"\"http://x\"\")\"",
    );
    work.write("orders.csv", &text);
    let run = work.run(&["validate", "orders.csv", "--out", "out"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let (read, valid, rejected, _) = crate::common::rows(&work.summary());
    assert_eq!((read, valid, rejected), (6, 1, 5));
    let rejected_csv = work.read_csv_output("out/rejected.csv");
    assert!(rejected_csv.contains("which a spreadsheet runs as a formula"));
    let mut reader = csv::Reader::from_reader(rejected_csv.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flat_map(|record| {
            record
                .unwrap()
                .iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    // No cell of the file starts a formula; each such value is behind a quote.
    for cell in &cells {
        assert!(
            !matches!(
                cell.chars().next(),
                Some('=' | '+' | '-' | '@' | '\t' | '\r')
            ),
            "a live formula in rejected.csv: {cell:?}"
        );
    }
    for value in [
        "'=HYPERLINK(\"http://x\")",
        "'+8613800000000",
        "'-shop",
        "'@SUM(A1)",
    ] {
        assert!(
            cells.iter().any(|cell| cell == value),
            "{value} not in {cells:?}"
        );
    }
    let mut book: Xlsx<_> = open_workbook(work.path("out/rejected.xlsx")).unwrap();
    let sheet = book.worksheet_range("rejected").unwrap();
    let formulas = book.worksheet_formula("rejected").unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no formula cells"
    );
    assert!(
        sheet
            .used_cells()
            .any(|(_, _, cell)| matches!(cell, calamine::Data::String(text) if text == "=HYPERLINK(\"http://x\")"))
    );
}

/// The out folder `validate` creates and its `report.html` are the
/// owner's alone, and a certificate number in scientific notation is not
/// quoted in the row's message.
#[test]
fn outputs_are_owner_only_and_messages_quote_no_certificate_digits() {
    use std::os::unix::fs::PermissionsExt;
    let work = Workdir::new();
    let mut text = HEADERS.join(",");
    text.push_str(",buyerCertificate.certificateType,buyerCertificate.certificateNo\n");
    text.push_str(&values(2).join(","));
    text.push_str(",ID_CARD,1.10105E+17\n");
    work.write("orders.csv", &text);
    let run = work.run(&["validate", "orders.csv", "--out", "out"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let mode = |name: &str| {
        std::fs::metadata(work.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("out"), 0o700);
    assert_eq!(mode("out/report.html"), 0o600);
    assert_eq!(mode("out/rejected.csv"), 0o600);
    let rejected = work.read_csv_output("out/rejected.csv");
    let mut reader = csv::Reader::from_reader(rejected.as_bytes());
    let record = reader.records().next().unwrap().unwrap();
    assert!(record[2].contains("scientific notation"), "{}", &record[2]);
    assert!(!record[2].contains("10105"), "{}", &record[2]);
    let report = std::fs::read_to_string(work.path("out/report.html")).unwrap();
    assert!(
        !report.contains("1.10105E+17"),
        "the report quotes the number"
    );
}

/// A workbook of one sheet stored as `part` (the workbook's relationships
/// name it `target`), whose whole XML `sheet` writes.
fn raw_workbook(path: &Path, part: &str, target: &str, sheet: PartWriter<'_>) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, text) in [
        ("[Content_Types].xml", r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_owned()),
        ("_rels/.rels", r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned()),
        ("xl/workbook.xml", r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_owned()),
        ("xl/_rels/workbook.xml.rels", format!(r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="{target}"/></Relationships>"#)),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.start_file(part, options).unwrap();
    sheet(&mut zip);
    zip.finish().unwrap();
}

const SHEET_START: &[u8] =
    br#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;

#[test]
fn a_sheet_stored_under_another_name_or_case_is_checked_too() {
    let work = Workdir::new();
    // calamine finds parts without regard to case and of any extension.
    raw_workbook(
        &work.path("renamed.xlsx"),
        "xl/worksheets/Sheet1.bin",
        "worksheets/sheet1.bin",
        Box::new(|out| {
            out.write_all(SHEET_START).unwrap();
            out.write_all(header_row().as_bytes()).unwrap();
            out.write_all(data_rows(2, 3).as_bytes()).unwrap();
            repeat(out, b" ", 64 << 20);
            out.write_all(b"</sheetData></worksheet>").unwrap();
        }),
    );
    refused_by_validate_and_init(
        &work,
        "renamed.xlsx",
        &["sheet \"Orders\"", "after row 4", "1 MB"],
    );
}

#[test]
fn a_row_cannot_gather_more_than_4_mb_from_merged_or_scattered_cells() {
    let work = Workdir::new();
    let long = "x".repeat(20_000);
    // One 20,000-character value merged across all 16,384 columns.
    raw_workbook(
        &work.path("merged.xlsx"),
        "xl/worksheets/sheet1.xml",
        "worksheets/sheet1.xml",
        Box::new(|out| {
            out.write_all(SHEET_START).unwrap();
            out.write_all(header_row().as_bytes()).unwrap();
            out.write_all(text_cells(2, &[&long]).as_bytes()).unwrap();
            out.write_all(b"</sheetData><mergeCells count=\"1\"><mergeCell ref=\"A2:XFD2\"/></mergeCells></worksheet>").unwrap();
        }),
    );
    refused_by_validate_and_init(
        &work,
        "merged.xlsx",
        &["line 2", "more than 4 MB", "merged"],
    );
    // 600 row elements, each with one 900 KB cell addressed to row 2.
    let big = "y".repeat(900_000);
    raw_workbook(
        &work.path("scattered.xlsx"),
        "xl/worksheets/sheet1.xml",
        "worksheets/sheet1.xml",
        Box::new(|out| {
            out.write_all(SHEET_START).unwrap();
            out.write_all(header_row().as_bytes()).unwrap();
            for column in 0..600 {
                out.write_all(format!("<row r=\"{}\"><c r=\"{}2\" t=\"inlineStr\"><is><t>{big}</t></is></c></row>", column + 2, column_letters(column)).as_bytes()).unwrap();
            }
            out.write_all(b"</sheetData></worksheet>").unwrap();
        }),
    );
    refused_by_validate_and_init(&work, "scattered.xlsx", &["line 2", "more than 4 MB"]);
}
