//! The sandbox's books: which declarations succeeded, under which request
//! ID, for which order at which customs, and how much of each payment has
//! been declared. Only S answers are recorded, so a failed declaration
//! leaves nothing behind. Implements the declare spec's idempotency and its
//! retransmission rule.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64;

use super::payments::Payments;
use crate::protocol::{Amount, DeclareRequest, DeclareResponse};

/// A recorded successful declaration.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub request: DeclareRequest,
    pub response: DeclareResponse,
    pub amount: u64,
    last_call: Instant,
    pub sequence: u64,
    /// When it was first accepted: customs processing starts then.
    pub accepted: Instant,
    pub accepted_at: chrono::DateTime<chrono::Utc>,
    /// Taken back from the sandbox's memory, which keeps the buyer's
    /// certificate number and names only as keyed digests: a request is
    /// compared with it digested the same way.
    pub digested: bool,
}

/// Where customs is with a declaration, as `inquireDeclarationRequests`
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomsState {
    pub status: &'static str,
    pub result_code: Option<&'static str>,
    pub result_description: Option<&'static str>,
    pub returned_at: Option<chrono::DateTime<chrono::Utc>>,
    pub modified_at: chrono::DateTime<chrono::Utc>,
}

impl Declaration {
    /// Customs' progress `now`, `delay` after acceptance: waiting for the
    /// first half, in process for the second, then a result. A buyer whose
    /// identity check did not pass is refused; every other is accepted.
    pub fn customs_state(&self, now: Instant, delay: Duration) -> CustomsState {
        let age = now.saturating_duration_since(self.accepted);
        let at = |elapsed: Duration| {
            self.accepted_at + chrono::Duration::from_std(elapsed).unwrap_or_default()
        };
        if age < delay / 2 {
            return CustomsState {
                status: "WAITING_FOR_PROCESSING",
                result_code: None,
                result_description: None,
                returned_at: None,
                modified_at: self.accepted_at,
            };
        }
        if age < delay {
            return CustomsState {
                status: "IN_PROCESS",
                result_code: None,
                result_description: None,
                returned_at: None,
                modified_at: at(delay / 2),
            };
        }
        let refused = self.response.identity_check_result.as_deref() == Some("CHECK_NOT_PASSED");
        let (status, code, description) = if refused {
            (
                "CUSTOMS_ACCEPT_FAIL",
                "IDENTITY_CHECK_FAILED",
                "订购人身份信息与支付人不一致 (the buyer's identity does not match the payer's)",
            )
        } else {
            (
                "CUSTOMS_ACCEPT_SUCCESS",
                "ACCEPTED",
                "海关入库成功 (accepted by customs)",
            )
        };
        CustomsState {
            status,
            result_code: Some(code),
            result_description: Some(description),
            returned_at: Some(at(delay)),
            modified_at: at(delay),
        }
    }
}

/// Everything the sandbox has accepted.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The key of the memory's digests, when declarations were restored.
    memory_key: Option<PersonalDigest>,
    by_request_id: HashMap<String, Declaration>,
    /// (customs code, order) → request ID that declared it.
    orders: HashMap<(String, String), String>,
    /// paymentRequestId → accumulated declared fen.
    declared: HashMap<String, u64>,
    sequence: u64,
}

/// Keyed digests (HMAC-SHA256) of a request's personal data, so that the
/// sandbox's memory never holds a certificate number or a name in full.
#[derive(Clone)]
pub struct PersonalDigest(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for PersonalDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalDigest(..)")
    }
}

impl PersonalDigest {
    pub fn new(key: &[u8]) -> PersonalDigest {
        PersonalDigest(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key))
    }

    fn of(&self, text: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.0, text.as_bytes());
        format!("hmac:{}", crate::report::hex(tag.as_ref()))
    }

    /// `request` with its certificate number and names digested.
    pub fn digested(&self, request: &DeclareRequest) -> DeclareRequest {
        let mut request = request.clone();
        if let Some(certificate) = &mut request.buyer_certificate {
            certificate.certificate_no = self.of(&certificate.certificate_no);
            if let Some(name) = &mut certificate.holder_name {
                name.full_name = self.of(&name.full_name);
                for part in [
                    &mut name.first_name,
                    &mut name.middle_name,
                    &mut name.last_name,
                ]
                .into_iter()
                .flatten()
                {
                    *part = self.of(part);
                }
            }
        }
        request
    }
}

