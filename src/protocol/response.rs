//! The declare response and what it means for a row. Every outcome is S,
//! F(code) (final: never retried) or Unknown(code) (retried with the same
//! ID and bytes). Unknown covers status U and everything that is not a
//! trustworthy answer: an HTTP status other than 200, a body that does not
//! parse, and a signature that does not verify. An unsigned S is not
//! trusted when a public key is configured.
//!
//! Answers are read tolerantly (signing.md): only `result.resultStatus` and
//! `result.resultCode` are required; `resultMessage` and `resultMsg` both
//! read; an optional field that is missing or of an unexpected type is
//! left empty, so that it can never turn an S into anything else. The raw
//! answer is kept beside what was read.

use serde::{Deserialize, Deserializer, Serialize};

use super::Amount;
use super::signing::MessageVerifier;
use crate::outcome::Status;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "WireResultInfo")]
pub struct ResultInfo {
    pub result_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
    pub result_status: String,
}

/// `result` as it may arrive: the status and code required, the message
/// under either name the API uses, or none.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResultInfo {
    result_code: String,
    result_status: String,
    #[serde(default, deserialize_with = "lenient_text")]
    result_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    result_msg: Option<String>,
}

impl From<WireResultInfo> for ResultInfo {
    fn from(wire: WireResultInfo) -> ResultInfo {
        ResultInfo {
            result_code: wire.result_code,
            result_message: wire.result_message.or(wire.result_msg),
            result_status: wire.result_status,
        }
    }
}

/// An optional text field: a string, or a number or boolean as its text;
/// anything else (an object, an array, null) reads as absent instead of
/// failing the whole answer.
fn lenient_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    })
}

/// An optional structured field that reads as absent when it has an
/// unexpected shape.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// An amount as it may arrive: value and currency as strings or numbers.
fn lenient_amount<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Amount>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    let text = |key: &str| match value.get(key) {
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    Ok(text("value").map(|amount| Amount {
        value: amount,
        currency: text("currency").unwrap_or_default(),
    }))
}

fn lenient_list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    // Each element on its own: one odd record does not hide the others.
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// The declare API's response body, in the spec's field order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclareResponse {
    pub result: ResultInfo,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub psp_payment_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub psp_declaration_request_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub psp_customs_code: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub clearing_transaction_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub clearing_channel: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub psp_order_amount: Option<Amount>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub identity_check_result: Option<String>,
    /// The answer's body exactly as received (for the journal); empty for
    /// an answer this program built.
    #[serde(skip)]
    pub raw: String,
}

impl DeclareResponse {
    /// A response carrying only a result.
    pub fn result(status: &str, code: &str, message: &str) -> DeclareResponse {
        DeclareResponse {
            result: ResultInfo {
                result_code: code.to_owned(),
                result_message: Some(message.to_owned()),
                result_status: status.to_owned(),
            },
            ..DeclareResponse::default()
        }
    }
}

/// What a declare call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclareOutcome {
    /// Accepted (S).
    Success(DeclareResponse),
    /// Refused (F): final, never retried.
    Failed {
        code: String,
        message: String,
        response: DeclareResponse,
    },
    /// No trustworthy answer (U, or a local code): retried as it was.
    Unknown { code: String, message: String },
}

