//! What a run writes as rows settle: the result line of each settled row,
//! the counts behind `summary.json`, and the rows for `retry.csv`.

use std::collections::BTreeMap;

use crate::declare::{NOT_SENT, Settled};
use crate::input::OwnedRow;
use crate::outcome::{CHECK_NOT_PASSED, ResultRow, Status, StatusCounts};
use crate::protocol::DeclareOutcome;
use crate::report::{ProblemTally, RejectedWriter, ResultsWriter};

/// Rows listed by number in `summary.json` at most.
pub const MAX_LISTED_ROWS: usize = 1_000;

/// The `results.csv` line of a settled row.
pub fn result_row(settled: &Settled) -> ResultRow {
    let request = &settled.job.request;
    let mut row = ResultRow {
        row: settled.job.row.line,
        payment_request_id: request.payment_request_id.clone(),
        customs_declaration_request_id: request.customs_declaration_request_id.clone(),
        reference_order_id: request.reference_order_id.clone().unwrap_or_default(),
        customs_code: request.customs.customs_code.clone(),
        declaration_amount: request.declaration_amount.value.clone(),
        attempts: settled.job.sent,
        retransmission: settled.job.retransmission,
        ..ResultRow::default()
    };
    let response = match &settled.outcome {
        None => {
            row.result_status = Status::U;
            row.result_code = NOT_SENT.into();
            row.result_message = "not sent: the run stopped before this row".into();
            None
        }
        Some(outcome) => {
            row.result_status = outcome.status();
            row.result_code = outcome.code().into();
            match outcome {
                DeclareOutcome::Success(response) => {
                    row.result_message = response.result.result_message.clone().unwrap_or_default();
                    Some(response)
                }
                DeclareOutcome::Failed {
                    message, response, ..
                } => {
                    row.result_message = message.clone();
                    Some(response)
                }
                DeclareOutcome::Unknown { message, .. } => {
                    row.result_message = message.clone();
                    None
                }
            }
        }
    };
    if let Some(response) = response {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        row.psp_payment_id = text(&response.psp_payment_id);
        row.psp_declaration_request_id = text(&response.psp_declaration_request_id);
        row.psp_customs_code = text(&response.psp_customs_code);
        row.clearing_channel = text(&response.clearing_channel);
        row.clearing_transaction_id = text(&response.clearing_transaction_id);
        row.psp_order_amount = response
            .psp_order_amount
            .as_ref()
            .map(|amount| amount.value.clone())
            .unwrap_or_default();
        row.identity_check_result = text(&response.identity_check_result);
    }
    row
}

/// The raw answer an outcome came from, for the journal.
pub fn raw_answer(outcome: Option<&DeclareOutcome>) -> &str {
    match outcome {
        Some(DeclareOutcome::Success(response)) | Some(DeclareOutcome::Failed { response, .. }) => {
            &response.raw
        }
        _ => "",
    }
}

/// Everything the outputs need, shared by the validation thread (rejected
/// rows) and the engine (results).
pub struct Outputs {
    pub rejected: RejectedWriter,
    pub results: ResultsWriter,
    /// Set when a write to results.csv failed: nothing more is written to
    /// it (the next run rebuilds it from the journal).
    pub results_failed: bool,
    pub retry: Vec<OwnedRow>,
    pub problems: ProblemTally,
    pub codes: BTreeMap<String, u64>,
    pub status: StatusCounts,
    /// Identity check results of S rows, and the rows that did not pass.
    pub identity_checks: BTreeMap<String, u64>,
    pub identity_not_passed: Vec<u64>,
    /// Rows sent as a retransmission (a corrected row under its declared
    /// request ID) that Alipay+ answered.
    pub retransmitted: u64,
}

impl Outputs {
    pub fn new(rejected: RejectedWriter, results: ResultsWriter) -> Outputs {
        Outputs {
            rejected,
            results,
            results_failed: false,
            retry: Vec::new(),
            problems: ProblemTally::default(),
            codes: BTreeMap::new(),
            status: StatusCounts::default(),
            identity_checks: BTreeMap::new(),
            identity_not_passed: Vec::new(),
            retransmitted: 0,
        }
    }

    /// Records one row's result in results.csv and the counts.
    pub fn record(&mut self, row: &ResultRow) -> std::io::Result<()> {
        *self.codes.entry(row.result_code.clone()).or_default() += 1;
        self.status.add(row.result_status);
        if row.retransmission && row.result_status != Status::U {
            self.retransmitted += 1;
        }
        if row.result_status == Status::S && !row.identity_check_result.is_empty() {
            *self
                .identity_checks
                .entry(row.identity_check_result.clone())
                .or_default() += 1;
            // The rows are listed up to a bound; results.csv has them all.
            if row.identity_check_result == CHECK_NOT_PASSED
                && self.identity_not_passed.len() < MAX_LISTED_ROWS
            {
                self.identity_not_passed.push(row.row);
            }
        }
        if self.results_failed {
            return Ok(());
        }
        let written = self.results.write(row);
        self.results_failed = written.is_err();
        written
    }
}
