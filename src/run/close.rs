//! The run's close, once every row is through the sink: the journal
//! synced, `rejected.csv`, `results.csv` and `retry.csv` (and their
//! workbooks for a workbook input) written, the unknown rows asked about
//! when `--resolve-unknown` says so, and `summary.json` and `report.html`
//! written. Every file is attempted even after one fails; the first
//! failure decides the outcome.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Local;
use tokio::sync::watch;

use super::events::{Events, RunEvent};
use super::sink::Drained;
use super::summary::{RunOutcome, RunReport, RunSummary, conclude, is_fatal};
use super::{Phase, Progress, inquire};
use crate::client::{DeclareClient, ResponseVerification};
use crate::declare::{StopReason, Timing};
use crate::ledger::Ledger;
use crate::outcome::StatusCounts;
use crate::report::html::{Latency, ReportData, write_report};
use crate::report::{timestamp, write_json, write_results_xlsx, write_retry, write_retry_xlsx};
use crate::sandbox::RunningSandbox;
use crate::settings::Settings;

/// This invocation's statuses as results.csv holds them: an answer the
/// ledger could not record is written out U.
fn as_written(settled: StatusCounts, unrecorded: StatusCounts) -> StatusCounts {
    StatusCounts {
        success: settled.success.saturating_sub(unrecorded.success),
        failed: settled.failed.saturating_sub(unrecorded.failed),
        unknown: settled.unknown + unrecorded.success + unrecorded.failed,
    }
}

/// The input as read, for the outputs that repeat its columns.
pub struct InputLayout {
    pub headers: Vec<String>,
    pub xlsx: bool,
    pub sheet: Option<String>,
    pub header_row: u64,
}

/// What the close needs of the run.
pub struct Closing {
    pub out: PathBuf,
    pub input: String,
    pub input_sha256: String,
    pub endpoint: String,
    pub response_signatures: ResponseVerification,
    pub layout: InputLayout,
    pub settings: Settings,
    pub resolve_unknown: bool,
    /// Write `results.xlsx` and `retry.xlsx` whatever the input (the page).
    pub workbooks: bool,
    pub ledger: Arc<Ledger>,
    pub client: DeclareClient,
    pub sandbox: Option<RunningSandbox>,
    pub started_at: chrono::DateTime<Local>,
    pub clock: Instant,
    pub events: Events,
    pub progress: Arc<watch::Sender<Progress>>,
}

