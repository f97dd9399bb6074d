//! A valid row's request as its fields, borrowed from the row wherever the
//! rules left a value as given. Checking a row ends here: `validate` only
//! fingerprints and counts the fields, so it builds nothing, while `run`
//! (and `validate`'s plan or reasons) turn them into the
//! [`DeclareRequest`] it sends.

use std::borrow::Cow;
use std::cell::RefCell;

use super::rules::DateTimeValue;
use crate::protocol::{
    Amount, BuyerCertificate, Customs, DeclareRequest, HolderName, MerchantCustomsInfo,
};

/// Every value of a declare request that a row decides.
#[derive(Debug)]
pub(super) struct RequestFields<'v> {
    pub payment_request_id: &'v str,
    pub request_id: &'v str,
    /// Upper-cased.
    pub customs_code: Cow<'v, str>,
    pub merchant_code: &'v str,
    pub merchant_name: &'v str,
    pub amount_fen: u64,
    pub is_split: bool,
    pub reference_order_id: Option<&'v str>,
    pub certificate: Option<CertificateFields<'v>>,
}

/// The buyer certificate (always an `ID_CARD`).
#[derive(Debug)]
pub(super) struct CertificateFields<'v> {
    /// Upper-cased.
    pub number: Cow<'v, str>,
    pub holder_name: Option<HolderNameFields<'v>>,
    pub effective_date: Option<DateTimeValue<'v>>,
    pub expire_date: Option<DateTimeValue<'v>>,
}

#[derive(Debug)]
pub(super) struct HolderNameFields<'v> {
    pub first: Option<&'v str>,
    pub middle: Option<&'v str>,
    pub last: Option<&'v str>,
    pub full: &'v str,
}

/// The only values the rules accept for these fields.
const REGION: &str = "CN";
const CURRENCY: &str = "CNY";
const CERTIFICATE_TYPE: &str = "ID_CARD";

