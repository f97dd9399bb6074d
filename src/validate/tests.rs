//! The rules on single rows and across rows, checked row by row.

use super::*;
use crate::config::Config;
use std::path::Path;

const HEADERS: [&str; 13] = [
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
    "buyerCertificate.holderName.firstName",
    "buyerCertificate.effectiveDate",
];

fn validator(config_text: &str) -> Validator {
    let config = Config::parse(config_text, Path::new("t.toml")).unwrap();
    let settings = config.field_settings(Path::new("t.toml")).unwrap();
    let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let (map, _) = ColumnMap::resolve(&headers, &settings, 1).unwrap();
    Validator::new(RowRules::new(
        map,
        config.customs_codes(),
        config.input.amount_unit,
        Some(HEADERS.len()),
    ))
}

/// A valid row, with `changes` applied as (column, value).
fn row(changes: &[(usize, &str)]) -> csv::StringRecord {
    let mut cells = vec![
        "P1", "D1", "ZONGSHU", "M1", "Shop", "100", "false", "", "", "", "", "", "",
    ];
    for &(column, value) in changes {
        cells[column] = value;
    }
    csv::StringRecord::from(cells)
}

fn check(validator: &mut Validator, line: u64, record: &csv::StringRecord) -> Verdict {
    validator.check(&RowRef::from_record(line, record))
}

fn codes(verdict: Verdict) -> Vec<(&'static str, &'static str)> {
    match verdict {
        Verdict::Valid(_) => Vec::new(),
        Verdict::Rejected(problems) => problems.iter().map(|p| (p.field, p.code())).collect(),
        Verdict::Totals => vec![("row", "TOTALS")],
    }
}

fn body(verdict: Verdict) -> String {
    match verdict {
        Verdict::Valid(valid) => String::from_utf8(valid.request.to_body()).unwrap(),
        Verdict::Rejected(problems) => panic!("rejected: {problems:?}"),
        Verdict::Totals => panic!("taken for a totals row"),
    }
}

#[test]
fn totals_and_footer_rows_are_found_before_any_other_check() {
    let mut v = validator("");
    let totals = |verdict: Verdict| matches!(verdict, Verdict::Totals);
    // 合计 in the payment-ID column, the amounts summed beside it.
    assert!(totals(check(
        &mut v,
        30,
        &row(&[
            (0, "合计"),
            (1, ""),
            (2, ""),
            (3, ""),
            (4, ""),
            (5, "12345")
        ])
    )));
    // A footer with a colon (either width) and text; fewer fields than
    // the header: found before the field count is checked.
    for footer in ["制表人：张三", "Prepared by: Li", "TOTAL", " 备注: none "] {
        let record = csv::StringRecord::from(vec![footer]);
        assert!(totals(check(&mut v, 31, &record)), "{footer}");
    }
    // The label in a later column, the ID columns empty.
    assert!(totals(check(
        &mut v,
        32,
        &row(&[
            (0, ""),
            (1, ""),
            (2, ""),
            (3, ""),
            (4, "Subtotal"),
            (5, "300"),
            (6, "")
        ])
    )));
    // Not totals: an ID that merely starts with "Total", a label with
    // a request ID on the row, a label that is not the first cell.
    for record in [
        row(&[(0, "TOTAL2026001")]),
        row(&[(0, "Total Wines")]),
        row(&[(0, "合计")]),
        row(&[(0, ""), (1, ""), (2, "ZONGSHU"), (4, "合计")]),
    ] {
        assert!(!totals(check(&mut v, 33, &record)), "{record:?}");
    }
    assert!(is_totals_label("sum"));
    assert!(!is_totals_label("summary"));
}

#[test]
fn a_minimal_row_becomes_a_body_of_strings() {
    let mut v = validator("");
    assert_eq!(
        body(check(&mut v, 2, &row(&[(2, " ningbo "), (5, "0100")]))),
        r#"{"paymentRequestId":"P1","customsDeclarationRequestId":"D1","customs":{"customsCode":"NINGBO","region":"CN"},"merchantCustomsInfo":{"merchantCustomsCode":"M1","merchantCustomsName":"Shop"},"declarationAmount":{"currency":"CNY","value":"100"},"isSplit":"false"}"#
    );
}

#[test]
fn every_required_field_is_required() {
    let mut v = validator("");
    for (column, header) in HEADERS.iter().enumerate().take(7) {
        let verdict = check(&mut v, 2, &row(&[(column, "  ")]));
        assert_eq!(codes(verdict), [(*header, "REQUIRED")], "column {column}");
    }
}

