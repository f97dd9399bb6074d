//! Reading the ledger back for people: `ledger export`, every declaration
//! of a scope as CSV rows, oldest first.

use rusqlite::params;
use serde::Serialize;

use super::answers::{AnswerValues, decode, psp_values};
use super::{Ledger, LedgerError, SETTLED_OR_SENT, since_millis, time_text};
use crate::outcome::Status;

/// The columns of `ledger export`, for an export with no row.
pub const EXPORT_HEADER: [&str; 25] = [
    "customsDeclarationRequestId",
    "paymentRequestId",
    "referenceOrderId",
    "customsCode",
    "merchantCustomsCode",
    "merchantCustomsName",
    "declarationAmount",
    "certificateNo",
    "resultStatus",
    "resultCode",
    "resultMessage",
    "pspDeclarationRequestId",
    "identityCheckResult",
    "declarationRequestStatus",
    "customsResultCode",
    "customsResultDescription",
    "calls",
    "firstCallAt",
    "lastCallAt",
    "settledAt",
    "inquiredAt",
    "run",
    "row",
    "earlierAmount",
    "amountChangedAt",
];

/// `ledger export --customs`: which customs outcomes to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomsFilter {
    /// Declared S, no customs result yet.
    Pending,
    /// A customs result returned.
    Final,
    /// Returned with this customs result code.
    Code(String),
}

impl CustomsFilter {
    pub fn parse(text: &str) -> CustomsFilter {
        match text {
            "pending" => CustomsFilter::Pending,
            "final" => CustomsFilter::Final,
            code => CustomsFilter::Code(code.to_owned()),
        }
    }
}

/// One declaration as `ledger export` writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRow {
    pub customs_declaration_request_id: String,
    pub payment_request_id: String,
    pub reference_order_id: String,
    pub customs_code: String,
    pub merchant_customs_code: String,
    pub merchant_customs_name: String,
    pub declaration_amount: String,
    pub certificate_no: String,
    pub result_status: String,
    pub result_code: String,
    pub result_message: String,
    pub psp_declaration_request_id: String,
    pub identity_check_result: String,
    pub declaration_request_status: String,
    pub customs_result_code: String,
    pub customs_result_description: String,
    pub calls: u64,
    pub first_call_at: String,
    pub last_call_at: String,
    pub settled_at: String,
    pub inquired_at: String,
    pub run: String,
    pub row: u64,
    /// The amount a retransmission replaced, and when.
    pub earlier_amount: String,
    pub amount_changed_at: String,
}

