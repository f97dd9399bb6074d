//! The payments the sandbox knows, as in Alipay+'s books: from a CSV with
//! the header `paymentRequestId,amount,payerCertificateNo,payerName,status`
//! (amount in fen; status `OK`, `NOT_EXIST` for a payment Alipay+ does not
//! know, or another word for a payment that may not be declared). The
//! embedded sandbox also takes every payment it does not list as paid for
//! the amount declared, so that one's own export can be tried end to end.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// One payment a declaration may refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub payment_request_id: String,
    /// Total paid, in fen: the limit of the accumulated declared amount.
    pub amount: u64,
    pub payer_certificate_no: String,
    pub payer_name: String,
    pub status: String,
}

/// The payments by paymentRequestId.
#[derive(Debug, Clone, Default)]
pub struct Payments {
    by_id: HashMap<String, Payment>,
    /// A payment not listed is taken as paid, by the buyer declared.
    unknown_as_paid: bool,
}

const HEADER: [&str; 5] = [
    "paymentRequestId",
    "amount",
    "payerCertificateNo",
    "payerName",
    "status",
];

impl Payments {
    pub fn load(path: &Path) -> Result<Payments, String> {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read payments file {}: {e}", path.display()))?;
        Payments::read(file).map_err(|e| format!("payments file {}: {e}", path.display()))
    }

    /// Reads the payments CSV (UTF-8, a BOM allowed).
    pub fn read(reader: impl Read) -> Result<Payments, String> {
        let mut csv = csv::ReaderBuilder::new().from_reader(reader);
        let header: Vec<String> = csv
            .headers()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect();
        if header != HEADER {
            return Err(format!(
                "the header must be {}, not {}",
                HEADER.join(","),
                header.join(",")
            ));
        }
        let mut by_id = HashMap::new();
        for record in csv.records() {
            let record = record.map_err(|e| e.to_string())?;
            let line = record.position().map_or(0, |p| p.line());
            let cell = |i: usize| record.get(i).unwrap_or_default().trim().to_owned();
            let amount = cell(1).parse::<u64>().map_err(|_| {
                format!("line {line}: amount \"{}\" is not a number of fen", cell(1))
            })?;
            let payment = Payment {
                payment_request_id: cell(0),
                amount,
                payer_certificate_no: cell(2).to_ascii_uppercase(),
                payer_name: cell(3),
                status: cell(4).to_ascii_uppercase(),
            };
            by_id.insert(payment.payment_request_id.clone(), payment);
        }
        Ok(Payments {
            by_id,
            unknown_as_paid: false,
        })
    }

    /// These payments, and every other one taken as paid for the amount
    /// declared, by the buyer declared (the embedded sandbox).
    pub fn taking_unknown_as_paid(mut self) -> Payments {
        self.unknown_as_paid = true;
        self
    }

    pub fn get(&self, payment_request_id: &str) -> Option<&Payment> {
        self.by_id.get(payment_request_id)
    }

    /// The payment a request refers to, `needed` fen being what its
    /// declarations then add up to; `None`: Alipay+ does not know it.
    pub fn lookup(
        &self,
        request: &crate::protocol::DeclareRequest,
        needed: u64,
    ) -> Option<Cow<'_, Payment>> {
        match self.by_id.get(&request.payment_request_id) {
            Some(payment) if payment.status == "NOT_EXIST" => None,
            Some(payment) => Some(Cow::Borrowed(payment)),
            None if self.unknown_as_paid => {
                let buyer = request.buyer_certificate.as_ref();
                Some(Cow::Owned(Payment {
                    payment_request_id: request.payment_request_id.clone(),
                    amount: needed,
                    payer_certificate_no: buyer
                        .map(|b| b.certificate_no.to_ascii_uppercase())
                        .unwrap_or_default(),
                    payer_name: buyer
                        .and_then(|b| b.holder_name.as_ref())
                        .map(|name| name.full_name.clone())
                        .unwrap_or_default(),
                    status: "OK".to_owned(),
                }))
            }
            None => None,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_payments_and_refuses_a_wrong_header() {
        let text = "\u{feff}paymentRequestId,amount,payerCertificateNo,payerName,status\n\
                    P1,12800,11010519491231002x,张三,ok\nP2,500,,,CLOSED\n";
        let payments = Payments::read(text.as_bytes()).unwrap();
        assert_eq!(payments.len(), 2);
        let p1 = payments.get("P1").unwrap();
        assert_eq!((p1.amount, p1.status.as_str()), (12800, "OK"));
        assert_eq!(p1.payer_certificate_no, "11010519491231002X");
        assert!(Payments::read("id,amount\nP1,1\n".as_bytes()).is_err());
        let bad = "paymentRequestId,amount,payerCertificateNo,payerName,status\nP1,1.5,,,OK\n";
        assert!(
            Payments::read(bad.as_bytes())
                .unwrap_err()
                .contains("line 2")
        );
    }
}
