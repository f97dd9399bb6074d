//! What the sandbox checks in a declare body before anything else, as
//! Alipay+ does: a body that breaks the spec's field rules is answered
//! PARAM_ILLEGAL with the reason. The sandbox does not trust the client's
//! own validation; it applies the spec again on what arrived.

use crate::protocol::DeclareRequest;

/// The reason a body is PARAM_ILLEGAL, if it is.
pub fn param_illegal(body: &[u8], customs_codes: &[String]) -> Result<DeclareRequest, String> {
    let request: DeclareRequest = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not a declare request with string values: {e}"))?;
    let required = [
        ("paymentRequestId", &request.payment_request_id, 64),
        (
            "customsDeclarationRequestId",
            &request.customs_declaration_request_id,
            64,
        ),
        ("customs.customsCode", &request.customs.customs_code, 128),
        (
            "merchantCustomsInfo.merchantCustomsCode",
            &request.merchant_customs_info.merchant_customs_code,
            128,
        ),
        (
            "merchantCustomsInfo.merchantCustomsName",
            &request.merchant_customs_info.merchant_customs_name,
            256,
        ),
    ];
    for (name, value, max) in required {
        if value.trim().is_empty() {
            return Err(format!("{name} is required"));
        }
        if value.chars().count() > max {
            return Err(format!("{name} is longer than {max} characters"));
        }
    }
    if request.customs.region != "CN" {
        return Err("customs.region must be CN".into());
    }
    if !customs_codes
        .iter()
        .any(|code| code.eq_ignore_ascii_case(&request.customs.customs_code))
    {
        return Err(format!(
            "customs.customsCode {} is not a known customs code",
            request.customs.customs_code
        ));
    }
    if request.declaration_amount.currency != "CNY" {
        return Err("declarationAmount.currency must be CNY".into());
    }
    if request.declaration_amount.value.starts_with('0') {
        return Err(
            "declarationAmount.value must be a natural number without leading zeros".into(),
        );
    }
    fen_amount(&request.declaration_amount.value)
        .map_err(|why| format!("declarationAmount.value: {why}"))?;
    match request.is_split.as_str() {
        "true"
            if request
                .reference_order_id
                .as_deref()
                .is_none_or(str::is_empty) =>
        {
            return Err("referenceOrderId is required when isSplit is true".into());
        }
        "true" | "false" => {}
        _ => return Err("isSplit must be \"true\" or \"false\"".into()),
    }
    if request
        .reference_order_id
        .as_ref()
        .is_some_and(|r| r.chars().count() > 64)
    {
        return Err("referenceOrderId is longer than 64 characters".into());
    }
    if let Some(certificate) = &request.buyer_certificate {
        if certificate.certificate_type != "ID_CARD" {
            return Err("buyerCertificate.certificateType must be ID_CARD".into());
        }
        if certificate.certificate_no.is_empty() || certificate.certificate_no.chars().count() > 64
        {
            return Err("buyerCertificate.certificateNo is required, at most 64 characters".into());
        }
        if let Some(name) = &certificate.holder_name {
            if name.full_name.is_empty() || name.full_name.chars().count() > 128 {
                return Err(
                    "buyerCertificate.holderName.fullName is required, at most 128 characters"
                        .into(),
                );
            }
            for part in [&name.first_name, &name.middle_name, &name.last_name]
                .into_iter()
                .flatten()
            {
                if part.chars().count() > 32 {
                    return Err(
                        "a buyerCertificate.holderName part is longer than 32 characters".into(),
                    );
                }
            }
        }
        for (name, date) in [
            ("effectiveDate", &certificate.effective_date),
            ("expireDate", &certificate.expire_date),
        ] {
            if let Some(date) = date
                && chrono::DateTime::parse_from_rfc3339(date).is_err()
            {
                return Err(format!(
                    "buyerCertificate.{name} is not an ISO 8601 date-time"
                ));
            }
        }
    }
    Ok(request)
}

/// An amount in fen as the API takes it: a natural number in digits.
/// The sandbox's own reading, apart from the client's validation, so that
/// a bug in one is caught by the other.
fn fen_amount(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a whole number of fen in digits");
    }
    match text.parse::<u64>() {
        Ok(0) => Err("must be more than zero"),
        Ok(fen) => Ok(fen),
        Err(_) => Err("is too large"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_apart_from_the_client() {
        assert_eq!(fen_amount("1234"), Ok(1234));
        for bad in ["", "12.34", "-5", "1e3", " 12", "１２"] {
            assert!(fen_amount(bad).is_err(), "{bad:?}");
        }
        assert_eq!(fen_amount("0"), Err("must be more than zero"));
        assert_eq!(fen_amount("99999999999999999999"), Err("is too large"));
    }

    fn codes() -> Vec<String> {
        vec!["ZONGSHU".into()]
    }

    const GOOD: &str = r#"{"paymentRequestId":"P1","customsDeclarationRequestId":"D1","customs":{"customsCode":"zongshu","region":"CN"},"merchantCustomsInfo":{"merchantCustomsCode":"M","merchantCustomsName":"N"},"declarationAmount":{"currency":"CNY","value":"100"},"isSplit":"false"}"#;

    #[test]
    fn a_good_body_passes_and_each_rule_is_applied() {
        assert!(param_illegal(GOOD.as_bytes(), &codes()).is_ok());
        let broken = [
            (r#""value":"100""#, r#""value":100"#, "string values"),
            (
                r#""value":"100""#,
                r#""value":"0""#,
                "declarationAmount.value",
            ),
            (
                r#""value":"100""#,
                r#""value":"1.5""#,
                "declarationAmount.value",
            ),
            (r#""region":"CN""#, r#""region":"US""#, "region"),
            (r#""currency":"CNY""#, r#""currency":"USD""#, "currency"),
            (
                r#""isSplit":"false""#,
                r#""isSplit":"true""#,
                "referenceOrderId",
            ),
            (r#""isSplit":"false""#, r#""isSplit":"yes""#, "isSplit"),
            (
                r#""customsCode":"zongshu""#,
                r#""customsCode":"HANGZHOU""#,
                "customsCode",
            ),
            (
                r#""paymentRequestId":"P1""#,
                r#""paymentRequestId":"""#,
                "paymentRequestId",
            ),
        ];
        for (from, to, reason) in broken {
            let body = GOOD.replace(from, to);
            let why = param_illegal(body.as_bytes(), &codes()).unwrap_err();
            assert!(why.contains(reason), "{to}: {why}");
        }
        let with_bad_date = GOOD.replace(
            r#""isSplit":"false""#,
            r#""isSplit":"false","buyerCertificate":{"certificateType":"ID_CARD","certificateNo":"X","effectiveDate":"2019-11-27"}"#,
        );
        assert!(
            param_illegal(with_bad_date.as_bytes(), &codes())
                .unwrap_err()
                .contains("effectiveDate")
        );
    }
}