impl Closing {
    /// Writes every output and says what the run came to.
    pub async fn close(
        self,
        drained: Drained,
        admitted: anyhow::Result<()>,
        stop: Option<StopReason>,
        timing: Timing,
    ) -> RunReport {
        let Drained {
            mut journal,
            mut outputs,
            failures,
        } = drained;
        let out = self.out.clone();
        let fail = |file: &Path, error: std::io::Error| {
            failures.record(file, &error);
        };
        if let Err(error) = journal.sync() {
            fail(&out.join("journal.jsonl"), error);
        }
        let Progress {
            tally,
            rows: counts,
            replayed,
            from_ledger,
            waiting,
            unrecorded,
            ..
        } = self.progress.borrow().clone();
        if let Err(error) = outputs.rejected.commit() {
            fail(&out.join("rejected.csv"), error);
        }
        let results_written = !outputs.results_failed
            && match outputs.results.finish() {
                Ok(()) => true,
                Err(error) => {
                    fail(&out.join("results.csv"), error);
                    false
                }
            };
        let headers = &self.layout.headers;
        if self.layout.xlsx || self.workbooks {
            // Workbooks to open and re-feed without Excel damaging IDs.
            let results_xlsx = out.join("results.xlsx");
            if results_written
                && let Err(error) = write_results_xlsx(
                    &out.join("results.csv"),
                    &results_xlsx,
                    self.settings.input.amount_unit == crate::validate::AmountUnit::Yuan,
                )
            {
                fail(&results_xlsx, error);
            }
            let retry_xlsx = out.join("retry.xlsx");
            if let Err(error) = write_retry_xlsx(&retry_xlsx, headers, &outputs.retry) {
                fail(&retry_xlsx, error);
            }
        }
        let retry_path = out.join("retry.csv");
        if let Err(error) = write_retry(&retry_path, headers, std::mem::take(&mut outputs.retry)) {
            fail(&retry_path, error);
        }
        let stop = match failures.first() {
            Some(what) => Some(StopReason::WriteFailed(what)),
            None => stop,
        };
        let mut inquiry = None;
        let fatal = admitted.is_err() || is_fatal(stop.as_ref());
        if self.resolve_unknown && outputs.status.unknown > 0 && !fatal && results_written {
            (self.events)(RunEvent::Inquiring {
                unknown_rows: outputs.status.unknown,
            });
            let events = Arc::clone(&self.events);
            let inquired = inquire::inquire_folder(
                &out,
                &self.client,
                &self.ledger,
                &mut journal,
                &self.settings.inquiry,
                inquire::InquiryScope::UnknownSent,
                |text| events(RunEvent::Inquiry(text.to_owned())),
            )
            .await;
            match inquired {
                Ok(report) => {
                    outputs.status = report.results;
                    outputs.codes.clone_from(&report.codes);
                    inquiry = Some(report);
                }
                // The run's own outputs stand; the rows stay unknown.
                Err(error) => (self.events)(RunEvent::InquiryFailed {
                    cause: format!("{error:#}"),
                }),
            }
        }
        if let Some(sandbox) = self.sandbox {
            sandbox.stop().await;
        }
        let stopped = stop.as_ref().map(StopReason::describe);
        let outcome = conclude(
            admitted,
            failures.first(),
            stop,
            &outputs.status,
            counts.rejected,
            &retry_path,
        );
        let exit_code = crate::exit::of_run(outcome.conclusion());
        let elapsed = self.clock.elapsed();
        let latency = Latency::of(timing.latencies_micros);
        let summary = RunSummary {
            command: "run",
            input: self.input,
            input_sha256: self.input_sha256,
            endpoint: self.endpoint,
            response_signatures: self.response_signatures,
            sheet: self.layout.sheet,
            header_row: self.layout.header_row,
            rows: counts,
            this_invocation: as_written(tally.settled, unrecorded),
            replayed_from_journal: replayed,
            from_ledger,
            ledger: self.ledger.path().display().to_string(),
            retransmitted: outputs.retransmitted,
            waiting_for_retransmission: waiting,
            results: outputs.status,
            codes: outputs.codes,
            identity_checks: outputs.identity_checks,
            identity_not_passed_rows: outputs.identity_not_passed,
            inquiry,
            rejected_by: outputs.problems.sorted(),
            requests_sent: tally.requests,
            started_at: timestamp(self.started_at),
            finished_at: timestamp(Local::now()),
            duration_ms: elapsed.as_millis(),
            achieved_rate_per_sec: tally.requests as f64 / elapsed.as_secs_f64().max(0.001),
            requests_per_second: timing.per_second,
            latency_ms: latency,
            outages: timing.outages,
            outage_seconds: (timing.outage_time.as_secs_f64() * 10.0).round() / 10.0,
            stopped,
            exit_code,
        };
        // The night's end in the ledger, for `ledger status`; the
        // declarations are recorded already, so a failure here loses none.
        if let Err(error) =
            self.ledger
                .finish_run(exit_code, waiting, self.settings.keep_raw_answers)
        {
            tracing::warn!("cannot record the run's end in the ledger: {error:#}");
        }
        let summary_path = out.join("summary.json");
        if let Err(error) = write_json(&summary_path, &summary) {
            fail(&summary_path, error);
        }
        if let Some(path) = &self.settings.metrics {
            let text = super::metrics::render(&summary, latency.as_ref(), timing.retries);
            // Like --on-finish, an aid to the operator: its failure is
            // said, and never changes what the run came to.
            if let Err(error) = super::metrics::write(path, &text) {
                (self.events)(RunEvent::MetricsNotWritten {
                    what: format!("{}: {error}", path.display()),
                });
            }
        }
        let report = ReportData {
            command: "run",
            input: &summary.input,
            endpoint: Some(&summary.endpoint),
            rows: &summary.rows,
            results: Some(summary.results),
            codes: &summary.codes,
            problems: &summary.rejected_by,
            identity_checks: &summary.identity_checks,
            per_second: &summary.requests_per_second,
            latency: summary.latency_ms,
            started_at: &summary.started_at,
            duration_ms: summary.duration_ms,
            stopped: summary.stopped.as_deref(),
            exit_code: summary.exit_code,
            language: self.settings.language,
            retransmitted: summary.retransmitted,
            waiting_for_retransmission: summary.waiting_for_retransmission,
            customs_results: summary
                .inquiry
                .as_ref()
                .map(|inquiry| super::summary::customs_lines(&inquiry.customs_results))
                .unwrap_or_default(),
        };
        if let Err(error) = write_report(&out, &report) {
            fail(&out.join("report.html"), error);
        }
        // A failure of the last two files is fatal too, as it was said.
        let outcome = match (outcome, failures.first()) {
            (RunOutcome::Fatal(error), _) => RunOutcome::Fatal(error),
            (_, Some(what)) => conclude(Ok(()), Some(what), None, &summary.results, 0, &retry_path),
            (outcome, None) => outcome,
        };
        self.progress.send_modify(|p| p.phase = Phase::Finished);
        RunReport {
            summary,
            outcome,
            out,
        }
    }
}