fn failed(code: &str, message: &str) -> DeclareResponse {
    DeclareResponse::result("F", code, message)
}

fn order_key(request: &DeclareRequest) -> (String, String) {
    (
        request.customs.customs_code.to_ascii_uppercase(),
        request.declaration_order_id().to_owned(),
    )
}

/// Whether `new` differs from `old` only where a retransmission may change
/// things: merchant code and name, customs code, amount.
fn only_retransmittable_changes(old: &DeclareRequest, new: &DeclareRequest) -> bool {
    let mut normalised = new.clone();
    normalised.merchant_customs_info = old.merchant_customs_info.clone();
    normalised.customs.customs_code = old.customs.customs_code.clone();
    normalised.declaration_amount = old.declaration_amount.clone();
    normalised == *old
}

impl Ledger {
    /// Answers one declare request (already checked for PARAM_ILLEGAL).
    pub fn declare(
        &mut self,
        request: DeclareRequest,
        payments: &Payments,
        now: Instant,
        retransmit_window: Duration,
    ) -> DeclareResponse {
        let amount: u64 = request
            .declaration_amount
            .value
            .parse()
            .expect("checked before: a natural number");
        let id = request.customs_declaration_request_id.clone();
        if self.by_request_id.contains_key(&id) {
            return self.repeat(request, amount, payments, now, retransmit_window);
        }
        let already = self
            .declared
            .get(&request.payment_request_id)
            .copied()
            .unwrap_or(0);
        let Some(payment) = payments.lookup(&request, already + amount) else {
            return failed("ORDER_NOT_EXIST", "The order doesn't exist.");
        };
        match payment.status.as_str() {
            "OK" => {}
            "ACCESS_DENIED" => return failed("ACCESS_DENIED", "Access is denied."),
            "USER_STATUS_ABNORMAL" => {
                return failed("USER_STATUS_ABNORMAL", "The user status is abnormal.");
            }
            "PROCESS_FAIL" => {
                return failed(
                    "PROCESS_FAIL",
                    "A general business failure occurred. Do not retry.",
                );
            }
            _ => {
                return failed(
                    "INVALID_ORDER_STATUS",
                    "The order status is invalid for this operation.",
                );
            }
        }
        if self.orders.contains_key(&order_key(&request)) {
            return failed(
                "DUPLICATED_DECLARATION",
                "An order can only be declared once at the same customs.",
            );
        }
        if already + amount > payment.amount {
            return failed(
                "DECLARED_AMOUNT_EXCEED_LIMIT",
                "The accumulated declared amount exceeds the total transaction amount.",
            );
        }
        self.sequence += 1;
        let identity = request.buyer_certificate.as_ref().map(|certificate| {
            let name_matches = certificate
                .holder_name
                .as_ref()
                .is_none_or(|name| name.full_name == payment.payer_name);
            if certificate
                .certificate_no
                .eq_ignore_ascii_case(&payment.payer_certificate_no)
                && name_matches
            {
                "CHECK_PASSED".to_owned()
            } else {
                "CHECK_NOT_PASSED".to_owned()
            }
        });
        let response = DeclareResponse {
            psp_payment_id: Some(format!(
                "20{:022}",
                xxh3_64(request.payment_request_id.as_bytes()) % 10u64.pow(18)
            )),
            psp_declaration_request_id: Some(format!("2026{:024}", self.sequence)),
            psp_customs_code: Some("31222699S7".to_owned()),
            clearing_transaction_id: Some(format!(
                "{:024}",
                xxh3_64(id.as_bytes()) % 10u64.pow(18)
            )),
            clearing_channel: Some("CUP".to_owned()),
            psp_order_amount: Some(Amount {
                currency: "CNY".to_owned(),
                value: payment.amount.to_string(),
            }),
            identity_check_result: identity,
            ..DeclareResponse::result("S", "SUCCESS", "Success")
        };
        *self
            .declared
            .entry(request.payment_request_id.clone())
            .or_default() += amount;
        self.orders.insert(order_key(&request), id.clone());
        self.by_request_id.insert(
            id,
            Declaration {
                request,
                response: response.clone(),
                amount,
                last_call: now,
                sequence: self.sequence,
                accepted: now,
                accepted_at: chrono::Utc::now(),
                digested: false,
            },
        );
        response
    }