impl RequestFields<'_> {
    /// The order this declaration is for: `referenceOrderId` when split,
    /// else `paymentRequestId` (as [`DeclareRequest::declaration_order_id`]).
    pub fn declaration_order_id(&self) -> &str {
        match (self.reference_order_id, self.is_split) {
            (Some(reference), true) => reference,
            _ => self.payment_request_id,
        }
    }

    pub fn to_request(&self) -> DeclareRequest {
        let owned = |text: Option<&str>| text.map(str::to_owned);
        DeclareRequest {
            payment_request_id: self.payment_request_id.to_owned(),
            customs_declaration_request_id: self.request_id.to_owned(),
            customs: Customs {
                customs_code: self.customs_code.clone().into_owned(),
                region: REGION.to_owned(),
            },
            merchant_customs_info: MerchantCustomsInfo {
                merchant_customs_code: self.merchant_code.to_owned(),
                merchant_customs_name: self.merchant_name.to_owned(),
            },
            declaration_amount: Amount {
                currency: CURRENCY.to_owned(),
                value: self.amount_fen.to_string(),
            },
            is_split: self.is_split.into(),
            reference_order_id: owned(self.reference_order_id),
            buyer_certificate: self
                .certificate
                .as_ref()
                .map(|certificate| BuyerCertificate {
                    certificate_type: CERTIFICATE_TYPE.to_owned(),
                    certificate_no: certificate.number.clone().into_owned(),
                    holder_name: certificate.holder_name.as_ref().map(|name| HolderName {
                        first_name: owned(name.first),
                        middle_name: owned(name.middle),
                        last_name: owned(name.last),
                        full_name: name.full.to_owned(),
                    }),
                    effective_date: certificate
                        .effective_date
                        .as_ref()
                        .map(DateTimeValue::to_text),
                    expire_date: certificate.expire_date.as_ref().map(DateTimeValue::to_text),
                }),
        }
    }

    /// A hash of every value the request body is made of: two rows have the
    /// same body exactly when their fields agree. Each value ends with
    /// 0xff, which UTF-8 never holds, and each optional part starts with
    /// whether it is there, so no two requests hash the same bytes.
    pub fn body_hash(&self) -> u64 {
        thread_local! {
            static BYTES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        BYTES.with_borrow_mut(|bytes| {
            let hash = self.hash_into(bytes);
            // A row can be a megabyte: such a buffer is not kept.
            if bytes.capacity() > 64 * 1024 {
                *bytes = Vec::new();
            }
            hash
        })
    }

    fn hash_into(&self, bytes: &mut Vec<u8>) -> u64 {
        // Taken apart whole, so that a field added to the request and not
        // to its hash does not compile.
        let RequestFields {
            payment_request_id,
            request_id,
            customs_code,
            merchant_code,
            merchant_name,
            amount_fen,
            is_split,
            reference_order_id,
            certificate,
        } = self;
        bytes.clear();
        for value in [
            payment_request_id,
            request_id,
            &**customs_code,
            merchant_code,
            merchant_name,
        ] {
            text(bytes, [value, ""]);
        }
        // Fixed width: needs no end.
        bytes.extend_from_slice(&amount_fen.to_le_bytes());
        bytes.push(u8::from(*is_split));
        optional(bytes, reference_order_id.map(|id| [id, ""]));
        match certificate {
            None => bytes.push(0),
            Some(CertificateFields {
                number,
                holder_name,
                effective_date,
                expire_date,
            }) => {
                bytes.push(1);
                text(bytes, [number, ""]);
                match holder_name {
                    None => bytes.push(0),
                    Some(HolderNameFields {
                        first,
                        middle,
                        last,
                        full,
                    }) => {
                        bytes.push(1);
                        for part in [first, middle, last] {
                            optional(bytes, part.map(|part| [part, ""]));
                        }
                        text(bytes, [full, ""]);
                    }
                }
                optional(bytes, effective_date.as_ref().map(DateTimeValue::parts));
                optional(bytes, expire_date.as_ref().map(DateTimeValue::parts));
            }
        }
        xxhash_rust::xxh3::xxh3_64(bytes)
    }
}

