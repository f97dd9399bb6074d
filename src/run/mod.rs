//! A batch run as a library, so that the command line and the web page
//! drive the same thing. [`RunPlan::prepare`] does everything that can fail
//! before a request is sent: the config's target, the out folder (lock,
//! identity, `--fresh`), the input up to its header, the journal.
//! [`execute`] then validates the rows on a thread of their own, declares
//! the valid ones through the engine (`crate::declare`), journals every
//! attempt and answer, and writes every output. It is async, stops sending
//! when its cancellation token fires, and publishes a [`Progress`] snapshot
//! as rows settle; what it came to is a [`RunReport`].

mod embedded;
pub mod folder;
pub mod inquire;
mod outputs;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use chrono::Local;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::{DeclareClient, ResponseVerification};
use crate::declare::{
    BeforeSend, Job, Journal, Replay, StatusCounts, StopReason, Tally, declare_all,
};
use crate::exit;
use crate::fields::Field;
use crate::input::{InputFormat, RowRef, RowSource};
use crate::ledger::{Decision, Earlier, Ledger, LedgerError, Refusal};
use crate::messages::{EarlierRun, RowMessage};
use crate::outdir::OutLock;
use crate::protocol::{BODY_FORMAT_VERSION, DeclareRequest, Status};
use crate::report::html::{Latency, ReportData, write_report};
use crate::report::{
    ProblemCount, RejectedWriter, ResultRow, ResultsWriter, RowCounts, hex, timestamp, write_json,
    write_results_xlsx, write_retry, write_retry_xlsx,
};
use crate::settings::{InputSettings, Settings};
use crate::validate::{
    ColumnMap, CrossRowIndex, Outcome, Problem, RowRules, Verdict, validate_stream,
};

pub use embedded::{Target, start_embedded_sandbox};
pub use folder::RunRecord;
pub use outputs::{Outputs, WriteFailures, raw_answer, result_row};

/// What to run: the input, the out folder and what the command line asks
/// of this run beyond its settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    pub fresh: bool,
    /// `--resend-failed`: send rows whose identical request the ledger
    /// holds as F.
    pub resend_failed: bool,
    /// `--resolve-unknown`: before finishing, inquire the rows still U and
    /// settle those Alipay+ knows.
    pub resolve_unknown: bool,
}

/// Opens an input up to its header row and resolves its columns into the
/// rules for its rows; problems with the file or the mapping are fatal and
/// name the file. Shared by `validate` and `run`.
pub fn open_input(input: &Path, settings: &InputSettings) -> anyhow::Result<(RowSource, RowRules)> {
    let source = RowSource::open(input, &settings.open_options())?;
    let (map, warnings) =
        ColumnMap::resolve(source.headers(), &settings.fields, source.header_line())
            .with_context(|| format!("{}", input.display()))?;
    for warning in warnings {
        tracing::warn!("{}: {warning}", input.display());
    }
    let rules = RowRules::new(
        map,
        settings.customs_codes.clone(),
        settings.amount_unit,
        source.expected_width(),
    );
    Ok((source, rules))
}

/// An earlier run's declaration as messages name it, its time local.
fn earlier_run(earlier: Earlier) -> Box<EarlierRun> {
    Box::new(EarlierRun {
        at: local_time(&earlier.at),
        request_id: earlier.request_id,
        run: earlier.run,
        row: earlier.row,
    })
}

fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |time| {
            time.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        },
    )
}