#[test]
fn lengths_are_counted_in_characters() {
    let mut v = validator("");
    let name_256 = "店".repeat(256);
    assert!(codes(check(&mut v, 2, &row(&[(4, &name_256)]))).is_empty());
    let name_257 = "店".repeat(257);
    assert_eq!(
        codes(check(
            &mut v,
            3,
            &row(&[(0, "P2"), (1, "D2"), (4, &name_257)])
        )),
        [("merchantCustomsInfo.merchantCustomsName", "TOO_LONG")]
    );
    let id_65 = "9".repeat(65);
    assert_eq!(
        codes(check(&mut v, 4, &row(&[(0, "P4"), (1, &id_65)]))),
        [("customsDeclarationRequestId", "TOO_LONG")]
    );
}

#[test]
fn region_currency_and_customs_code_have_fixed_values() {
    let mut v = validator("[defaults]\n\"customs.region\" = \"US\"\n");
    assert_eq!(
        codes(check(&mut v, 2, &row(&[]))),
        [("customs.region", "REGION_NOT_CN")]
    );
    let mut v = validator("[defaults]\n\"declarationAmount.currency\" = \"USD\"\n");
    assert_eq!(
        codes(check(&mut v, 2, &row(&[]))),
        [("declarationAmount.currency", "CURRENCY_NOT_CNY")]
    );
    let mut v = validator("[validate]\ncustoms_codes = [\"zongshu\"]\n");
    assert!(codes(check(&mut v, 2, &row(&[]))).is_empty());
    assert_eq!(
        codes(check(
            &mut v,
            3,
            &row(&[(0, "P3"), (1, "D3"), (2, "NINGBO")])
        )),
        [("customs.customsCode", "CUSTOMS_CODE_NOT_ACCEPTED")]
    );
}