    /// A request ID seen before: idempotent answer, retransmission, or
    /// REPEAT_REQ_INCONSISTENT.
    fn repeat(
        &mut self,
        request: DeclareRequest,
        amount: u64,
        payments: &Payments,
        now: Instant,
        window: Duration,
    ) -> DeclareResponse {
        let id = request.customs_declaration_request_id.clone();
        let key = self.memory_key.clone();
        let existing = self.by_request_id.get_mut(&id).expect("caller checked");
        let since_last = now.saturating_duration_since(existing.last_call);
        existing.last_call = now;
        let comparable = match (&key, existing.digested) {
            (Some(key), true) => key.digested(&request),
            _ => request.clone(),
        };
        if existing.request == comparable {
            return existing.response.clone();
        }
        if since_last < window || !only_retransmittable_changes(&existing.request, &comparable) {
            return failed(
                "REPEAT_REQ_INCONSISTENT",
                "Repeated requests are inconsistent.",
            );
        }
        // A retransmission: the new amount replaces the old one.
        let old_key = order_key(&existing.request);
        let new_key = order_key(&request);
        if new_key != old_key && self.orders.contains_key(&new_key) {
            return failed(
                "DUPLICATED_DECLARATION",
                "An order can only be declared once at the same customs.",
            );
        }
        let total = self
            .declared
            .get(&request.payment_request_id)
            .copied()
            .unwrap_or(0);
        let replaced = total - existing.amount + amount;
        let limit = payments
            .lookup(&request, replaced)
            .map_or(0, |payment| payment.amount);
        if replaced > limit {
            return failed(
                "DECLARED_AMOUNT_EXCEED_LIMIT",
                "The accumulated declared amount exceeds the total transaction amount.",
            );
        }
        self.declared
            .insert(request.payment_request_id.clone(), replaced);
        existing.amount = amount;
        existing.request = request;
        existing.digested = false;
        let response = existing.response.clone();
        self.orders.remove(&old_key);
        self.orders.insert(new_key, id);
        response
    }

    /// Takes back a declaration this sandbox accepted before it last
    /// stopped (its memory): the latest request under its ID and the
    /// answer it was given, as if the retransmission wait were over.
    pub fn restore(
        &mut self,
        key: &PersonalDigest,
        request: DeclareRequest,
        response: DeclareResponse,
        accepted_at: chrono::DateTime<chrono::Utc>,
    ) {
        self.memory_key = Some(key.clone());
        let Ok(amount) = request.declaration_amount.value.parse::<u64>() else {
            return;
        };
        let id = request.customs_declaration_request_id.clone();
        if let Some(old) = self.by_request_id.remove(&id) {
            self.orders.remove(&order_key(&old.request));
            if let Some(declared) = self.declared.get_mut(&old.request.payment_request_id) {
                *declared = declared.saturating_sub(old.amount);
            }
        }
        let now = Instant::now();
        let age = (chrono::Utc::now() - accepted_at)
            .to_std()
            .unwrap_or_default();
        let accepted = now.checked_sub(age).unwrap_or(now);
        self.sequence += 1;
        *self
            .declared
            .entry(request.payment_request_id.clone())
            .or_default() += amount;
        self.orders.insert(order_key(&request), id.clone());
        self.by_request_id.insert(
            id,
            Declaration {
                request,
                response,
                amount,
                last_call: accepted,
                sequence: self.sequence,
                accepted,
                accepted_at,
                digested: true,
            },
        );
    }

    /// The recorded declaration under a request ID.
    pub fn get(&self, request_id: &str) -> Option<&Declaration> {
        self.by_request_id.get(request_id)
    }