/// The rejection of a row the ledger refuses.
fn ledger_problem(rules: &RowRules, request: &DeclareRequest, refusal: Refusal) -> Problem {
    match refusal {
        Refusal::TooEarly {
            earlier,
            allowed_from,
        } => rules.problem(
            Field::CustomsDeclarationRequestId,
            RowMessage::RetransmissionTooEarly {
                earlier: earlier_run(earlier),
                allowed_from: local_time(&crate::ledger::ledger_time(allowed_from)),
            },
        ),
        Refusal::Changed { earlier } => rules.problem(
            Field::CustomsDeclarationRequestId,
            RowMessage::ChangedAfterDeclaration {
                earlier: earlier_run(earlier),
            },
        ),
        Refusal::OrderDeclared { earlier } => rules.problem(
            if request.is_split == "true" {
                Field::ReferenceOrderId
            } else {
                Field::PaymentRequestId
            },
            RowMessage::OrderDeclaredEarlier {
                earlier: earlier_run(earlier),
                order_id: request.declaration_order_id().to_owned(),
                customs_code: request.customs.customs_code.clone(),
            },
        ),
    }
}

/// A run ready to start: every check that needs no request is done, the
/// folder is locked and the journal open.
pub struct RunPlan {
    options: RunOptions,
    settings: Settings,
    target: Target,
    response_signatures: ResponseVerification,
    source: RowSource,
    rules: RowRules,
    input_sha256: String,
    endpoint: String,
    journal: Journal,
    replay: Replay,
    ledger: Arc<Ledger>,
    started_at: chrono::DateTime<Local>,
    clock: Instant,
    _lock: OutLock,
}

impl RunPlan {
    /// Loads the target, takes the out folder, opens the input and the
    /// journal, and records the run in `run.json`.
    pub fn prepare(options: RunOptions, settings: Settings) -> anyhow::Result<RunPlan> {
        let started_at = Local::now();
        let clock = Instant::now();
        let target = Target::from_settings(&settings)?;
        let response_signatures = settings.response_verification()?;
        if let Target::Remote(api) = &target
            && let Some(warning) = response_signatures.warning(api.base.as_str())
        {
            tracing::warn!("{warning}");
        }

        let out = options.out.as_path();
        crate::outdir::create_private_folder(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
        folder::refuse_input_inside_out(&options.input, out)?;
        let lock = OutLock::take(out, "run")?;

        let (mut source, rules) = open_input(&options.input, &settings.input)?;
        let input_sha256 = hex(&source.sha256()?);
        let (endpoint, client_id) = target.names();
        let identity = folder::identity(&input_sha256, &endpoint, &settings.input, &client_id);
        folder::check_previous(out, &identity, options.fresh)?;
        if options.fresh {
            folder::move_aside(out, matches!(target, Target::Embedded(_)))?;
        }
        let ledger_path = settings.ledger.for_run(settings.endpoint()?, out);
        let mut ledger = Ledger::open(&ledger_path, &endpoint, &client_id)?;
        ledger.begin_run(out, &options.input, &input_sha256)?;
        let (journal, replay) = Journal::open(&out.join("journal.jsonl"))?;
        write_json(
            &out.join("run.json"),
            &RunRecord {
                identity,
                input: options.input.display().to_string(),
                body_format: BODY_FORMAT_VERSION,
                endpoint: endpoint.clone(),
                client_id,
                ledger: Some(std::path::absolute(&ledger_path).unwrap_or(ledger_path)),
            },
        )?;
        Ok(RunPlan {
            options,
            settings,
            target,
            response_signatures,
            source,
            rules,
            input_sha256,
            endpoint,
            journal,
            replay,
            ledger: Arc::new(ledger),
            started_at,
            clock,
            _lock: lock,
        })
    }

    /// Rows with a final answer in the journal already: a resumed run.
    pub fn rows_already_final(&self) -> usize {
        self.replay.finals()
    }

    pub fn out(&self) -> &Path {
        &self.options.out
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Declaring,
    /// Nothing more is sent; the outputs are being written.
    WritingOutputs,
    Finished,
}

/// A snapshot of a run, published as rows settle.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    pub phase: Phase,
    /// Requests sent and rows settled by this invocation.
    pub tally: Tally,
    /// Rows read so far; the valid ones are the rows to settle.
    pub rows: RowCounts,
    /// Valid rows settled from the journal.
    pub replayed: u64,
    /// Valid rows settled from the ledger (not sent: declared before).
    pub from_ledger: u64,
    /// The embedded sandbox's address, once it listens.
    pub sandbox_endpoint: Option<String>,
}

impl Progress {
    /// Valid rows settled so far, this invocation's and the journal's.
    pub fn settled(&self) -> u64 {
        self.tally.settled.total() + self.replayed + self.from_ledger
    }
}

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub exit_code: u8,
}