#[test]
fn amounts_in_yuan_are_converted_exactly() {
    let mut v = validator("[input]\namount_unit = \"yuan\"\n");
    let text = body(check(&mut v, 2, &row(&[(5, "¥1,234.5")])));
    assert!(text.contains(r#""value":"123450""#), "{text}");
    assert_eq!(
        codes(check(
            &mut v,
            3,
            &row(&[(0, "P3"), (1, "D3"), (5, "1.234")])
        )),
        [("declarationAmount.value", "AMOUNT_INVALID")]
    );
}

#[test]
fn split_rows_need_a_reference_order() {
    let mut v = validator("");
    assert_eq!(
        codes(check(&mut v, 2, &row(&[(6, "是")]))),
        [("referenceOrderId", "REQUIRED_WHEN_SPLIT")]
    );
    let text = body(check(&mut v, 3, &row(&[(6, "TRUE"), (7, "R1")])));
    assert!(
        text.contains(r#""isSplit":"true","referenceOrderId":"R1""#),
        "{text}"
    );
    // Not split: a given reference order is still sent.
    let text = body(check(&mut v, 4, &row(&[(0, "P4"), (1, "D4"), (7, "R4")])));
    assert!(
        text.contains(r#""isSplit":"false","referenceOrderId":"R4""#),
        "{text}"
    );
}

#[test]
fn buyer_certificate_rules() {
    let mut v = validator("[defaults]\n\"buyerCertificate.certificateType\" = \"ID_CARD\"\n");
    // A default type alone, or name parts without a number, send nothing.
    let text = body(check(&mut v, 2, &row(&[(10, "张三"), (12, "garbage")])));
    assert!(!text.contains("buyerCertificate"), "{text}");
    let text = body(check(
        &mut v,
        3,
        &row(&[
            (0, "P3"),
            (1, "D3"),
            (9, "11010519491231002x"),
            (10, "张三"),
            (12, "2015/3/1"),
        ]),
    ));
    assert!(
        text.ends_with(
            r#""buyerCertificate":{"certificateType":"ID_CARD","certificateNo":"11010519491231002X","holderName":{"fullName":"张三"},"effectiveDate":"2015-03-01T00:00:00+08:00"}}"#
        ),
        "{text}"
    );
    assert_eq!(
        codes(check(
            &mut v,
            4,
            &row(&[
                (0, "P4"),
                (1, "D4"),
                (8, "PASSPORT"),
                (9, "11010519491231002X")
            ])
        )),
        [(
            "buyerCertificate.certificateType",
            "CERTIFICATE_TYPE_INVALID"
        )]
    );
    assert_eq!(
        codes(check(
            &mut v,
            5,
            &row(&[(0, "P5"), (1, "D5"), (9, "110105194912310021")])
        )),
        [("buyerCertificate.certificateNo", "CERTIFICATE_NO_INVALID")]
    );
    assert_eq!(
        codes(check(
            &mut v,
            6,
            &row(&[(0, "P6"), (1, "D6"), (9, "11010519491231002X"), (11, "San")])
        )),
        [("buyerCertificate.holderName.fullName", "FULL_NAME_REQUIRED")]
    );
    assert_eq!(
        codes(check(
            &mut v,
            7,
            &row(&[
                (0, "P7"),
                (1, "D7"),
                (9, "11010519491231002X"),
                (12, "2015-02-30")
            ])
        )),
        [("buyerCertificate.effectiveDate", "DATE_INVALID")]
    );
    let mut no_default = validator("");
    assert_eq!(
        codes(check(
            &mut no_default,
            2,
            &row(&[(9, "11010519491231002X")])
        )),
        [("buyerCertificate.certificateType", "REQUIRED")]
    );
}

#[test]
fn cross_row_duplicates_conflicts_and_orders() {
    let mut v = validator("");
    assert!(codes(check(&mut v, 2, &row(&[]))).is_empty());
    // Same ID, same normalised body (whitespace and case differ).
    assert_eq!(
        codes(check(&mut v, 3, &row(&[(2, "zongshu "), (5, "0100")]))),
        [("customsDeclarationRequestId", "DUPLICATE_ROW")]
    );
    assert_eq!(
        codes(check(&mut v, 4, &row(&[(5, "200")]))),
        [("customsDeclarationRequestId", "REQUEST_ID_REUSED")]
    );
    assert_eq!(
        codes(check(&mut v, 5, &row(&[(1, "D5")]))),
        [("paymentRequestId", "ORDER_ALREADY_DECLARED")]
    );
    // The same payment at another customs is another declaration.
    assert!(codes(check(&mut v, 6, &row(&[(1, "D6"), (2, "NINGBO")]))).is_empty());
    // Split orders are keyed by their reference order.
    let split = |id: &'static str, reference: &'static str| {
        row(&[(0, "P9"), (1, id), (6, "true"), (7, reference)])
    };
    assert!(codes(check(&mut v, 7, &split("D7", "R1"))).is_empty());
    assert!(codes(check(&mut v, 8, &split("D8", "R2"))).is_empty());
    assert_eq!(
        codes(check(&mut v, 9, &split("D9", "R1"))),
        [("referenceOrderId", "ORDER_ALREADY_DECLARED")]
    );
    // A rejected row claims nothing: its ID stays free.
    assert!(!codes(check(&mut v, 10, &row(&[(0, "P10"), (1, "D10"), (5, "x")]))).is_empty());
    assert!(codes(check(&mut v, 11, &row(&[(0, "P10"), (1, "D10")]))).is_empty());
    assert_eq!(v.valid_rows(), 5);
    // A rejected row is told of the conflicts it would meet once fixed too,
    // with its own errors: an order declared by an earlier row…
    assert_eq!(
        codes(check(&mut v, 12, &row(&[(1, "D12"), (5, "x")]))),
        [
            ("declarationAmount.value", "AMOUNT_INVALID"),
            ("paymentRequestId", "ORDER_ALREADY_DECLARED")
        ]
    );
    // …an earlier row's request ID…
    assert_eq!(
        codes(check(&mut v, 13, &row(&[(0, "P13"), (5, "x")]))),
        [
            ("declarationAmount.value", "AMOUNT_INVALID"),
            ("customsDeclarationRequestId", "REQUEST_ID_REUSED")
        ]
    );
    // …a split order by its reference; and an unreadable isSplit names no order.
    assert_eq!(
        codes(check(
            &mut v,
            14,
            &row(&[(0, "P14"), (1, "D14"), (5, "x"), (6, "true"), (7, "R2")])
        ))[1],
        ("referenceOrderId", "ORDER_ALREADY_DECLARED")
    );
    assert_eq!(
        codes(check(&mut v, 15, &row(&[(1, "D15"), (6, "maybe")]))),
        [("isSplit", "IS_SPLIT_INVALID")]
    );
    assert_eq!(v.valid_rows(), 5, "still claims nothing");
}

#[test]
fn shifted_csv_rows_are_rejected_whole() {
    let mut v = validator("");
    let record = csv::StringRecord::from(vec!["P1", "D1", "ZONGSHU"]);
    assert_eq!(codes(check(&mut v, 2, &record)), [("row", "FIELD_COUNT")]);
}
