//! The declare response and what it means for a row. Every outcome is S,
//! F(code) (final: never retried) or Unknown(code) (retried with the same
//! ID and bytes). Unknown covers status U and everything that is not a
//! trustworthy answer: an HTTP status other than 200, a body that does not
//! parse, and a signature that does not verify. An unsigned S is not
//! trusted when a public key is configured.

use serde::{Deserialize, Serialize};

use super::Amount;
use super::signing::MessageVerifier;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    pub result_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
    pub result_status: String,
}

/// The declare API's response body, in the spec's field order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclareResponse {
    pub result: ResultInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_payment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_declaration_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_customs_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing_transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_order_amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_check_result: Option<String>,
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
    pub fn status(&self) -> &'static str {
        match self {
            DeclareOutcome::Success(_) => "S",
            DeclareOutcome::Failed { .. } => "F",
            DeclareOutcome::Unknown { .. } => "U",
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
    let response: DeclareResponse = match serde_json::from_slice(received.body) {
        Ok(response) => response,
        Err(error) => {
            return DeclareOutcome::unknown(
                "INVALID_RESPONSE",
                format!("the response body is not a declare response: {error}"),
            );
        }
    };
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
            "INVALID_RESPONSE",
            format!("the response has result status \"{other}\", not S, F or U"),
        ),
    }
}

/// The `inquireDeclarationRequests` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryResponse {
    pub result: ResultInfo,
    #[serde(default)]
    pub declaration_records: Vec<DeclarationRecord>,
    #[serde(default)]
    pub declaration_requests_not_found: Vec<String>,
}

/// One declaration as the inquiry reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclarationRecord {
    pub customs_declaration_request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_declaration_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psp_payment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs: Option<super::Customs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_customs_info: Option<super::MerchantCustomsInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_request_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<String>,
}
