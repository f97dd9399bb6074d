//! What a run leaves for people and scripts: `summary.json`
//! ([`RunSummary`]) and the typed [`RunOutcome`] the command line turns into
//! an exit code and the page into words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;

use super::inquire;
use crate::client::ResponseVerification;
use crate::declare::StopReason;
use crate::outcome::StatusCounts;
use crate::report::{ProblemCount, RowCounts};

/// `summary.json` of a run.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub command: &'static str,
    pub input: String,
    pub input_sha256: String,
    pub endpoint: String,
    /// Whether answers were checked against a public key.
    pub response_signatures: ResponseVerification,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The row the headers were found on.
    pub header_row: u64,
    pub rows: RowCounts,
    /// Statuses of the whole run, earlier invocations into this folder
    /// included.
    pub results: StatusCounts,
    /// Statuses settled by this invocation (answers and rows not sent).
    pub this_invocation: StatusCounts,
    /// Final outcomes taken from the journal instead of sent again.
    pub replayed_from_journal: u64,
    /// Rows not sent because the ledger holds their identical request's
    /// answer (`source` = `ledger`).
    pub from_ledger: u64,
    /// The ledger the run recorded in.
    pub ledger: String,
    /// Corrected rows sent again under their declared request ID, answered.
    pub retransmitted: u64,
    /// Corrections not sent yet: the retransmission wait is not over
    /// (`RETRANSMIT_LATER`, in `retry.csv`).
    pub waiting_for_retransmission: u64,
    pub codes: BTreeMap<String, u64>,
    /// Identity check results of the S rows (CHECK_PASSED, CHECK_NOT_PASSED).
    pub identity_checks: BTreeMap<String, u64>,
    /// The rows whose identity check did not pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identity_not_passed_rows: Vec<u64>,
    /// `--resolve-unknown`: what the inquiry about the unknown rows found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inquiry: Option<inquire::InquiryReport>,
    pub rejected_by: Vec<ProblemCount>,
    pub requests_sent: u64,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u128,
    pub achieved_rate_per_sec: f64,
    /// Requests started in each second of the run, and the answers'
    /// latency: what report.html draws, kept so that it can be drawn again.
    pub requests_per_second: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<crate::report::html::Latency>,
    /// Times the endpoint stopped answering and the run waited for it, and
    /// how long it waited in all.
    pub outages: u32,
    pub outage_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub exit_code: u8,
}

/// What a run came to. The command line turns it into an exit code
/// (`exit::of_run`), the page into words.
#[derive(Debug)]
pub enum RunOutcome {
    /// Every valid row declared S, and no row rejected.
    AllDeclared,
    /// Finished: some rows failed (F) or were rejected, none is unknown.
    SomeFailed,
    /// Rows are left unknown, in `retry.csv`: the run was interrupted,
    /// stopped because the endpoint kept failing (the reason), or answers
    /// stayed unknown.
    Unfinished(Option<StopReason>),
    /// The run ended with an error: the input, an output that cannot be
    /// written, or an answer that says the configuration or the request is
    /// wrong.
    Fatal(anyhow::Error),
}

impl RunOutcome {
    /// What it is, as far as the exit code goes.
    pub fn conclusion(&self) -> crate::exit::Conclusion {
        use crate::exit::Conclusion;
        match self {
            RunOutcome::AllDeclared => Conclusion::AllDeclared,
            RunOutcome::SomeFailed => Conclusion::SomeFailed,
            RunOutcome::Unfinished(_) => Conclusion::Unfinished,
            RunOutcome::Fatal(_) => Conclusion::Fatal,
        }
    }
}

/// A run's end: its summary, its outcome, its folder.
#[derive(Debug)]
pub struct RunReport {
    pub summary: RunSummary,
    pub outcome: RunOutcome,
    pub out: PathBuf,
}