impl DeclareOutcome {
    pub fn unknown(code: impl Into<String>, message: impl Into<String>) -> DeclareOutcome {
        DeclareOutcome::Unknown {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `S`, `F` or `U`.
    pub fn status(&self) -> Status {
        match self {
            DeclareOutcome::Success(_) => Status::S,
            DeclareOutcome::Failed { .. } => Status::F,
            DeclareOutcome::Unknown { .. } => Status::U,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            DeclareOutcome::Success(response) => &response.result.result_code,
            DeclareOutcome::Failed { code, .. } | DeclareOutcome::Unknown { code, .. } => code,
        }
    }
}

/// An HTTP response as received, before it is believed.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedResponse<'a> {
    pub status: u16,
    pub client_id: Option<&'a str>,
    pub response_time: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// Turns a received response into an outcome. With a `verifier`, a signed
/// response must verify over `POST <path>\n<Client-Id>.<Response-Time>.<body>`
/// and an S must be signed.
pub fn classify(
    path: &str,
    received: &ReceivedResponse<'_>,
    verifier: Option<&MessageVerifier>,
) -> DeclareOutcome {
    if received.status != 200 {
        return DeclareOutcome::unknown(
            format!("HTTP_{}", received.status),
            format!("the endpoint answered HTTP {}", received.status),
        );
    }
    let mut response: DeclareResponse = match serde_json::from_slice(received.body) {
        Ok(response) => response,
        Err(error) => {
            return DeclareOutcome::unknown(
                "INVALID_RESPONSE",
                format!(
                    "the response body is not a declare response (result.resultStatus and \
                     result.resultCode are required): {error}"
                ),
            );
        }
    };
    response.raw = String::from_utf8_lossy(received.body).into_owned();
    if let Some(verifier) = verifier {
        let untrusted = |why: &str| {
            DeclareOutcome::unknown(
                "RESPONSE_SIGNATURE_INVALID",
                format!("the response is not trusted: {why}"),
            )
        };
        match (received.signature, received.response_time) {
            (Some(_), None) => return untrusted("it is signed but has no Response-Time header"),
            (Some(header), Some(time)) => {
                let client_id = received.client_id.unwrap_or_default();
                if !verifier.verify_header(path, client_id, time, received.body, header) {
                    return untrusted("its signature does not verify with alipay_public_key");
                }
            }
            (None, _) if response.result.result_status == "S" => {
                return untrusted("a success (S) must be signed, and this one is not");
            }
            (None, _) => {}
        }
    }
    let code = response.result.result_code.clone();
    let message = response.result.result_message.clone().unwrap_or_default();
    match response.result.result_status.as_str() {
        "S" => DeclareOutcome::Success(response),
        "F" => DeclareOutcome::Failed {
            code,
            message,
            response,
        },
        "U" => DeclareOutcome::Unknown { code, message },
        other => DeclareOutcome::unknown(
            "UNKNOWN_RESULT_STATUS",
            format!(
                "the response has result status \"{other}\" (not S, F or U), result code \
                 \"{code}\": {message}"
            ),
        ),
    }
}

/// The `inquireDeclarationRequests` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryResponse {
    pub result: ResultInfo,
    #[serde(default, deserialize_with = "lenient_list")]
    pub declaration_records: Vec<DeclarationRecord>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub declaration_requests_not_found: Vec<String>,
}

/// One declaration as the inquiry reports it. Statuses and customs codes
/// are text to record and show, not a closed list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclarationRecord {
    #[serde(default, deserialize_with = "lenient_text")]
    pub customs_declaration_request_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub psp_declaration_request_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub psp_payment_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub customs: Option<super::Customs>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub merchant_customs_info: Option<super::MerchantCustomsInfo>,
    #[serde(
        default,
        deserialize_with = "lenient_amount",
        skip_serializing_if = "Option::is_none"
    )]
    pub declaration_amount: Option<Amount>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_split: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub reference_order_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub declaration_request_status: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub modified_time: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub customs_result_code: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub customs_result_description: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub customs_result_returned_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> DeclareOutcome {
        let received = ReceivedResponse {
            status: 200,
            client_id: None,
            response_time: None,
            signature: None,
            body: body.as_bytes(),
        };
        classify("/p", &received, None)
    }

    #[test]
    fn only_status_and_code_are_required() {
        let outcome = read(r#"{"result":{"resultStatus":"S","resultCode":"SUCCESS"}}"#);
        assert_eq!(
            (outcome.status().as_str(), outcome.code()),
            ("S", "SUCCESS")
        );
        for missing in [
            r#"{"result":{"resultCode":"SUCCESS"}}"#,
            r#"{"result":{"resultStatus":"S"}}"#,
            r#"{"pspPaymentId":"x"}"#,
        ] {
            let outcome = read(missing);
            assert_eq!(
                (outcome.status().as_str(), outcome.code()),
                ("U", "INVALID_RESPONSE"),
                "{missing}"
            );
        }
    }

    #[test]
    fn result_msg_and_result_message_both_read() {
        let DeclareOutcome::Failed { message, .. } = read(
            r#"{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMsg":"short"}}"#,
        ) else {
            panic!("an F")
        };
        assert_eq!(message, "short");
        let DeclareOutcome::Failed { message, .. } = read(
            r#"{"result":{"resultStatus":"F","resultCode":"X","resultMessage":"long","resultMsg":"short"}}"#,
        ) else {
            panic!("an F")
        };
        assert_eq!(message, "long");
    }

    #[test]
    fn odd_optional_fields_never_turn_s_into_anything_else() {
        let body = r#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":{"zh":"成功"}},
            "pspPaymentId":12345,"pspDeclarationRequestId":null,"pspCustomsCode":["A"],
            "clearingChannel":true,"pspOrderAmount":{"value":1000,"currency":"CNY"},
            "identityCheckResult":{"odd":1},"somethingNew":"x"}"#;
        let DeclareOutcome::Success(response) = read(body) else {
            panic!("still an S")
        };
        assert_eq!(response.psp_payment_id.as_deref(), Some("12345"));
        assert_eq!(response.psp_declaration_request_id, None);
        assert_eq!(response.psp_customs_code, None);
        assert_eq!(response.clearing_channel.as_deref(), Some("true"));
        assert_eq!(response.psp_order_amount.unwrap().value, "1000");
        assert_eq!(response.identity_check_result, None);
        assert_eq!(response.result.result_message, None);
        assert_eq!(response.raw, body, "the raw answer is kept");
        let DeclareOutcome::Success(_) = read(
            r#"{"result":{"resultStatus":"S","resultCode":"SUCCESS"},"pspOrderAmount":"1000"}"#,
        ) else {
            panic!("an amount of the wrong shape is left out")
        };
    }

    #[test]
    fn an_unknown_result_status_is_unknown_with_its_text() {
        let outcome = read(
            r#"{"result":{"resultStatus":"P","resultCode":"PENDING","resultMessage":"later"}}"#,
        );
        let DeclareOutcome::Unknown { code, message } = &outcome else {
            panic!("U: {outcome:?}")
        };
        assert_eq!(code, "UNKNOWN_RESULT_STATUS");
        assert!(
            message.contains("\"P\"") && message.contains("PENDING") && message.contains("later"),
            "{message}"
        );
    }

    #[test]
    fn inquiry_answers_are_read_tolerantly() {
        let body = r#"{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMsg":"Success"},
            "declarationRecords":[
                {"customsDeclarationRequestId":"D1","declarationRequestStatus":"CUSTOMS_ACCEPT_SUCCESS",
                 "customsResultCode":"2","declarationAmount":{"value":"100","currency":"CNY"},
                 "customs":"not an object","modifiedTime":20261123},
                "not a record",
                {"customsDeclarationRequestId":"D2","declarationRequestStatus":"SOMETHING_NEW"}],
            "declarationRequestsNotFound":["D3", 4]}"#;
        let inquiry: InquiryResponse = serde_json::from_str(body).unwrap();
        assert_eq!(inquiry.result.result_message.as_deref(), Some("Success"));
        assert_eq!(inquiry.declaration_records.len(), 2);
        let first = &inquiry.declaration_records[0];
        assert_eq!(first.customs_declaration_request_id.as_deref(), Some("D1"));
        assert_eq!(first.customs, None);
        assert_eq!(first.modified_time.as_deref(), Some("20261123"));
        assert_eq!(first.customs_result_code.as_deref(), Some("2"));
        assert_eq!(
            inquiry.declaration_records[1]
                .declaration_request_status
                .as_deref(),
            Some("SOMETHING_NEW")
        );
        assert_eq!(inquiry.declaration_requests_not_found, ["D3"]);
    }
}