impl Ledger {
    /// Every declaration of this scope, oldest first, for `ledger export`:
    /// settled (or last sent) on or after `since`, with `status` when given.
    pub fn export(
        &self,
        since: Option<&str>,
        status: Option<Status>,
        customs: Option<&CustomsFilter>,
        mut each: impl FnMut(ExportRow) -> std::io::Result<()>,
    ) -> Result<u64, anyhow::Error> {
        let scope = self.scope;
        let mut session = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        session.end_reading()?;
        let connection = &session.connection;
        let mut statement = connection.prepare(&format!(
            "SELECT d.request_id, d.payment_request_id, d.reference_order_id, t.customs_code,
                    t.merchant_customs_code, t.merchant_customs_name, d.amount,
                    d.certificate_no, d.status, COALESCE(code.text, ''),
                    COALESCE(message.text, ''), d.psp_declaration_request_id,
                    COALESCE(identity.text, ''),
                    COALESCE(customs.text, ''), COALESCE(customs_code.text, ''),
                    COALESCE(customs_description.text, ''),
                    (SELECT count(*) FROM calls c WHERE c.declaration_id = d.id),
                    COALESCE((SELECT min(c.sent_at) FROM calls c WHERE c.declaration_id = d.id),
                             d.settled_at),
                    COALESCE((SELECT max(c.sent_at) FROM calls c WHERE c.declaration_id = d.id),
                             d.settled_at),
                    d.settled_at, i.inquired_at, COALESCE(r.out_dir, ''), d.input_row,
                    COALESCE(d.earlier_amount, ''), d.amount_changed_at,
                    {SETTLED_OR_SENT} AS since
             FROM declarations d JOIN targets t ON t.id = d.target_id
                  LEFT JOIN runs r ON r.id = d.run_id
                  LEFT JOIN texts code ON code.id = d.result_code
                  LEFT JOIN texts message ON message.id = d.result_message
                  LEFT JOIN texts identity ON identity.id = d.identity_check_result
                  LEFT JOIN inquiries i ON i.id = d.inquiry_id
                  LEFT JOIN texts customs ON customs.id = i.status
                  LEFT JOIN texts customs_code ON customs_code.id = i.customs_result_code
                  LEFT JOIN texts customs_description
                       ON customs_description.id = i.customs_result_description
             WHERE d.scope_id = ?1
               AND since >= ?2
               AND (?3 IS NULL OR d.status = ?3)
               AND (?4 IS NULL
                    OR (?4 = 'pending' AND d.status = 'S' AND customs_code.text IS NULL)
                    OR (?4 = 'final' AND customs_code.text IS NOT NULL)
                    OR (?4 = 'code' AND customs_code.text = ?5))
             ORDER BY since, d.request_id"
        ))?;
        let mut rows = statement.query(params![
            scope,
            since_millis(since),
            status.map(Status::as_str),
            customs.map(|filter| match filter {
                CustomsFilter::Pending => "pending",
                CustomsFilter::Final => "final",
                CustomsFilter::Code(_) => "code",
            }),
            match customs {
                Some(CustomsFilter::Code(code)) => code.as_str(),
                _ => "",
            }
        ])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            each(ExportRow {
                customs_declaration_request_id: row.get(0)?,
                payment_request_id: row.get(1)?,
                reference_order_id: row.get(2)?,
                customs_code: row.get(3)?,
                merchant_customs_code: row.get(4)?,
                merchant_customs_name: row.get(5)?,
                declaration_amount: row.get(6)?,
                certificate_no: row.get(7)?,
                result_status: row.get(8)?,
                result_code: row.get(9)?,
                result_message: row.get(10)?,
                psp_declaration_request_id: row.get(11)?,
                identity_check_result: row.get(12)?,
                declaration_request_status: row.get(13)?,
                customs_result_code: row.get(14)?,
                customs_result_description: row.get(15)?,
                calls: row.get(16)?,
                first_call_at: optional_time(row.get(17)?),
                last_call_at: optional_time(row.get(18)?),
                settled_at: optional_time(row.get(19)?),
                inquired_at: optional_time(row.get(20)?),
                run: row.get(21)?,
                row: row.get(22)?,
                earlier_amount: row.get(23)?,
                amount_changed_at: optional_time(row.get(24)?),
            })?;
            count += 1;
        }
        Ok(count)
    }
}

/// A stored time for the export: RFC 3339, or empty when there is none.
fn optional_time(millis: Option<i64>) -> String {
    millis.map(time_text).unwrap_or_default()
}

impl Ledger {
    /// The raw answers of a request ID's calls, oldest first, as they came
    /// (none for a call unanswered, or whose raw answer was dropped).
    pub fn raw_answers(&self, request_id: &str) -> Result<Vec<Option<String>>, LedgerError> {
        let scope = self.scope;
        self.with(|c| {
            let mut statement = c.prepare(concat!(
                "SELECT COALESCE(code.text, ''), COALESCE(message.text, ''),
                        COALESCE(c.status, ''), shape.shape, c.answer_values, c.answer_text, ",
                psp_values_of_d!(),
                " FROM declarations d JOIN calls c ON c.declaration_id = d.id
                      LEFT JOIN texts code ON code.id = c.result_code
                      LEFT JOIN texts message ON message.id = c.result_message
                      LEFT JOIN shapes shape ON shape.id = c.answer_shape
                 WHERE d.scope_id = ?1 AND d.request_id = ?2
                 ORDER BY c.seq"
            ))?;
            let mut rows = statement.query(params![scope, request_id])?;
            let mut answers = Vec::new();
            while let Some(row) = rows.next()? {
                let own: [String; 3] = [row.get(0)?, row.get(1)?, row.get(2)?];
                let shape: Option<String> = row.get(3)?;
                let frozen: Option<String> = row.get(4)?;
                let text: Option<String> = row.get(5)?;
                let declared = psp_values(row, 6)?;
                let declaration = match frozen {
                    Some(values) => serde_json::from_str::<[String; 7]>(&values).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            4,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?,
                    None => declared,
                };
                answers.push(match (shape, text) {
                    (_, Some(text)) => Some(text),
                    (Some(shape), None) => Some(decode(
                        &shape,
                        &AnswerValues {
                            own: own.each_ref().map(String::as_str),
                            declaration: declaration.each_ref().map(String::as_str),
                        },
                    )),
                    (None, None) => None,
                });
            }
            Ok(answers)
        })
    }
}