impl RunReport {
    pub fn retry_path(&self) -> PathBuf {
        self.out.join("retry.csv")
    }
}

/// What a run came to, by precedence: a failed input, then a failed
/// write, then an answer that stops every run; else the rows' statuses.
pub fn conclude(
    admitted: anyhow::Result<()>,
    write_failure: Option<String>,
    stop: Option<StopReason>,
    results: &StatusCounts,
    rejected: u64,
    retry_path: &Path,
) -> RunOutcome {
    if let Err(error) = admitted {
        return RunOutcome::Fatal(error);
    }
    if let Some(what) = write_failure {
        return RunOutcome::Fatal(anyhow!(
            "cannot write {what}; the run stopped sending at once and wrote what it still \
             could. Make room (or fix the folder's permissions) and run the same command \
             again: it resumes from the journal, sending again at most the requests that \
             were in flight"
        ));
    }
    match stop {
        Some(StopReason::Configuration(code)) => RunOutcome::Fatal(anyhow!(
            "the API answered {code}, a configuration problem: check [api] client_id, \
             private_key, key_version and endpoint (and the public key registered with \
             Alipay+); the unsent rows are in {}",
            retry_path.display()
        )),
        Some(StopReason::Redirected(message)) => RunOutcome::Fatal(anyhow!(
            "{message}; the unsent rows are in {}",
            retry_path.display()
        )),
        Some(reason @ StopReason::RequestRejected(_)) => RunOutcome::Fatal(anyhow!(
            "{}. Check [api] endpoint (its path), key_version and client_id; the rows are \
             left unknown in {} and are sent again by the same command once it is fixed",
            reason.describe(),
            retry_path.display()
        )),
        // A failed write always comes with its failure, handled above.
        Some(StopReason::WriteFailed(what)) => RunOutcome::Fatal(anyhow!("cannot write {what}")),
        stop if results.unknown > 0 => RunOutcome::Unfinished(stop),
        _ if results.failed > 0 || rejected > 0 => RunOutcome::SomeFailed,
        _ => RunOutcome::AllDeclared,
    }
}