/// A value in two parts that run on, and its end.
fn text(bytes: &mut Vec<u8>, parts: [&str; 2]) {
    for part in parts {
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes.push(0xff);
}

/// An optional value, marked present or not.
fn optional(bytes: &mut Vec<u8>, value: Option<[&str; 2]>) {
    match value {
        None => bytes.push(0),
        Some(parts) => {
            bytes.push(1);
            text(bytes, parts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> RequestFields<'static> {
        RequestFields {
            payment_request_id: "P1",
            request_id: "D1",
            customs_code: Cow::Borrowed("ZONGSHU"),
            merchant_code: "M1",
            merchant_name: "Shop",
            amount_fen: 100,
            is_split: false,
            reference_order_id: None,
            certificate: Some(CertificateFields {
                number: Cow::Borrowed("11010519491231002X"),
                holder_name: Some(HolderNameFields {
                    first: Some("San"),
                    middle: None,
                    last: None,
                    full: "张三",
                }),
                effective_date: Some(DateTimeValue::Midnight("2015-03-01")),
                expire_date: None,
            }),
        }
    }

    #[test]
    fn the_body_hash_tells_bodies_apart_exactly_when_their_json_differs() {
        let base = fields();
        let mut variants: Vec<RequestFields<'static>> = Vec::new();
        let mut vary = |change: fn(&mut RequestFields<'static>)| {
            let mut changed = fields();
            change(&mut changed);
            variants.push(changed);
        };
        vary(|f| f.payment_request_id = "P2");
        vary(|f| f.request_id = "D2");
        vary(|f| f.customs_code = Cow::Borrowed("HANGZHOU"));
        vary(|f| f.merchant_code = "M2");
        vary(|f| f.merchant_name = "Shop2");
        vary(|f| f.amount_fen = 101);
        vary(|f| f.is_split = true);
        vary(|f| f.reference_order_id = Some(""));
        vary(|f| f.certificate = None);
        vary(|f| f.certificate.as_mut().unwrap().number = Cow::Borrowed("110105194912310021"));
        vary(|f| f.certificate.as_mut().unwrap().holder_name = None);
        // The same name in another part.
        vary(|f| {
            let name = f
                .certificate
                .as_mut()
                .unwrap()
                .holder_name
                .as_mut()
                .unwrap();
            (name.first, name.middle) = (None, Some("San"));
        });
        vary(|f| f.certificate.as_mut().unwrap().effective_date = None);
        // One value's end moved into the next.
        vary(|f| (f.merchant_code, f.merchant_name) = ("M1S", "hop"));
        for changed in &variants {
            assert_ne!(changed.to_request(), base.to_request());
            assert_ne!(changed.body_hash(), base.body_hash(), "{changed:?}");
        }
        // A plain day and its normalised form make one body and one hash.
        let mut normalised = fields();
        normalised.certificate.as_mut().unwrap().effective_date = Some(DateTimeValue::Normalised(
            "2015-03-01T00:00:00+08:00".to_owned(),
        ));
        assert_eq!(normalised.to_request(), base.to_request());
        assert_eq!(normalised.body_hash(), base.body_hash());
        let request = base.to_request();
        let certificate = request.buyer_certificate.as_ref().unwrap();
        assert_eq!(
            certificate.effective_date.as_deref(),
            Some("2015-03-01T00:00:00+08:00")
        );
        assert_eq!(request.declaration_amount.value, "100");
        assert_eq!(request.declaration_order_id(), base.declaration_order_id());
    }

    fn text() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec!["", "a", "b", "ab", "ba"])
    }

    fn date() -> impl proptest::strategy::Strategy<Value = Option<DateTimeValue<'static>>> {
        proptest::prop_oneof![
            proptest::strategy::Just(None),
            proptest::strategy::Just(Some(DateTimeValue::Midnight("2015-03-01"))),
            proptest::strategy::Just(Some(DateTimeValue::Normalised(
                "2015-03-01T00:00:00+08:00".to_owned()
            ))),
            proptest::strategy::Just(Some(DateTimeValue::Normalised(
                "2015-03-01T12:00:00+08:00".to_owned()
            ))),
        ]
    }

    fn request_fields() -> impl proptest::strategy::Strategy<Value = RequestFields<'static>> {
        use proptest::prelude::*;
        let holder = (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            text(),
        )
            .prop_map(|(first, middle, last, full)| HolderNameFields {
                first,
                middle,
                last,
                full,
            });
        let certificate = (text(), proptest::option::of(holder), date(), date()).prop_map(
            |(number, holder_name, effective_date, expire_date)| CertificateFields {
                number: Cow::Borrowed(number),
                holder_name,
                effective_date,
                expire_date,
            },
        );
        (
            (text(), text(), text(), text(), text()),
            0u64..3,
            any::<bool>(),
            proptest::option::of(text()),
            proptest::option::of(certificate),
        )
            .prop_map(
                |(
                    (payment, request, customs, merchant_code, merchant_name),
                    amount_fen,
                    is_split,
                    reference_order_id,
                    certificate,
                )| RequestFields {
                    payment_request_id: payment,
                    request_id: request,
                    customs_code: Cow::Borrowed(customs),
                    merchant_code,
                    merchant_name,
                    amount_fen,
                    is_split,
                    reference_order_id,
                    certificate,
                },
            )
    }

    proptest::proptest! {
        /// Two rows' hashes agree exactly when the bytes they send do.
        #[test]
        fn hashes_agree_exactly_when_bodies_do(
            first in request_fields(),
            second in request_fields(),
        ) {
            let same_body = first.to_request().to_body() == second.to_request().to_body();
            proptest::prop_assert_eq!(first.body_hash() == second.body_hash(), same_body);
        }
    }
}