/// What a run came to.
pub struct RunReport {
    pub summary: RunSummary,
    pub stop: Option<StopReason>,
    pub exit_code: u8,
    pub out: PathBuf,
    /// Reading or checking the input failed part way.
    validation_error: Option<anyhow::Error>,
    /// The first output that could not be written.
    write_failure: Option<String>,
}

impl RunReport {
    pub fn retry_path(&self) -> PathBuf {
        self.out.join("retry.csv")
    }

    /// The fatal error the run ended with, if it ended with one (exit 1):
    /// the input, an output that cannot be written, or an answer that
    /// says the configuration or the request is wrong.
    pub fn fatal_error(&mut self) -> Option<anyhow::Error> {
        if let Some(error) = self.validation_error.take() {
            return Some(error);
        }
        if let Some(what) = &self.write_failure {
            return Some(anyhow!(
                "cannot write {what}; the run stopped sending at once and wrote what it still \
                 could. Make room (or fix the folder's permissions) and run the same command \
                 again: it resumes from the journal, sending again at most the requests that \
                 were in flight"
            ));
        }
        match &self.stop {
            Some(StopReason::Configuration(code)) => Some(anyhow!(
                "the API answered {code}, a configuration problem: check [api] client_id, \
                 private_key, key_version and endpoint (and the public key registered with \
                 Alipay+); the unsent rows are in {}",
                self.retry_path().display()
            )),
            Some(StopReason::Redirected(message)) => Some(anyhow!(
                "{message}; the unsent rows are in {}",
                self.retry_path().display()
            )),
            Some(reason @ StopReason::RequestRejected(_)) => Some(anyhow!(
                "{}. Check [api] endpoint (its path), key_version and client_id; the rows are \
                 left unknown in {} and are sent again by the same command once it is fixed",
                reason.describe(),
                self.retry_path().display()
            )),
            _ => None,
        }
    }
}

