//! Regenerates the binary and non-UTF-8 samples from `samples/orders.csv`,
//! so that all three hold the same orders:
//! `samples/orders.xlsx` (typed cells: numbers, booleans, date cells) and
//! `samples/orders_gbk.csv` (GB18030, Chinese headers, amounts in yuan, CRLF,
//! as Excel on Chinese Windows saves it; read with `config/gbk-columns.toml`).
//!
//! Run from the repository root: `cargo run --example make_samples`.

use std::error::Error;

use chrono::NaiveDate;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};

const GBK_HEADERS: [(&str, &str); 13] = [
    ("paymentRequestId", "支付单号"),
    ("customsDeclarationRequestId", "报关流水号"),
    ("customs.customsCode", "海关编码"),
    ("merchantCustomsInfo.merchantCustomsCode", "商户海关备案号"),
    (
        "merchantCustomsInfo.merchantCustomsName",
        "商户海关备案名称",
    ),
    ("declarationAmount.value", "报关金额(元)"),
    ("isSplit", "是否拆单"),
    ("referenceOrderId", "子订单号"),
    ("buyerCertificate.certificateNo", "证件号码"),
    ("buyerCertificate.holderName.fullName", "购买人姓名"),
    ("buyerCertificate.effectiveDate", "证件生效日期"),
    ("buyerCertificate.expireDate", "证件失效日期"),
    ("", "备注"),
];

fn main() -> Result<(), Box<dyn Error>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path("samples/orders.csv")?;
    let mut lines: Vec<(u64, Vec<String>)> = Vec::new();
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        lines.push((line, record.iter().map(str::to_owned).collect()));
    }
    let headers = lines[0].1.clone();
    // The csv crate numbers a record after a blank line from the blank line;
    // the sample has exactly one, before the record that follows a gap.
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|(_, cells)| cells.clone()).collect();
    let blank_before = lines
        .windows(2)
        .position(|pair| pair[1].0 > pair[0].0 + 1)
        .expect("the sample has one blank line");
    write_xlsx(&headers, &rows, blank_before)?;
    write_gbk(&headers, &rows, blank_before)?;
    Ok(())
}

fn column(headers: &[String], name: &str) -> usize {
    headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("orders.csv has no {name} column"))
}

fn write_xlsx(
    headers: &[String],
    rows: &[Vec<String>],
    blank_before: usize,
) -> Result<(), Box<dyn Error>> {
    let mut workbook = Workbook::new();
    // A fixed creation time keeps the file byte-for-byte reproducible.
    let created = ExcelDateTime::parse_from_str("2026-11-22T00:00:00")?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = workbook.add_worksheet();
    sheet.set_name("Orders")?;
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    for (col, header) in headers.iter().enumerate() {
        sheet.write_string(0, col as u16, header)?;
    }
    let amount = column(headers, "declarationAmount.value");
    let split = column(headers, "isSplit");
    let dates = [
        column(headers, "buyerCertificate.effectiveDate"),
        column(headers, "buyerCertificate.expireDate"),
    ];
    let mut sheet_row = 1u32;
    for (index, row) in rows.iter().enumerate() {
        if index == blank_before {
            sheet_row += 1;
        }
        for (col, value) in row.iter().enumerate() {
            let c = col as u16;
            if value.is_empty() {
                continue;
            }
            if col == amount
                && let Ok(number) = value.parse::<f64>()
            {
                sheet.write_number(sheet_row, c, number)?;
            } else if col == split && value.eq_ignore_ascii_case("true") {
                sheet.write_boolean(sheet_row, c, true)?;
            } else if col == split && value.eq_ignore_ascii_case("false") {
                sheet.write_boolean(sheet_row, c, false)?;
            } else if dates.contains(&col)
                && let Ok(date) = NaiveDate::parse_from_str(&value[..10], "%Y-%m-%d")
            {
                sheet.write_datetime_with_format(sheet_row, c, date, &date_format)?;
            } else {
                sheet.write_string(sheet_row, c, value)?;
            }
        }
        sheet_row += 1;
    }
    workbook.save("samples/orders.xlsx")?;
    Ok(())
}

fn write_gbk(
    headers: &[String],
    rows: &[Vec<String>],
    blank_before: usize,
) -> Result<(), Box<dyn Error>> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(GBK_HEADERS.iter().map(|(_, chinese)| *chinese))?;
    let mut text = String::from_utf8(out.into_inner()?)?;
    for (index, row) in rows.iter().enumerate() {
        if index == blank_before {
            text.push_str("\r\n");
        }
        let mut record = Vec::new();
        for (canonical, _) in GBK_HEADERS {
            if canonical.is_empty() {
                record.push(if index.is_multiple_of(4) {
                    "加急".to_owned()
                } else {
                    String::new()
                });
                continue;
            }
            let value = &row[column(headers, canonical)];
            record.push(match canonical {
                "declarationAmount.value" => fen_to_yuan(value, index),
                "isSplit" if value.eq_ignore_ascii_case("true") => "是".to_owned(),
                "isSplit" => "否".to_owned(),
                // Excel on Chinese Windows writes dates as 2015/3/1.
                "buyerCertificate.effectiveDate" | "buyerCertificate.expireDate"
                    if !value.is_empty() =>
                {
                    let date = NaiveDate::parse_from_str(&value[..10], "%Y-%m-%d")?;
                    date.format("%Y/%-m/%-d").to_string()
                }
                _ => value.clone(),
            });
        }
        let mut line = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        line.write_record(&record)?;
        text.push_str(&String::from_utf8(line.into_inner()?)?);
    }
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(&text);
    assert!(!unmappable, "GB18030 maps every character");
    std::fs::write("samples/orders_gbk.csv", bytes)?;
    Ok(())
}

/// 12800 fen → "128.00", every third as "¥1,280.00" style; an amount that
/// is not whole fen gets a third decimal place, which yuan does not allow.
fn fen_to_yuan(fen: &str, index: usize) -> String {
    let Ok(fen) = fen.parse::<u64>() else {
        return format!("{fen}5");
    };
    let (yuan, cents) = (fen / 100, fen % 100);
    if index.is_multiple_of(3) {
        let digits = yuan.to_string();
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!("¥{grouped}.{cents:02}")
    } else {
        format!("{yuan}.{cents:02}")
    }
}
