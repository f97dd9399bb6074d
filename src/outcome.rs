//! What became of a row, as every layer that writes it shares it: its
//! status (S, F, U), the counts by status, the result line of
//! `results.csv` (which the journal, the ledger, the inquiry and the page
//! all read and write), where that result came from, and the result codes
//! the tool itself compares or gives. Below everything that writes them,
//! so that no arrow points back up.
//!
//! Result codes stay text: Alipay+ may answer codes this version does not
//! know, and each must reach `results.csv` as it came. The ones the code
//! acts on or gives itself are named here, once.

use serde::{Deserialize, Serialize};

/// The result codes the tool compares or gives.
pub mod codes {
    /// Accepted.
    pub const SUCCESS: &str = "SUCCESS";
    /// The request is malformed (or, when every answer says so, the
    /// request as a whole is at fault).
    pub const PARAM_ILLEGAL: &str = "PARAM_ILLEGAL";
    /// Too many requests: slow down and send again.
    pub const REQUEST_TRAFFIC_EXCEED_LIMIT: &str = "REQUEST_TRAFFIC_EXCEED_LIMIT";
    /// A row not sent because the run stopped first (U).
    pub const NOT_SENT: &str = "NOT_SENT";
    /// A correction of a declared request not sent yet: the retransmission
    /// wait is not over (U, in `retry.csv`, with the time it may go from).
    pub const RETRANSMIT_LATER: &str = "RETRANSMIT_LATER";
    /// A row answered whose answer the ledger could not record (U, in
    /// `retry.csv`): the run stopped on the ledger's failed write.
    pub const LEDGER_NOT_RECORDED: &str = "LEDGER_NOT_RECORDED";
}

/// The identity check result of an S answer that did not pass.
pub const CHECK_NOT_PASSED: &str = "CHECK_NOT_PASSED";

/// A row's declaration status as the API spells it: accepted (S), refused
/// (F, final) or unknown (U, to settle by sending again or inquiring).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Status {
    S,
    F,
    #[default]
    U,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::S => "S",
            Status::F => "F",
            Status::U => "U",
        }
    }

    /// `S`, `F` or `U`, any case.
    pub fn parse(text: &str) -> Option<Status> {
        match text.trim() {
            "S" | "s" => Some(Status::S),
            "F" | "f" => Some(Status::F),
            "U" | "u" => Some(Status::U),
            _ => None,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Rows by status: the one count of outcomes, for the engine's tally, the
/// outputs and `summary.json`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    #[serde(rename = "S")]
    pub success: u64,
    #[serde(rename = "F")]
    pub failed: u64,
    #[serde(rename = "U")]
    pub unknown: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::S => self.success += 1,
            Status::F => self.failed += 1,
            Status::U => self.unknown += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.success + self.failed + self.unknown
    }
}

/// Where a row's result came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultSource {
    /// An answer of the declare API (or none: `NOT_SENT`).
    #[default]
    Api,
    /// Not sent: the ledger holds the identical request's answer.
    Ledger,
    /// A U row settled by `inquireDeclarationRequests`.
    Inquiry,
}

/// One line of `results.csv`, in the contract's column order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResultRow {
    pub row: u64,
    pub payment_request_id: String,
    pub customs_declaration_request_id: String,
    pub reference_order_id: String,
    pub customs_code: String,
    pub declaration_amount: String,
    pub result_status: Status,
    pub result_code: String,
    pub result_message: String,
    pub psp_payment_id: String,
    pub psp_declaration_request_id: String,
    pub psp_customs_code: String,
    pub clearing_channel: String,
    pub clearing_transaction_id: String,
    pub psp_order_amount: String,
    pub identity_check_result: String,
    pub attempts: u32,
    pub source: ResultSource,
    /// A changed row sent again under its declared request ID.
    pub retransmission: bool,
}
