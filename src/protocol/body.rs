//! The declare request body. Every value is a JSON string, as the API
//! requires (`"value": "100"`, `"isSplit": "true"`); empty optional fields are
//! left out; field order follows the spec's example and never changes, so a
//! resumed run re-sends identical bytes for the same row.

use serde::{Deserialize, Serialize};

/// The version of the bytes built from a row. A run records it, and a run
/// made with other bytes is never resumed: a row in doubt must be sent
/// again with exactly the bytes it had, or the API answers
/// REPEAT_REQ_INCONSISTENT. Raise it with any change to the body's fields,
/// their order or their encoding (the test below pins version 1's bytes).
pub const BODY_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclareRequest {
    pub payment_request_id: String,
    pub customs_declaration_request_id: String,
    pub customs: Customs,
    pub merchant_customs_info: MerchantCustomsInfo,
    pub declaration_amount: Amount,
    pub is_split: IsSplit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_certificate: Option<BuyerCertificate>,
}

/// `isSplit`: whether the payment is split across orders, so that the
/// order is `referenceOrderId`. On the wire the string `"true"` or
/// `"false"`; any other text read from the wire is kept as it came
/// (`Invalid`), so that the sandbox refuses it as Alipay+ does. Built from a
/// row it is always `Yes` or `No`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IsSplit {
    Yes,
    No,
    Invalid(String),
}

impl IsSplit {
    pub fn as_str(&self) -> &str {
        match self {
            IsSplit::Yes => "true",
            IsSplit::No => "false",
            IsSplit::Invalid(text) => text,
        }
    }

    pub fn is_yes(&self) -> bool {
        *self == IsSplit::Yes
    }
}

impl From<bool> for IsSplit {
    fn from(split: bool) -> IsSplit {
        if split { IsSplit::Yes } else { IsSplit::No }
    }
}

impl From<&str> for IsSplit {
    fn from(text: &str) -> IsSplit {
        match text {
            "true" => IsSplit::Yes,
            "false" => IsSplit::No,
            other => IsSplit::Invalid(other.to_owned()),
        }
    }
}

impl Serialize for IsSplit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IsSplit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<IsSplit, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(IsSplit::from(text.as_ref()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customs {
    pub customs_code: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantCustomsInfo {
    pub merchant_customs_code: String,
    pub merchant_customs_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    pub currency: String,
    /// In the smallest unit (fen), as decimal digits.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerCertificate {
    pub certificate_type: String,
    pub certificate_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<HolderName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HolderName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    pub full_name: String,
}

impl DeclareRequest {
    /// The exact bytes sent (and signed) for this request.
    pub fn to_body(&self) -> Vec<u8> {
        // Sized for a typical body, so that it is written without regrowing.
        let mut body = Vec::with_capacity(512);
        serde_json::to_writer(&mut body, self).expect("a struct of strings always serialises");
        body
    }

    /// An example request, for tests, benchmarks and the fuzzing harness:
    /// at customs ZONGSHU for merchant M1 "Shop", `amount` in fen, not
    /// split, without a buyer certificate.
    #[doc(hidden)]
    pub fn example(request_id: &str, payment_id: &str, amount: &str) -> DeclareRequest {
        DeclareRequest {
            payment_request_id: payment_id.into(),
            customs_declaration_request_id: request_id.into(),
            customs: Customs {
                customs_code: "ZONGSHU".into(),
                region: "CN".into(),
            },
            merchant_customs_info: MerchantCustomsInfo {
                merchant_customs_code: "M1".into(),
                merchant_customs_name: "Shop".into(),
            },
            declaration_amount: Amount {
                currency: "CNY".into(),
                value: amount.into(),
            },
            is_split: IsSplit::No,
            reference_order_id: None,
            buyer_certificate: None,
        }
    }

    /// The order this declaration is for: `referenceOrderId` when split,
    /// else `paymentRequestId`.
    pub fn declaration_order_id(&self) -> &str {
        match (&self.reference_order_id, &self.is_split) {
            (Some(reference), IsSplit::Yes) => reference,
            _ => &self.payment_request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_split_is_a_type_with_the_wire_text() {
        assert_eq!(serde_json::to_string(&IsSplit::Yes).unwrap(), "\"true\"");
        assert_eq!(
            serde_json::to_string(&IsSplit::from(false)).unwrap(),
            "\"false\""
        );
        let read: IsSplit = serde_json::from_str("\"yes\"").unwrap();
        // Kept as it came, for the sandbox to refuse.
        assert_eq!(read, IsSplit::Invalid("yes".into()));
        assert_eq!(read.as_str(), "yes");
        assert!(!read.is_yes());
        assert!(IsSplit::from("true").is_yes());
    }

    /// The request of `tests/fixtures/vectors/vectors.json`.
    pub(crate) fn vector_request() -> DeclareRequest {
        DeclareRequest {
            payment_request_id: "2021081200000002312800000".into(),
            customs_declaration_request_id: "20210812000000045800000".into(),
            customs: Customs {
                customs_code: "ZONGSHU".into(),
                region: "CN".into(),
            },
            merchant_customs_info: MerchantCustomsInfo {
                merchant_customs_code: "test_merchant_customs_code".into(),
                merchant_customs_name: "test_merchant_customs_name".into(),
            },
            declaration_amount: Amount {
                currency: "CNY".into(),
                value: "100".into(),
            },
            is_split: "true".into(),
            reference_order_id: Some("P202108120000000231280000".into()),
            buyer_certificate: Some(BuyerCertificate {
                certificate_type: "ID_CARD".into(),
                certificate_no: "11010519491231002X".into(),
                holder_name: Some(HolderName {
                    first_name: None,
                    middle_name: None,
                    last_name: None,
                    full_name: "张三".into(),
                }),
                effective_date: None,
                expire_date: None,
            }),
        }
    }

    /// Fails when the body's bytes change: raise BODY_FORMAT_VERSION and
    /// update the expected bytes here together.
    #[test]
    fn body_matches_the_test_vector_byte_for_byte() {
        assert_eq!(BODY_FORMAT_VERSION, 1, "the bytes below are version 1's");
        let expected = concat!(
            r#"{"paymentRequestId":"2021081200000002312800000","#,
            r#""customsDeclarationRequestId":"20210812000000045800000","#,
            r#""customs":{"customsCode":"ZONGSHU","region":"CN"},"#,
            r#""merchantCustomsInfo":{"merchantCustomsCode":"test_merchant_customs_code","#,
            r#""merchantCustomsName":"test_merchant_customs_name"},"#,
            r#""declarationAmount":{"currency":"CNY","value":"100"},"isSplit":"true","#,
            r#""referenceOrderId":"P202108120000000231280000","#,
            r#""buyerCertificate":{"certificateType":"ID_CARD","certificateNo":"11010519491231002X","#,
            r#""holderName":{"fullName":"张三"}}}"#
        );
        let body = vector_request().to_body();
        assert_eq!(String::from_utf8(body.clone()).unwrap(), expected);
        let parsed: DeclareRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, vector_request());
    }

    #[test]
    fn declaration_order_depends_on_split() {
        let mut request = vector_request();
        assert_eq!(request.declaration_order_id(), "P202108120000000231280000");
        request.is_split = "false".into();
        assert_eq!(request.declaration_order_id(), "2021081200000002312800000");
    }
}
