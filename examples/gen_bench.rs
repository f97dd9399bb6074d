//! Writes a large, realistic order export for benchmarks (see
//! BENCHMARKS.md): unique IDs, a quarter of the orders split, 40 % with a
//! buyer certificate (valid check characters), Chinese merchant and buyer
//! names, and one row in 500 invalid so that rejection is exercised too.
//!
//! `cargo run --release --example gen_bench -- csv 1000000 /tmp/bench.csv`
//! `cargo run --release --example gen_bench -- xlsx 200000 /tmp/bench.xlsx`
//! `cargo run --release --example gen_bench -- xlsx-merged 200000 /tmp/merged.xlsx`
//! (the merchant name merged over each pair of rows, as some ERPs export
//! split orders: one merged range per two rows)
//! `cargo run --release --example gen_bench -- payments 10000 /tmp/payments.csv`
//! (the sandbox payments those orders refer to, so that they succeed)

use std::error::Error;
use std::io::{BufWriter, Write};

const HEADERS: [&str; 15] = [
    "paymentRequestId",
    "customsDeclarationRequestId",
    "customs.customsCode",
    "customs.region",
    "merchantCustomsInfo.merchantCustomsCode",
    "merchantCustomsInfo.merchantCustomsName",
    "declarationAmount.value",
    "declarationAmount.currency",
    "isSplit",
    "referenceOrderId",
    "buyerCertificate.certificateType",
    "buyerCertificate.certificateNo",
    "buyerCertificate.holderName.fullName",
    "buyerCertificate.effectiveDate",
    "buyerCertificate.expireDate",
];

const CUSTOMS: [&str; 4] = ["ZONGSHU", "ZHENGZHOU", "NINGBO", "SHANGHAI_CBT"];
const NAMES: [&str; 8] = [
    "张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十",
];

fn id_number(seed: u64) -> String {
    const WEIGHTS: [u64; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let first17 = format!(
        "{:06}{:04}{:02}{:02}{:03}",
        110_000 + seed % 90_000,
        1950 + seed % 50,
        1 + seed % 12,
        1 + seed % 28,
        seed % 1000
    );
    let sum: u64 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u64::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

fn row(index: u64) -> [String; 15] {
    let split = index.is_multiple_of(4);
    let certificate = index % 5 < 2;
    let mut cells = [
        format!("PAY{:020}", index),
        format!("DCL{:020}", index),
        CUSTOMS[(index % 4) as usize].to_owned(),
        "CN".to_owned(),
        format!("33019{:05}", index % 100),
        "杭州优选跨境贸易有限公司".to_owned(),
        (100 + index * 37 % 500_000).to_string(),
        "CNY".to_owned(),
        if split { "true" } else { "false" }.to_owned(),
        if split {
            format!("ORD{:020}-1", index)
        } else {
            String::new()
        },
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ];
    if certificate {
        cells[10] = "ID_CARD".to_owned();
        cells[11] = id_number(index);
        cells[12] = NAMES[(index % 8) as usize].to_owned();
        cells[13] = "2015-03-01".to_owned();
        cells[14] = "2035-03-01".to_owned();
    }
    if index % 500 == 499 {
        cells[2] = "HANGZHOU".to_owned();
    }
    cells
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, rows, path] = args.as_slice() else {
        return Err("usage: gen_bench csv|xlsx|xlsx-merged|payments ROWS PATH".into());
    };
    let rows: u64 = rows.parse()?;
    match kind.as_str() {
        "csv" => {
            let file = BufWriter::new(std::fs::File::create(path)?);
            let mut csv = csv::Writer::from_writer(file);
            csv.write_record(HEADERS)?;
            for index in 0..rows {
                csv.write_record(row(index))?;
            }
            csv.into_inner()?.flush()?;
        }
        "xlsx" | "xlsx-merged" => {
            let merged = kind == "xlsx-merged";
            let mut workbook = rust_xlsxwriter::Workbook::new();
            let sheet = workbook.add_worksheet();
            for (col, header) in HEADERS.iter().enumerate() {
                sheet.write_string(0, col as u16, *header)?;
            }
            for index in 0..rows {
                let sheet_row = index as u32 + 1;
                for (col, cell) in row(index).iter().enumerate() {
                    if cell.is_empty() {
                        continue;
                    }
                    if col == 6 {
                        sheet.write_number(sheet_row, col as u16, cell.parse::<f64>()?)?;
                    } else if merged && col == 5 {
                        // Written once per pair, as the merged range's value.
                        if index % 2 == 0 && index + 1 < rows {
                            let format = rust_xlsxwriter::Format::new();
                            sheet.merge_range(sheet_row, 5, sheet_row + 1, 5, cell, &format)?;
                        } else if index % 2 == 0 {
                            sheet.write_string(sheet_row, col as u16, cell)?;
                        }
                    } else {
                        sheet.write_string(sheet_row, col as u16, cell)?;
                    }
                }
            }
            workbook.save(path)?;
        }
        "payments" => {
            let file = BufWriter::new(std::fs::File::create(path)?);
            let mut csv = csv::Writer::from_writer(file);
            csv.write_record([
                "paymentRequestId",
                "amount",
                "payerCertificateNo",
                "payerName",
                "status",
            ])?;
            for index in 0..rows {
                let order = row(index);
                csv.write_record([
                    order[0].as_str(),
                    "1000000",
                    order[11].as_str(),
                    order[12].as_str(),
                    "OK",
                ])?;
            }
            csv.into_inner()?.flush()?;
        }
        _ => {
            return Err(format!("unknown kind {kind}: csv, xlsx, xlsx-merged or payments").into());
        }
    }
    Ok(())
}