    /// Fen declared so far against a payment.
    pub fn declared_amount(&self, payment_request_id: &str) -> u64 {
        self.declared.get(payment_request_id).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.by_request_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_request_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payments() -> Payments {
        Payments::read(
            "paymentRequestId,amount,payerCertificateNo,payerName,status\n\
             P1,1000,11010519491231002X,张三,OK\nP2,500,,,CLOSED\nP3,500,,,ACCESS_DENIED\n"
                .as_bytes(),
        )
        .unwrap()
    }

    fn request(id: &str, payment: &str, amount: u64) -> DeclareRequest {
        DeclareRequest::example(id, payment, &amount.to_string())
    }

    fn code(response: &DeclareResponse) -> &str {
        &response.result.result_code
    }

    #[test]
    fn a_restored_memory_answers_as_the_sandbox_did_before_it_stopped() {
        let (payments, window) = (payments(), Duration::from_secs(300));
        let key = PersonalDigest::new(b"a key for the test");
        let with_buyer = |amount| {
            let mut request = request("D1", "P1", amount);
            request.buyer_certificate = Some(crate::protocol::BuyerCertificate {
                certificate_type: "ID_CARD".into(),
                certificate_no: "11010519491231002X".into(),
                holder_name: Some(crate::protocol::HolderName {
                    first_name: None,
                    middle_name: None,
                    last_name: None,
                    full_name: "张三".into(),
                }),
                effective_date: None,
                expire_date: None,
            });
            request
        };
        let mut before = Ledger::default();
        let first = before.declare(with_buyer(600), &payments, Instant::now(), window);
        assert_eq!(code(&first), "SUCCESS");
        let remembered = |amount| key.digested(&with_buyer(amount));
        let kept = format!("{:?}", remembered(600));
        assert!(!kept.contains("11010519491231002X"), "{kept}");
        assert!(!kept.contains("张三"), "{kept}");
        let mut after = Ledger::default();
        after.restore(&key, remembered(600), first.clone(), chrono::Utc::now());
        // A retransmission remembered later replaces the first amount.
        after.restore(&key, remembered(700), first.clone(), chrono::Utc::now());
        assert_eq!(after.declared_amount("P1"), 700);
        let now = Instant::now();
        // The same request: the same answer, IDs and all.
        assert_eq!(
            after.declare(with_buyer(700), &payments, now, window),
            first
        );
        // Another buyer under the same ID is not the same request.
        let mut other_buyer = with_buyer(700);
        other_buyer
            .buyer_certificate
            .as_mut()
            .unwrap()
            .certificate_no = "110105194912310029".into();
        assert_eq!(
            code(&after.declare(other_buyer, &payments, now, window)),
            "REPEAT_REQ_INCONSISTENT"
        );
        // The same order under another ID: declared already.
        let mut other = request("D2", "P1", 100);
        other.payment_request_id = "P1".into();
        assert_eq!(
            code(&after.declare(other, &payments, now, window)),
            "DUPLICATED_DECLARATION"
        );
    }

    #[test]
    fn payments_orders_and_amounts() {
        let (mut ledger, payments, now, window) = (
            Ledger::default(),
            payments(),
            Instant::now(),
            Duration::from_secs(300),
        );
        let mut declare = |r: DeclareRequest| ledger.declare(r, &payments, now, window);
        assert_eq!(code(&declare(request("D0", "P9", 1))), "ORDER_NOT_EXIST");
        assert_eq!(
            code(&declare(request("D0", "P2", 1))),
            "INVALID_ORDER_STATUS"
        );
        assert_eq!(code(&declare(request("D0", "P3", 1))), "ACCESS_DENIED");
        assert_eq!(
            code(&declare(request("D0", "P1", 1001))),
            "DECLARED_AMOUNT_EXCEED_LIMIT"
        );
        let first = declare(request("D1", "P1", 600));
        assert_eq!(code(&first), "SUCCESS");
        // Same order, same customs, another ID.
        assert_eq!(
            code(&declare(request("D2", "P1", 100))),
            "DUPLICATED_DECLARATION"
        );
        // Split parts of the payment accumulate against its amount.
        let mut part = request("D3", "P1", 300);
        part.is_split = "true".into();
        part.reference_order_id = Some("R1".into());
        assert_eq!(code(&declare(part.clone())), "SUCCESS");
        let mut over = part.clone();
        over.customs_declaration_request_id = "D4".into();
        over.reference_order_id = Some("R2".into());
        over.declaration_amount.value = "101".into();
        assert_eq!(code(&declare(over)), "DECLARED_AMOUNT_EXCEED_LIMIT");
        // An identical repeat gets the first answer again.
        assert_eq!(declare(request("D1", "P1", 600)), first);
        assert_eq!(ledger.declared_amount("P1"), 900);
        assert_eq!(ledger.len(), 2, "failures leave nothing behind");
    }

    #[test]
    fn retransmission_replaces_the_amount_after_the_window() {
        let (mut ledger, payments) = (Ledger::default(), payments());
        let window = Duration::from_secs(1);
        let start = Instant::now();
        let first = ledger.declare(request("D1", "P1", 600), &payments, start, window);
        assert_eq!(code(&first), "SUCCESS");
        let mut changed = request("D1", "P1", 900);
        changed.merchant_customs_info.merchant_customs_name = "Renamed".into();
        // Within the window: inconsistent.
        let early = ledger.declare(
            changed.clone(),
            &payments,
            start + Duration::from_millis(500),
            window,
        );
        assert_eq!(code(&early), "REPEAT_REQ_INCONSISTENT");
        // The early call counts as the last call: wait a full window again.
        let late = start + Duration::from_millis(1600);
        assert_eq!(
            ledger.declare(changed.clone(), &payments, late, window),
            first
        );
        assert_eq!(ledger.declared_amount("P1"), 900, "replaced, not added");
        // A change outside the retransmittable fields is never accepted.
        let mut other = changed.clone();
        other.payment_request_id = "P2".into();
        let much_later = late + Duration::from_secs(10);
        assert_eq!(
            code(&ledger.declare(other, &payments, much_later, window)),
            "REPEAT_REQ_INCONSISTENT"
        );
        // A retransmission may not exceed the payment either.
        let mut too_much = changed;
        too_much.declaration_amount.value = "1001".into();
        let later_still = much_later + Duration::from_secs(10);
        assert_eq!(
            code(&ledger.declare(too_much, &payments, later_still, window)),
            "DECLARED_AMOUNT_EXCEED_LIMIT"
        );
        assert_eq!(ledger.declared_amount("P1"), 900);
    }

    #[test]
    fn identity_check_against_the_payer() {
        let (mut ledger, payments, now, window) = (
            Ledger::default(),
            payments(),
            Instant::now(),
            Duration::from_secs(300),
        );
        let with_buyer = |id: &str, order: &str, name: &str| {
            let mut r = request(id, "P1", 10);
            r.is_split = "true".into();
            r.reference_order_id = Some(order.into());
            r.buyer_certificate = Some(crate::protocol::BuyerCertificate {
                certificate_type: "ID_CARD".into(),
                certificate_no: "11010519491231002X".into(),
                holder_name: Some(crate::protocol::HolderName {
                    first_name: None,
                    middle_name: None,
                    last_name: None,
                    full_name: name.into(),
                }),
                effective_date: None,
                expire_date: None,
            });
            r
        };
        let passed = ledger.declare(with_buyer("D1", "R1", "张三"), &payments, now, window);
        assert_eq!(
            passed.identity_check_result.as_deref(),
            Some("CHECK_PASSED")
        );
        let not_passed = ledger.declare(with_buyer("D2", "R2", "李四"), &payments, now, window);
        assert_eq!(
            not_passed.identity_check_result.as_deref(),
            Some("CHECK_NOT_PASSED")
        );
        let none = ledger.declare(request("D3", "P1", 10), &payments, now, window);
        assert_eq!(none.identity_check_result, None);

        // Customs: waiting, in process, then a result; the buyer whose
        // check did not pass is refused.
        let delay = Duration::from_secs(10);
        let state = |id: &str, after: u64| {
            ledger
                .get(id)
                .unwrap()
                .customs_state(now + Duration::from_secs(after), delay)
        };
        assert_eq!(state("D1", 2).status, "WAITING_FOR_PROCESSING");
        assert_eq!(state("D1", 6).status, "IN_PROCESS");
        assert_eq!(state("D1", 6).result_code, None);
        let accepted = state("D1", 11);
        assert_eq!(accepted.status, "CUSTOMS_ACCEPT_SUCCESS");
        assert_eq!(accepted.result_code, Some("ACCEPTED"));
        assert!(accepted.returned_at.is_some());
        let refused = state("D2", 11);
        assert_eq!(refused.status, "CUSTOMS_ACCEPT_FAIL");
        assert_eq!(refused.result_code, Some("IDENTITY_CHECK_FAILED"));
        assert!(refused.result_description.unwrap().contains("identity"));
        assert!(state("D1", 11).modified_at > state("D1", 2).modified_at);
    }
}