/// Runs a prepared plan to its end: every valid row settled (or, after a
/// cancel or a stop, left unknown and in `retry.csv`) and every output
/// written. `notice` hears what a person should know as it happens.
pub async fn execute(
    plan: RunPlan,
    cancel: CancellationToken,
    progress: Arc<watch::Sender<Progress>>,
    notice: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<RunReport> {
    let RunPlan {
        options,
        settings: all_settings,
        target,
        response_signatures,
        mut source,
        rules,
        input_sha256,
        endpoint,
        journal,
        replay,
        ledger,
        started_at,
        clock,
        _lock,
    } = plan;
    let retransmit_wait = all_settings.retransmit_wait;
    let settings = all_settings.run.clone();
    let resend_failed = options.resend_failed;
    let ledger_path = ledger.path().to_owned();
    let out = options.out.clone();
    if replay.finals() > 0 {
        notice(&format!(
            "resuming the run in {}: {} rows already have a final answer and are not sent again",
            out.display(),
            replay.finals()
        ));
    }
    let journal_path = out.join("journal.jsonl");
    let results_path = out.join("results.csv.partial");
    let rejected_path = out.join("rejected.csv");
    let journal = Arc::new(Mutex::new(journal));
    let headers = source.headers().to_vec();
    let xlsx_input = source.format() == InputFormat::Xlsx;
    let (sheet_read, header_row) = (source.sheet().map(str::to_owned), source.header_line());
    let outputs = Arc::new(Mutex::new(Outputs::new(
        RejectedWriter::create(
            &rejected_path,
            &headers,
            rules.field_columns(),
            all_settings.language,
        )?,
        ResultsWriter::create(&out)?,
    )));
    let (running_sandbox, api) = match target {
        Target::Remote(api) => (None, *api),
        Target::Embedded(payments) => {
            let (sandbox, api) = start_embedded_sandbox(payments, all_settings.api.timeout).await?;
            notice(&format!(
                "declaring to the embedded sandbox at {} — nothing is declared for real (give \
                 --config to declare to Alipay+)",
                sandbox.endpoint()
            ));
            progress.send_modify(|p| p.sandbox_endpoint = Some(sandbox.endpoint()));
            (Some(sandbox), api)
        }
    };
    let client = DeclareClient::new(api)?;
    progress.send_modify(|p| {
        p.phase = Phase::Declaring;
        p.rows.above_header = source.rows_above_header();
    });
    let (jobs_tx, jobs_rx) = tokio::sync::mpsc::channel::<Job>(settings.concurrency * 4);
    let (stop_tx, stop_rx) = watch::channel::<Option<StopReason>>(None);
    let stop_tx = Arc::new(stop_tx);
    let write_failures = Arc::new(WriteFailures::default());

    // The rows are read and checked on a thread of their own; valid rows
    // flow to the engine over a bounded channel.
    let validation = {
        let (progress, outputs, stop_tx, write_failures, ledger, journal) = (
            Arc::clone(&progress),
            Arc::clone(&outputs),
            Arc::clone(&stop_tx),
            Arc::clone(&write_failures),
            Arc::clone(&ledger),
            Arc::clone(&journal),
        );
        let (results_path, rejected_path, journal_path, ledger_path) = (
            results_path.clone(),
            rejected_path.clone(),
            journal_path.clone(),
            ledger_path.clone(),
        );
        std::thread::Builder::new()
            .name("validation".into())
            .spawn(move || {
                // A valid row's count: settled from the journal or the
                // ledger, or to be sent (a row the ledger refuses is counted
                // as rejected instead).
                let count_valid = |long_term: bool| {
                    progress.send_modify(|p| {
                        p.rows.valid += 1;
                        p.rows.long_term_id_cards += u64::from(long_term);
                    });
                };
                // A final result not from this run's requests, written out;
                // a failed write stops the run.
                let write_result = |result: &ResultRow| {
                    let recorded = outputs.lock().expect("not poisoned").record(result);
                    if let Err(error) = recorded {
                        stop_tx.send_replace(Some(write_failures.record(&results_path, &error)));
                    }
                };
                let reject = |row: &RowRef<'_>, problems: &[Problem]| -> anyhow::Result<()> {
                    progress.send_modify(|p| p.rows.rejected += 1);
                    let mut out = outputs.lock().expect("not poisoned");
                    out.problems.add(problems);
                    if let Err(error) = out.rejected.write(row, problems) {
                        stop_tx.send_replace(Some(write_failures.record(&rejected_path, &error)));
                        return Err(error)
                            .with_context(|| format!("cannot write {}", rejected_path.display()));
                    }
                    Ok(())
                };
                let workers = std::thread::available_parallelism().map_or(1, usize::from);
                let result = validate_stream(
                    &mut source,
                    &rules,
                    &mut CrossRowIndex::default(),
                    workers,
                    |outcome: Outcome| -> anyhow::Result<()> {
                        progress.send_modify(|p| p.rows.read += 1);
                        let valid = match outcome.verdict {
                            Verdict::Valid(valid) => valid,
                            Verdict::Totals => {
                                progress.send_modify(|p| p.rows.add_totals_row(outcome.row.line));
                                return Ok(());
                            }
                            Verdict::Rejected(problems) => {
                                return reject(&outcome.row.as_row(), &problems);
                            }
                        };
                        let line = outcome.row.line;
                        // The exact bytes the ledger compares and the request sends.
                        let body = valid.request.to_body();
                        let ledger_failed = |error: LedgerError| {
                            stop_tx.send_replace(Some(write_failures.record(&ledger_path, &error)));
                            anyhow::Error::new(error)
                        };
                        if let Some(result) = replay
                            .final_result(line)
                            .context("cannot read the journal")?
                        {
                            count_valid(valid.long_term_expiry);
                            progress.send_modify(|p| p.replayed += 1);
                            // A kill may have come between the journal and the ledger.
                            ledger
                                .ensure_outcome(&result, &valid.request, &body)
                                .map_err(ledger_failed)?;
                            write_result(&result);
                            return Ok(());
                        }
                        let decision = ledger
                            .decide(
                                &valid.request,
                                &body,
                                chrono::Utc::now(),
                                retransmit_wait,
                                resend_failed,
                            )
                            .map_err(ledger_failed)?;
                        let retransmission = match decision {
                            Decision::Send { retransmission } => retransmission,
                            Decision::Known(mut result) => {
                                count_valid(valid.long_term_expiry);
                                progress.send_modify(|p| p.from_ledger += 1);
                                result.row = line;
                                // Journaled, so that a resume gives the same.
                                let journaled = journal
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .settled(&result, "");
                                if let Err(error) = journaled {
                                    stop_tx.send_replace(Some(
                                        write_failures.record(&journal_path, &error),
                                    ));
                                    return Err(error).with_context(|| {
                                        format!("cannot write {}", journal_path.display())
                                    });
                                }
                                write_result(&result);
                                return Ok(());
                            }
                            Decision::Refused(refusal) => {
                                let problem = ledger_problem(&rules, &valid.request, refusal);
                                return reject(&outcome.row.as_row(), &[problem]);
                            }
                        };
                        count_valid(valid.long_term_expiry);
                        let valid = *valid;
                        let mut job = Job::new(valid.request, body, outcome.row);
                        job.sent = replay.attempts.get(&line).copied().unwrap_or(0);
                        job.retransmission = retransmission;
                        // The engine drains every row, even after a stop.
                        jobs_tx
                            .blocking_send(job)
                            .map_err(|_| anyhow!("the run engine stopped"))
                    },
                );
                drop(jobs_tx);
                let blank = source.blank_rows();
                progress.send_modify(|p| p.rows.blank = blank);
                result
            })
            .context("cannot start the validation thread")?
    };

    let cancelled = {
        let stop_tx = Arc::clone(&stop_tx);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            stop_tx.send_if_modified(|stop| {
                stop.get_or_insert(StopReason::Interrupted);
                true
            });
        })
    };
    // The ledger's writes go to a thread of their own and are committed in
    // groups: the run never waits for the disk per row.
    let ledger_writer = Arc::new(ledger.writer()?);
    let before_send: BeforeSend = {
        let (journal, write_failures, stop_tx, journal_path, ledger_writer) = (
            Arc::clone(&journal),
            Arc::clone(&write_failures),
            Arc::clone(&stop_tx),
            journal_path.clone(),
            Arc::clone(&ledger_writer),
        );
        Arc::new(move |job: &Job| {
            let journaled = journal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .attempt(job.row.line, &job.request.customs_declaration_request_id);
            if let Err(error) = journaled {
                // Never send what the journal does not know of.
                stop_tx.send_replace(Some(write_failures.record(&journal_path, &error)));
                return false;
            }
            // The journal holds the attempt; the ledger records it in its group.
            ledger_writer.call(job.row.line, &job.request, &job.body, job.retransmission);
            true
        })
    };
    let inquiry_client = client.clone();
    let (stop, timing) = declare_all(&settings, client, before_send, stop_rx, jobs_rx, {
        let (progress, outputs, stop_tx, write_failures, journal, ledger_writer) = (
            Arc::clone(&progress),
            Arc::clone(&outputs),
            Arc::clone(&stop_tx),
            Arc::clone(&write_failures),
            Arc::clone(&journal),
            Arc::clone(&ledger_writer),
        );
        let ledger_path = ledger_path.clone();
        let (journal_path, results_path) = (journal_path.clone(), results_path.clone());
        move |settled, tally| {
            progress.send_modify(|p| p.tally = tally.clone());
            let row = result_row(&settled);
            let answer = raw_answer(settled.outcome.as_ref());
            let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
            if settled.provisional {
                if let Err(error) = journal.provisional(&row, answer) {
                    stop_tx.send_replace(Some(write_failures.record(&journal_path, &error)));
                }
                return;
            }
            // Each final answer is in the journal before its row is
            // written out.
            if row.result_status != Status::U
                && let Err(error) = journal.settled(&row, answer)
            {
                stop_tx.send_replace(Some(write_failures.record(&journal_path, &error)));
            }
            drop(journal);
            let write_out = {
                let (outputs, stop_tx, write_failures) = (
                    Arc::clone(&outputs),
                    Arc::clone(&stop_tx),
                    Arc::clone(&write_failures),
                );
                let (results_path, ledger_path) = (results_path.clone(), ledger_path.clone());
                let (row, owned_row) = (row.clone(), settled.job.row);
                move |committed: Result<(), &LedgerError>| {
                    if let Err(error) = committed {
                        stop_tx.send_replace(Some(write_failures.record(&ledger_path, error)));
                        // Not written out: the next run settles it from the journal.
                        return;
                    }
                    let mut out = outputs.lock().expect("not poisoned");
                    if let Err(error) = out.record(&row) {
                        stop_tx.send_replace(Some(write_failures.record(&results_path, &error)));
                    }
                    if row.result_status == Status::U {
                        out.retry.push(owned_row);
                    }
                }
            };
            if settled.outcome.is_some() {
                // Each answer is in the ledger before its row is written out.
                ledger_writer.outcome(
                    row,
                    &settled.job.request,
                    &settled.job.body,
                    answer,
                    Box::new(write_out),
                );
            } else {
                write_out(Ok(()));
            }
        }
    })
    .await;
    cancelled.abort();
    // Every queued write committed and its row written out.
    match Arc::try_unwrap(ledger_writer) {
        Ok(writer) => writer.finish(),
        Err(_) => bail!("the ledger's writer is still in use"),
    }
    progress.send_modify(|p| p.phase = Phase::WritingOutputs);
    let validation = tokio::task::spawn_blocking(move || validation.join())
        .await
        .context("the validation thread")?
        .unwrap_or_else(|_| Err(anyhow!("the validation thread panicked")));

    // Records what it still can: every output is attempted even after one
    // fails, and the first failure decides the message.
    let fail = |file: &Path, error: std::io::Error| {
        write_failures.record(file, &error);
    };
    if let Err(error) = journal.lock().unwrap_or_else(|e| e.into_inner()).sync() {
        fail(&journal_path, error);
    }
    let mut outputs = Arc::try_unwrap(outputs)
        .map_err(|_| anyhow!("the run's outputs are still in use"))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let Progress {
        tally,
        rows: counts,
        replayed,
        from_ledger,
        ..
    } = progress.borrow().clone();
    if let Err(error) = outputs.rejected.commit() {
        fail(&rejected_path, error);
    }
    let results_written = !outputs.results_failed
        && match outputs.results.finish() {
            Ok(()) => true,
            Err(error) => {
                fail(&out.join("results.csv"), error);
                false
            }
        };
    let retry_path = out.join("retry.csv");
    if xlsx_input {
        // Workbooks to open and re-feed without Excel damaging IDs.
        let results_xlsx = out.join("results.xlsx");
        if results_written
            && let Err(error) = write_results_xlsx(&out.join("results.csv"), &results_xlsx)
        {
            fail(&results_xlsx, error);
        }
        let retry_xlsx = out.join("retry.xlsx");
        if let Err(error) = write_retry_xlsx(&retry_xlsx, &headers, &outputs.retry) {
            fail(&retry_xlsx, error);
        }
    }
    if let Err(error) = write_retry(&retry_path, &headers, outputs.retry) {
        fail(&retry_path, error);
    }
    let stop = match write_failures.first() {
        Some(what) => Some(StopReason::WriteFailed(what)),
        None => stop,
    };
    let fatal = validation.is_err()
        || matches!(
            stop,
            Some(
                StopReason::Configuration(_)
                    | StopReason::Redirected(_)
                    | StopReason::RequestRejected(_)
                    | StopReason::WriteFailed(_)
            )
        );
    let mut inquiry = None;
    if options.resolve_unknown && outputs.status.unknown > 0 && !fatal && results_written {
        notice(&format!(
            "asking Alipay+ about the {} rows left unknown (inquireDeclarationRequests)",
            outputs.status.unknown
        ));
        let mut journal = Arc::try_unwrap(journal)
            .map_err(|_| anyhow!("the journal is still in use"))?
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        match inquire::inquire_folder(
            &out,
            &inquiry_client,
            &ledger,
            &mut journal,
            &all_settings.inquiry,
            |text| notice(text),
        )
        .await
        {
            Ok(report) => {
                outputs.status = report.results;
                outputs.codes.clone_from(&report.codes);
                inquiry = Some(report);
            }
            // The run's own outputs stand; the rows stay unknown.
            Err(error) => notice(&format!(
                "the inquiry failed ({error:#}); the unknown rows stay in retry.csv"
            )),
        }
    }
    if let Some(sandbox) = running_sandbox {
        sandbox.stop().await;
    }
    let exit_code = match (&stop, &validation) {
        (_, Err(_))
        | (
            Some(
                StopReason::Configuration(_)
                | StopReason::Redirected(_)
                | StopReason::RequestRejected(_)
                | StopReason::WriteFailed(_),
            ),
            _,
        ) => exit::FATAL,
        _ if outputs.status.unknown > 0 => exit::UNFINISHED,
        _ if outputs.status.failed > 0 || counts.rejected > 0 => exit::SOME_FAILED,
        _ => exit::SUCCESS,
    };
    let elapsed = clock.elapsed();
    let summary = RunSummary {
        command: "run",
        input: options.input.display().to_string(),
        input_sha256,
        endpoint,
        response_signatures,
        sheet: sheet_read,
        header_row,
        rows: counts,
        this_invocation: tally.settled,
        replayed_from_journal: replayed,
        from_ledger,
        ledger: ledger_path.display().to_string(),
        results: outputs.status,
        codes: outputs.codes,
        identity_checks: outputs.identity_checks,
        identity_not_passed_rows: outputs.identity_not_passed,
        inquiry,
        rejected_by: outputs.problems.sorted(),
        requests_sent: tally.requests,
        started_at: timestamp(started_at),
        finished_at: timestamp(Local::now()),
        duration_ms: elapsed.as_millis(),
        achieved_rate_per_sec: tally.requests as f64 / elapsed.as_secs_f64().max(0.001),
        stopped: stop.as_ref().map(StopReason::describe),
        exit_code,
    };
    let summary_path = out.join("summary.json");
    if let Err(error) = write_json(&summary_path, &summary) {
        fail(&summary_path, error);
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
        per_second: &timing.per_second,
        latency: Latency::of(timing.latencies_micros),
        started_at: &summary.started_at,
        duration_ms: summary.duration_ms,
        stopped: summary.stopped.as_deref(),
        exit_code: summary.exit_code,
        language: all_settings.language,
    };
    if let Err(error) = write_report(&out, &report) {
        fail(&out.join("report.html"), error);
    }
    progress.send_modify(|p| p.phase = Phase::Finished);
    Ok(RunReport {
        summary,
        stop,
        exit_code,
        out,
        validation_error: validation.err(),
        write_failure: write_failures.first(),
    })
}
