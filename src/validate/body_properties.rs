//! Properties of the request a valid row becomes: for any generated row,
//! the body holds exactly its values, as strings, in the spec's shape.

use super::*;
use crate::config::Config;
use crate::protocol::HolderName;
use crate::validate::rules::properties::resident_id;
use proptest::prelude::*;
use std::path::Path;

/// The columns of a generated row, in order: `Field::ALL` less region
/// and currency (left to their defaults, CN and CNY) and the middle name
/// and expiry date, which the generated certificates leave out.
const COLUMNS: [Field; 14] = [
    Field::PaymentRequestId,
    Field::CustomsDeclarationRequestId,
    Field::CustomsCode,
    Field::MerchantCustomsCode,
    Field::MerchantCustomsName,
    Field::AmountValue,
    Field::IsSplit,
    Field::ReferenceOrderId,
    Field::CertificateType,
    Field::CertificateNo,
    Field::HolderFullName,
    Field::HolderFirstName,
    Field::HolderLastName,
    Field::EffectiveDate,
];

fn rules() -> RowRules {
    let config = Config::parse("", Path::new("t.toml")).unwrap();
    let settings = config.field_settings(Path::new("t.toml")).unwrap();
    let headers: Vec<String> = COLUMNS.iter().map(|f| f.name().to_owned()).collect();
    let (map, _) = ColumnMap::resolve(&headers, &settings, 1).unwrap();
    RowRules::new(
        map,
        config.customs_codes(),
        config.input.amount_unit,
        Some(COLUMNS.len()),
    )
}

/// An ID as order systems make them; it starts with a letter so that it
/// never reads as a number.
fn id() -> impl Strategy<Value = String> {
    "[A-Z][A-Za-z0-9_-]{0,63}"
}

/// Free text as a person types it: any printable characters (quotes,
/// backslashes, Chinese, emoji), trimmed, not empty, and not starting
/// like a formula (a rule of its own).
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 1..=max_chars)
        .prop_map(|chars| {
            chars
                .into_iter()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .prop_filter("not empty after trimming", |text| !text.is_empty())
        .prop_filter("not a formula", |text| starts_like_formula(text).is_none())
}

prop_compose! {
    fn certificate()(
        number in resident_id(),
        full_name in text(128),
        first_name in proptest::option::of(text(32)),
        last_name in proptest::option::of(text(32)),
        effective in proptest::option::of((1990i32..2040, 1u32..=12, 1u32..=28)),
    ) -> BuyerCertificate {
        BuyerCertificate {
            certificate_type: "ID_CARD".into(),
            certificate_no: number,
            holder_name: Some(HolderName {
                first_name,
                middle_name: None,
                last_name,
                full_name,
            }),
            effective_date: effective
                .map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}T00:00:00+08:00")),
            expire_date: None,
        }
    }
}

prop_compose! {
    fn request()(
        payment_request_id in id(),
        request_id in id(),
        customs_code in prop::sample::select(vec!["ZONGSHU", "NINGBO", "SHANGHAI_CBT"]),
        merchant_code in id(),
        merchant_name in text(256),
        fen in 1u64..=999_999_999_999_999_999,
        reference_order_id in proptest::option::of(id()),
        split in any::<bool>(),
        buyer_certificate in proptest::option::of(certificate()),
    ) -> DeclareRequest {
        DeclareRequest {
            payment_request_id,
            customs_declaration_request_id: request_id,
            customs: Customs { customs_code: customs_code.into(), region: "CN".into() },
            merchant_customs_info: MerchantCustomsInfo {
                merchant_customs_code: merchant_code,
                merchant_customs_name: merchant_name,
            },
            declaration_amount: Amount { currency: "CNY".into(), value: fen.to_string() },
            is_split: (split && reference_order_id.is_some()).into(),
            reference_order_id,
            buyer_certificate,
        }
    }
}

/// The CSV row a finance export would hold for `request`.
fn row_of(request: &DeclareRequest) -> csv::StringRecord {
    let certificate = request.buyer_certificate.as_ref();
    let name = certificate.and_then(|c| c.holder_name.as_ref());
    let cells: [Option<&str>; 14] = [
        Some(&request.payment_request_id),
        Some(&request.customs_declaration_request_id),
        Some(&request.customs.customs_code),
        Some(&request.merchant_customs_info.merchant_customs_code),
        Some(&request.merchant_customs_info.merchant_customs_name),
        Some(&request.declaration_amount.value),
        Some(request.is_split.as_str()),
        request.reference_order_id.as_deref(),
        certificate.map(|c| c.certificate_type.as_str()),
        certificate.map(|c| c.certificate_no.as_str()),
        name.map(|n| n.full_name.as_str()),
        name.and_then(|n| n.first_name.as_deref()),
        name.and_then(|n| n.last_name.as_deref()),
        certificate.and_then(|c| c.effective_date.as_deref()),
    ];
    csv::StringRecord::from(cells.map(|cell| cell.unwrap_or("")).to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_body_value_is_a_string_and_parses_back_to_the_row(request in request()) {
        let record = row_of(&request);
        let verdict = rules().check(&RowRef::from_record(2, &record));
        let valid = match verdict {
            Verdict::Valid(valid) => valid,
            Verdict::Rejected(problems) => {
                return Err(TestCaseError::fail(format!("rejected: {problems:?}")));
            }
            Verdict::Totals => return Err(TestCaseError::fail("taken for a totals row")),
        };
        let body = valid.request.to_body();
        crate::fuzzing::assert_body_of_strings(&body);
        let parsed: DeclareRequest = serde_json::from_slice(&body).unwrap();
        prop_assert_eq!(&parsed, &request);
        prop_assert_eq!(valid.request, request);
    }
}