/// Whether a stop ends the run with an error (nothing more is asked of
/// the API, not even an inquiry).
pub fn is_fatal(stop: Option<&StopReason>) -> bool {
    matches!(
        stop,
        Some(
            StopReason::Configuration(_)
                | StopReason::Redirected(_)
                | StopReason::RequestRejected(_)
                | StopReason::WriteFailed(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(success: u64, failed: u64, unknown: u64) -> StatusCounts {
        StatusCounts {
            success,
            failed,
            unknown,
        }
    }

    fn outcome(
        admitted: anyhow::Result<()>,
        failure: Option<&str>,
        stop: Option<StopReason>,
        results: StatusCounts,
        rejected: u64,
    ) -> RunOutcome {
        conclude(
            admitted,
            failure.map(str::to_owned),
            stop,
            &results,
            rejected,
            Path::new("out/retry.csv"),
        )
    }

    #[test]
    fn statuses_decide_when_nothing_went_wrong() {
        assert!(matches!(
            outcome(Ok(()), None, None, counts(3, 0, 0), 0),
            RunOutcome::AllDeclared
        ));
        assert!(matches!(
            outcome(Ok(()), None, None, counts(3, 0, 0), 1),
            RunOutcome::SomeFailed
        ));
        assert!(matches!(
            outcome(Ok(()), None, None, counts(3, 1, 0), 0),
            RunOutcome::SomeFailed
        ));
        assert!(matches!(
            outcome(
                Ok(()),
                None,
                Some(StopReason::Interrupted),
                counts(1, 1, 2),
                0
            ),
            RunOutcome::Unfinished(Some(StopReason::Interrupted))
        ));
        // Interrupted after every row was settled: nothing is left to do.
        assert!(matches!(
            outcome(
                Ok(()),
                None,
                Some(StopReason::Interrupted),
                counts(2, 0, 0),
                0
            ),
            RunOutcome::AllDeclared
        ));
    }

    #[test]
    fn an_error_wins_in_its_order() {
        let RunOutcome::Fatal(error) = outcome(
            Err(anyhow!("input broken")),
            Some("results.csv: disk full"),
            Some(StopReason::Configuration("INVALID_SIGNATURE".into())),
            counts(0, 0, 3),
            0,
        ) else {
            panic!("fatal expected")
        };
        assert_eq!(error.to_string(), "input broken");
        let RunOutcome::Fatal(error) = outcome(
            Ok(()),
            Some("results.csv: disk full"),
            Some(StopReason::Configuration("INVALID_SIGNATURE".into())),
            counts(0, 0, 3),
            0,
        ) else {
            panic!("fatal expected")
        };
        assert!(
            error
                .to_string()
                .starts_with("cannot write results.csv: disk full")
        );
        let RunOutcome::Fatal(error) = outcome(
            Ok(()),
            None,
            Some(StopReason::Configuration("INVALID_SIGNATURE".into())),
            counts(0, 0, 3),
            0,
        ) else {
            panic!("fatal expected")
        };
        let text = error.to_string();
        assert!(text.contains("INVALID_SIGNATURE"), "{text}");
        assert!(text.contains("out/retry.csv"), "{text}");
    }
}

/// What `report.html` needs of a run's `summary.json`, read back to draw
/// the report again after an inquiry changed the run's results.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SavedRunSummary {
    pub input: String,
    pub endpoint: String,
    pub rows: RowCounts,
    pub results: StatusCounts,
    pub codes: BTreeMap<String, u64>,
    pub identity_checks: BTreeMap<String, u64>,
    pub rejected_by: Vec<ProblemCount>,
    pub requests_per_second: Vec<u64>,
    pub latency_ms: Option<crate::report::html::Latency>,
    pub started_at: String,
    pub duration_ms: u128,
    pub stopped: Option<String>,
    pub exit_code: u8,
    pub retransmitted: u64,
    pub waiting_for_retransmission: u64,
    pub inquiry: Option<SavedInquiry>,
}

/// The part of an inquiry's report that report.html shows.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SavedInquiry {
    pub customs_results: BTreeMap<String, inquire::CustomsResultCount>,
}

/// Customs results as report.html lists them: `CODE (description)` and a
/// count.
pub fn customs_lines(
    results: &BTreeMap<String, inquire::CustomsResultCount>,
) -> Vec<(String, u64)> {
    results
        .iter()
        .map(|(code, result)| match result.description.as_str() {
            "" => (code.clone(), result.count),
            description => (format!("{code} ({description})"), result.count),
        })
        .collect()
}

/// Draws `report.html` in `out` again from its `summary.json`.
pub fn redraw_report(out: &Path, language: crate::i18n::Language) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = out.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let saved: SavedRunSummary =
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
    let no_customs = BTreeMap::new();
    let report = crate::report::html::ReportData {
        command: "run",
        input: &saved.input,
        endpoint: Some(&saved.endpoint),
        rows: &saved.rows,
        results: Some(saved.results),
        codes: &saved.codes,
        problems: &saved.rejected_by,
        identity_checks: &saved.identity_checks,
        per_second: &saved.requests_per_second,
        latency: saved.latency_ms,
        started_at: &saved.started_at,
        duration_ms: saved.duration_ms,
        stopped: saved.stopped.as_deref(),
        exit_code: saved.exit_code,
        language,
        retransmitted: saved.retransmitted,
        waiting_for_retransmission: saved.waiting_for_retransmission,
        customs_results: customs_lines(
            saved
                .inquiry
                .as_ref()
                .map_or(&no_customs, |inquiry| &inquiry.customs_results),
        ),
    };
    crate::report::html::write_report(out, &report)
        .with_context(|| format!("cannot write {}", out.join("report.html").display()))
}
