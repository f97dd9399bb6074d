//! `declare-batch run INPUT`: validates every row, declares the valid ones
//! through the declare API at the configured rate, and leaves
//! `results.csv`, `rejected.csv`, `retry.csv` and `summary.json`. Without a
//! config (or with `endpoint = "sandbox"`) it declares to a sandbox started
//! in-process, so that it can be tried on a fresh machine.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Local;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::client::{ApiSettings, DeclareClient, ResponseVerification, parse_endpoint};
use crate::config::Config;
use crate::declare::{
    BeforeSend, Job, Journal, NOT_SENT, RunSettings, Settled, StopReason, Tally, declare_all,
};
use crate::exit;
use crate::input::OwnedRow;
use crate::messages::Language;
use crate::outdir::OutLock;
use crate::protocol::keys::generate_key_pair;
use crate::protocol::{BODY_FORMAT_VERSION, DeclareOutcome, MessageSigner, MessageVerifier};
use crate::report::{
    ProblemTally, RejectedWriter, ResultRow, ResultsWriter, RowCounts, hex, timestamp, write_json,
    write_problem_table, write_results_xlsx, write_retry, write_retry_xlsx,
};
use crate::sandbox::{Payments, RunningSandbox, SAMPLE_PAYMENTS, Sandbox, SandboxSettings};
use crate::say;
use crate::validate::{CrossRowIndex, Verdict, validate_stream};

#[derive(Debug, clap::Args)]
pub struct RunOpts {
    /// INPUT, --config, --out (which must not contain INPUT), --sheet.
    #[command(flatten)]
    pub input: super::InputArgs,
    /// Requests started per second, all attempts included; 0 = no limit
    /// [default: [run] rate_per_sec of the config, else 20].
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<u32>,
    /// Requests in flight at most, 1 or more [default: [run] concurrency of
    /// the config, else 8].
    #[arg(long)]
    pub concurrency: Option<std::num::NonZeroUsize>,
    /// Start over in a folder that holds another run: its outputs move to
    /// OUT/.previous-<timestamp>/.
    #[arg(long)]
    pub fresh: bool,
}

/// Output files of a run, which `--fresh` moves aside.
const OUTPUTS: [&str; 10] = [
    "journal.jsonl",
    "results.csv",
    "results.csv.partial",
    "results.xlsx",
    "rejected.csv",
    "rejected.xlsx",
    "retry.xlsx",
    "retry.csv",
    "summary.json",
    "run.json",
];

/// `summary.json` of a run.
#[derive(Debug, Serialize)]
struct RunSummary {
    command: &'static str,
    input: String,
    input_sha256: String,
    endpoint: String,
    /// Whether answers were checked against a public key.
    response_signatures: ResponseVerification,
    #[serde(skip_serializing_if = "Option::is_none")]
    sheet: Option<String>,
    /// The row the headers were found on.
    header_row: u64,
    rows: RowCounts,
    /// Statuses of the whole run, earlier invocations into this folder
    /// included.
    results: StatusCounts,
    /// Statuses settled by this invocation (answers and rows not sent).
    this_invocation: StatusCounts,
    /// Final outcomes taken from the journal instead of sent again.
    replayed_from_journal: u64,
    codes: BTreeMap<String, u64>,
    rejected_by: Vec<crate::report::ProblemCount>,
    requests_sent: u64,
    started_at: String,
    finished_at: String,
    duration_ms: u128,
    achieved_rate_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
    exit_code: u8,
}

#[derive(Debug, Default, Clone, Serialize)]
struct StatusCounts {
    #[serde(rename = "S")]
    success: u64,
    #[serde(rename = "F")]
    failed: u64,
    #[serde(rename = "U")]
    unknown: u64,
}

/// `run.json`: what the run in this folder is, so that another run into
/// it is recognised.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
struct RunRecord {
    identity: String,
    input: String,
    /// The version of the request bytes built from rows; runs recorded
    /// before it was kept made version 1's.
    #[serde(default = "first_body_format")]
    body_format: u32,
}

fn first_body_format() -> u32 {
    1
}

/// The run's identity: the input and what shapes the requests and where
/// they go.
fn identity(
    input_sha256: &str,
    endpoint: &str,
    config: &Config,
    client_id: &str,
    sheet: &str,
) -> String {
    let mut shape = serde_json::json!({
        "input_sha256": input_sha256,
        "endpoint": endpoint,
        "client_id": client_id,
        "sheet": sheet,
        "columns": config.columns,
        "defaults": config.defaults,
        "amount_unit": format!("{:?}", config.input.amount_unit),
    });
    // Only when set, so that runs from before the key keep their identity.
    if config.input.header_row > 0 {
        shape["header_row"] = config.input.header_row.into();
    }
    hex(&Sha256::digest(shape.to_string().as_bytes()))
}

fn refuse_input_inside_out(input: &Path, out: &Path) -> anyhow::Result<()> {
    let input =
        std::fs::canonicalize(input).with_context(|| format!("cannot read {}", input.display()))?;
    let out = std::fs::canonicalize(out)?;
    if input.starts_with(&out) {
        bail!(
            "--out {} contains the input {}; write each run to a folder of its own, e.g. \
             declare-batch run {} --out {}-1",
            out.display(),
            input.display(),
            input.display(),
            out.display()
        );
    }
    Ok(())
}

/// Moves a previous run's outputs to OUT/.previous-<timestamp>/.
fn move_aside(out: &Path) -> anyhow::Result<()> {
    let aside = out.join(format!(
        ".previous-{}",
        Local::now().format("%Y%m%dT%H%M%S%.3f")
    ));
    for name in OUTPUTS {
        let path = out.join(name);
        if path.exists() {
            std::fs::create_dir_all(&aside)?;
            std::fs::rename(&path, aside.join(name))?;
        }
    }
    Ok(())
}

fn result_row(settled: &Settled) -> ResultRow {
    let request = &settled.job.request;
    let mut row = ResultRow {
        row: settled.job.row.line,
        payment_request_id: request.payment_request_id.clone(),
        customs_declaration_request_id: request.customs_declaration_request_id.clone(),
        reference_order_id: request.reference_order_id.clone().unwrap_or_default(),
        customs_code: request.customs.customs_code.clone(),
        declaration_amount: request.declaration_amount.value.clone(),
        attempts: settled.job.sent,
        ..ResultRow::default()
    };
    let response = match &settled.outcome {
        None => {
            row.result_status = "U".into();
            row.result_code = NOT_SENT.into();
            row.result_message = "not sent: the run stopped before this row".into();
            None
        }
        Some(outcome) => {
            row.result_status = outcome.status().into();
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

/// Where the run declares to.
enum Target {
    Remote(Box<ApiSettings>),
    /// The embedded sandbox, with the payments it knows.
    Embedded(Payments),
}

/// Everything the outputs need, shared by the validation thread (rejected
/// rows) and the engine (results).
struct Outputs {
    rejected: RejectedWriter,
    results: ResultsWriter,
    /// Set when a write to results.csv failed: nothing more is written to
    /// it (the next run rebuilds it from the journal).
    results_failed: bool,
    retry: Vec<OwnedRow>,
    problems: ProblemTally,
    codes: BTreeMap<String, u64>,
    status: StatusCounts,
}

impl Outputs {
    /// Records one row's result in results.csv and the counts.
    fn record(&mut self, row: &ResultRow) -> std::io::Result<()> {
        *self.codes.entry(row.result_code.clone()).or_default() += 1;
        match row.result_status.as_str() {
            "S" => self.status.success += 1,
            "F" => self.status.failed += 1,
            _ => self.status.unknown += 1,
        }
        if self.results_failed {
            return Ok(());
        }
        let written = self.results.write(row);
        self.results_failed = written.is_err();
        written
    }
}

/// The first output that could not be written; it stops the run.
#[derive(Default)]
struct WriteFailures {
    first: Mutex<Option<String>>,
}

impl WriteFailures {
    /// Records that `file` cannot be written; returns the stop reason.
    fn record(&self, file: &Path, error: &std::io::Error) -> StopReason {
        let what = format!("{}: {error}", file.display());
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            say!("declare-batch: cannot write {what}; sending no more requests");
            *first = Some(what.clone());
        }
        StopReason::WriteFailed(first.clone().unwrap_or(what))
    }

    fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The raw answer an outcome came from, for the journal.
fn raw_answer(outcome: Option<&DeclareOutcome>) -> &str {
    match outcome {
        Some(DeclareOutcome::Success(response)) | Some(DeclareOutcome::Failed { response, .. }) => {
            &response.raw
        }
        _ => "",
    }
}

impl RunOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let started_at = Local::now();
        let clock = Instant::now();
        let args = &self.input;
        let config = args.load_config()?;
        let embedded = args.config.is_none() || config.api.endpoint.as_deref() == Some("sandbox");
        let target = if embedded {
            let payments = match &config.sandbox.payments {
                Some(path) => Payments::load(path).map_err(anyhow::Error::msg)?,
                // The samples, and the input's own payments taken as paid.
                None => Payments::read(SAMPLE_PAYMENTS.as_bytes())
                    .map_err(anyhow::Error::msg)?
                    .taking_unknown_as_paid(),
            };
            Target::Embedded(payments)
        } else {
            Target::Remote(Box::new(ApiSettings::from_config(&config)?))
        };
        let response_signatures = match &target {
            // The embedded sandbox's answers are always verified.
            Target::Embedded(_) => ResponseVerification::Verified,
            Target::Remote(api) => {
                let verification = crate::client::verification(&config, &api.base)?;
                if let Some(warning) = verification.warning(api.base.as_str()) {
                    tracing::warn!("{warning}");
                }
                verification
            }
        };
        let run_settings = RunSettings {
            rate_per_sec: self.rate.unwrap_or(config.run.rate_per_sec),
            burst: config.run.burst,
            concurrency: self
                .concurrency
                .map_or(config.run.concurrency, usize::from)
                .max(1),
            max_attempts: config.run.max_attempts.max(1),
            backoff_base: Duration::from_millis(config.run.backoff_base_ms),
            breaker_threshold: 20,
        };

        let out = args.out.as_path();
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
        refuse_input_inside_out(&args.input, out)?;
        let _lock = OutLock::take(out, "run")?;

        let sheet = args.sheet(&config);
        let (mut source, rules) = args.open(&config)?;
        let input_sha256 = hex(&source.sha256()?);
        let (endpoint_name, client_id) = match &target {
            Target::Remote(api) => (api.base.to_string(), api.client_id.clone()),
            Target::Embedded(_) => ("embedded-sandbox".to_owned(), "SANDBOX_CLIENT".to_owned()),
        };
        let run_identity = identity(&input_sha256, &endpoint_name, &config, &client_id, &sheet);
        let record_path = out.join("run.json");
        if let Ok(text) = std::fs::read_to_string(&record_path) {
            let previous: Option<RunRecord> = serde_json::from_str(&text).ok();
            let same = previous
                .as_ref()
                .is_some_and(|p| p.identity == run_identity);
            if let Some(previous) = previous
                .as_ref()
                .filter(|p| same && p.body_format != BODY_FORMAT_VERSION)
                && !self.fresh
            {
                bail!(
                    "{} holds a run whose requests were built by another version of \
                     declare-batch (request format {}, this one builds {}): resuming it would \
                     send rows in doubt with other bytes under the same request IDs. Finish it \
                     with the version that started it, or use --fresh to start over",
                    out.display(),
                    previous.body_format,
                    BODY_FORMAT_VERSION
                );
            }
            if !same && !self.fresh {
                bail!(
                    "{} holds another run (other input, endpoint, client ID, sheet, [columns], \
                     [defaults] or amount_unit); use another --out folder, or --fresh to move \
                     its outputs aside and start over",
                    out.display()
                );
            }
        }
        if self.fresh {
            move_aside(out)?;
        }
        let journal_path = out.join("journal.jsonl");
        let results_path = out.join("results.csv.partial");
        let (journal, replay) = Journal::open(&journal_path)?;
        if replay.finals() > 0 && !quiet {
            say!(
                "declare-batch: resuming the run in {}: {} rows already have a final answer and \
                 are not sent again",
                out.display(),
                replay.finals()
            );
        }
        let journal = Arc::new(Mutex::new(journal));
        write_json(
            &record_path,
            &RunRecord {
                identity: run_identity,
                input: args.input.display().to_string(),
                body_format: BODY_FORMAT_VERSION,
            },
        )?;

        let headers = source.headers().to_vec();
        let xlsx_input = source.format() == crate::input::InputFormat::Xlsx;
        let (sheet_read, header_row) = (source.sheet().map(str::to_owned), source.header_line());
        let outputs = Mutex::new(Outputs {
            rejected: RejectedWriter::create(
                &out.join("rejected.csv"),
                &headers,
                rules.field_columns(),
                config.output.language,
            )?,
            results: ResultsWriter::create(out)?,
            results_failed: false,
            retry: Vec::new(),
            problems: ProblemTally::default(),
            codes: BTreeMap::new(),
            status: StatusCounts::default(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let (running_sandbox, api) = runtime.block_on(async {
            match target {
                Target::Remote(api) => anyhow::Ok((None, *api)),
                Target::Embedded(payments) => {
                    let (sandbox, api) = embedded_sandbox(payments, &config).await?;
                    if !quiet {
                        say!(
                            "declare-batch: declaring to the embedded sandbox at {} — nothing is \
                             declared for real (give --config to declare to Alipay+)",
                            sandbox.endpoint()
                        );
                    }
                    Ok((Some(sandbox), api))
                }
            }
        })?;
        let client = DeclareClient::new(api)?;
        let progress = Arc::new(Mutex::new(Progress::default()));
        progress.lock().expect("not poisoned").rows.above_header = source.rows_above_header();
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::channel::<Job>(run_settings.concurrency * 4);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel::<Option<StopReason>>(None);
        let write_failures = Arc::new(WriteFailures::default());
        let rejected_path = out.join("rejected.csv");

        let (validation, stop) = std::thread::scope(|scope| {
            let validation = scope.spawn(|| {
                let workers = std::thread::available_parallelism().map_or(1, usize::from);
                let result = validate_stream(
                    &mut source,
                    &rules,
                    &mut CrossRowIndex::default(),
                    workers,
                    |outcome| -> anyhow::Result<()> {
                        progress.lock().expect("not poisoned").rows.read += 1;
                        match outcome.verdict {
                            Verdict::Valid(valid) => {
                                {
                                    let mut progress = progress.lock().expect("not poisoned");
                                    progress.rows.valid += 1;
                                    progress.rows.long_term_id_cards +=
                                        u64::from(valid.long_term_expiry);
                                }
                                let line = outcome.row.line;
                                if let Some(result) = replay
                                    .final_result(line)
                                    .context("cannot read the journal")?
                                {
                                    progress.lock().expect("not poisoned").replayed += 1;
                                    let recorded =
                                        outputs.lock().expect("not poisoned").record(&result);
                                    if let Err(error) = recorded {
                                        stop_tx.send_replace(Some(
                                            write_failures.record(&results_path, &error),
                                        ));
                                    }
                                    return Ok(());
                                }
                                let valid = *valid;
                                let mut job = Job::new(valid.request, valid.body, outcome.row);
                                job.sent = replay.attempts.get(&line).copied().unwrap_or(0);
                                // The engine drains every row, even after a stop.
                                jobs_tx
                                    .blocking_send(job)
                                    .map_err(|_| anyhow::anyhow!("the run engine stopped"))?;
                            }
                            Verdict::Totals => {
                                let mut progress = progress.lock().expect("not poisoned");
                                progress.rows.add_totals_row(outcome.row.line);
                            }
                            Verdict::Rejected(problems) => {
                                progress.lock().expect("not poisoned").rows.rejected += 1;
                                let mut out = outputs.lock().expect("not poisoned");
                                out.problems.add(&problems);
                                if let Err(error) =
                                    out.rejected.write(&outcome.row.as_row(), &problems)
                                {
                                    stop_tx.send_replace(Some(
                                        write_failures.record(&rejected_path, &error),
                                    ));
                                    return Err(error).with_context(|| {
                                        format!("cannot write {}", rejected_path.display())
                                    });
                                }
                            }
                        }
                        Ok(())
                    },
                );
                drop(jobs_tx);
                progress.lock().expect("not poisoned").rows.blank = source.blank_rows();
                result
            });
            let progress_line = Arc::clone(&progress);
            let stop = runtime.block_on(async {
                let reporter = (!quiet).then(|| tokio::spawn(report_progress(progress_line)));
                let interrupt_tx = stop_tx.clone();
                let interrupts = tokio::spawn(async move {
                    super::interrupt_signal().await;
                    interrupt_tx.send_if_modified(|stop| {
                        stop.get_or_insert(StopReason::Interrupted);
                        true
                    });
                    say!(
                        "declare-batch: interrupted: no new requests; waiting for those in \
                         flight and writing every output (interrupt again to exit at once)"
                    );
                    super::interrupt_signal().await;
                    say!(
                        "declare-batch: interrupted again: exiting now; run the same command \
                         again to resume from the journal"
                    );
                    std::process::exit(130);
                });
                let attempt_journal = Arc::clone(&journal);
                let (attempt_failures, attempt_stop, attempt_path) = (
                    Arc::clone(&write_failures),
                    stop_tx.clone(),
                    journal_path.clone(),
                );
                let before_send: BeforeSend = Arc::new(move |job: &Job| {
                    let mut journal = attempt_journal.lock().unwrap_or_else(|e| e.into_inner());
                    match journal.attempt(job.row.line, &job.request.customs_declaration_request_id)
                    {
                        Ok(()) => true,
                        Err(error) => {
                            // Never send what the journal does not know of.
                            attempt_stop
                                .send_replace(Some(attempt_failures.record(&attempt_path, &error)));
                            false
                        }
                    }
                });
                let stop = declare_all(
                    &run_settings,
                    client,
                    before_send,
                    stop_rx,
                    jobs_rx,
                    |settled, tally| {
                        progress.lock().expect("not poisoned").tally = tally.clone();
                        let row = result_row(&settled);
                        let answer = raw_answer(settled.outcome.as_ref());
                        let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
                        if settled.provisional {
                            if let Err(error) = journal.provisional(&row, answer) {
                                stop_tx.send_replace(Some(
                                    write_failures.record(&journal_path, &error),
                                ));
                            }
                            return;
                        }
                        // Each final answer is in the journal before its row
                        // is written out.
                        if row.result_status != "U"
                            && let Err(error) = journal.settled(&row, answer)
                        {
                            stop_tx
                                .send_replace(Some(write_failures.record(&journal_path, &error)));
                        }
                        drop(journal);
                        let mut out = outputs.lock().expect("not poisoned");
                        if let Err(error) = out.record(&row) {
                            stop_tx
                                .send_replace(Some(write_failures.record(&results_path, &error)));
                        }
                        if row.result_status == "U" {
                            out.retry.push(settled.job.row);
                        }
                    },
                )
                .await;
                if let Some(reporter) = reporter {
                    reporter.abort();
                }
                // From here a second interrupt should not cut the output files short.
                interrupts.abort();
                stop
            });
            (
                validation
                    .join()
                    .expect("the validation thread does not panic"),
                stop,
            )
        });
        if let Some(sandbox) = running_sandbox {
            runtime.block_on(sandbox.stop());
        }

        // Records what it still can: every output is attempted even after
        // one fails, and the first failure decides the message.
        let fail = |file: &Path, error: std::io::Error| {
            write_failures.record(file, &error);
        };
        if let Err(error) = journal.lock().unwrap_or_else(|e| e.into_inner()).sync() {
            fail(&journal_path, error);
        }
        let outputs = outputs.into_inner().unwrap_or_else(|e| e.into_inner());
        let Progress {
            tally,
            rows: counts,
            replayed,
        } = std::mem::take(&mut *progress.lock().unwrap_or_else(|e| e.into_inner()));
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
        let exit_code = match (&stop, &validation) {
            (_, Err(_))
            | (
                Some(
                    StopReason::Configuration(_)
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
            input: args.input.display().to_string(),
            input_sha256,
            endpoint: endpoint_name,
            response_signatures,
            sheet: sheet_read,
            header_row,
            rows: counts,
            this_invocation: StatusCounts {
                success: tally.success,
                failed: tally.failed,
                unknown: tally.unknown,
            },
            replayed_from_journal: replayed,
            results: outputs.status,
            codes: outputs.codes,
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
        if !quiet {
            print_summary(&summary, out, config.output.language);
        }
        validation?;
        if let Some(what) = write_failures.first() {
            bail!(
                "cannot write {what}; the run stopped sending at once and wrote what it still \
                 could. Make room (or fix the folder's permissions) and run the same command \
                 again: it resumes from the journal, sending again at most the requests that \
                 were in flight"
            );
        }
        match &stop {
            Some(StopReason::Configuration(code)) => bail!(
                "the API answered {code}, a configuration problem: check [api] client_id, \
                 private_key, key_version and endpoint (and the public key registered with \
                 Alipay+); the unsent rows are in {}",
                retry_path.display()
            ),
            Some(reason @ StopReason::RequestRejected(_)) => bail!(
                "{}. Check [api] endpoint (its path), key_version and client_id; the rows are \
                 left unknown in {} and are sent again by the same command once it is fixed",
                reason.describe(),
                retry_path.display()
            ),
            _ => {}
        }
        if exit_code == exit::UNFINISHED {
            // Printed even with --quiet: cron mail must say what to do.
            say!(
                "declare-batch: {} rows are not settled{}; run the same command again to \
                 resume ({}), or re-feed them: declare-batch run {} --out {}-retry-1",
                summary.results.unknown,
                stop.as_ref()
                    .map(|reason| format!(" ({})", reason.describe()))
                    .unwrap_or_default(),
                command_line(),
                retry_path.display(),
                out.display()
            );
        }
        Ok(exit_code)
    }
}

/// This process's command line, quoted for a shell where needed.
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_./=:@,+".contains(c));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts the embedded sandbox with fresh keys; returns it and the client
/// settings that reach it.
async fn embedded_sandbox(
    payments: Payments,
    config: &Config,
) -> anyhow::Result<(RunningSandbox, ApiSettings)> {
    let (client_key, sandbox_key) =
        tokio::task::spawn_blocking(|| (generate_key_pair(), generate_key_pair()))
            .await
            .context("key generation")?;
    let settings = SandboxSettings::new(
        MessageVerifier::new(client_key.as_public_key())?,
        MessageSigner::new(&sandbox_key, "1")?,
        payments,
    );
    let sandbox = Arc::new(Sandbox::new(settings));
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let running = RunningSandbox::start(sandbox, addr)
        .await
        .context("cannot start the embedded sandbox")?;
    let api = ApiSettings {
        base: parse_endpoint(&running.endpoint())?,
        client_id: "SANDBOX_CLIENT".to_owned(),
        signer: MessageSigner::new(&client_key, "1")?,
        verifier: Some(MessageVerifier::new(sandbox_key.as_public_key())?),
        timeout: Duration::from_millis(config.api.timeout_ms),
    };
    Ok((running, api))
}

/// What the progress display shows.
#[derive(Debug, Default, Clone)]
struct Progress {
    tally: Tally,
    /// Rows read so far; the valid ones are the rows to settle.
    rows: RowCounts,
    /// Valid rows settled from the journal.
    replayed: u64,
}

/// On a terminal, a progress bar; without one (cron), a line every 10 s.
async fn report_progress(progress: Arc<Mutex<Progress>>) {
    use std::io::IsTerminal;
    let started = Instant::now();
    let snapshot = || progress.lock().expect("not poisoned").clone();
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {msg}  eta {eta}")
                .expect("a valid template"),
        );
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        loop {
            ticks.tick().await;
            let now = snapshot();
            let rate = now.tally.requests as f64 / started.elapsed().as_secs_f64().max(0.001);
            bar.set_length(now.rows.valid);
            bar.set_position(now.tally.settled + now.replayed);
            bar.set_message(format!(
                "S {} F {} U {}  {rate:.1} req/s",
                now.tally.success, now.tally.failed, now.tally.unknown
            ));
        }
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = snapshot();
        let rate = now.tally.requests as f64 / started.elapsed().as_secs_f64().max(0.001);
        say!(
            "declare-batch: {} of {} valid rows settled so far (S {}, F {}, U {}; {} from the \
             journal), {rate:.1} requests/s",
            now.tally.settled + now.replayed,
            now.rows.valid,
            now.tally.success,
            now.tally.failed,
            now.tally.unknown,
            now.replayed
        );
    }
}

/// The end-of-run table on stdout; a closed stdout loses it silently.
fn print_summary(summary: &RunSummary, out: &Path, language: Language) {
    let _ = write_summary(&mut std::io::stdout().lock(), summary, out, language);
}

fn write_summary(
    stdout: &mut impl Write,
    summary: &RunSummary,
    out: &Path,
    language: Language,
) -> std::io::Result<()> {
    writeln!(stdout, "{}: {}", summary.input, summary.rows)?;
    write_problem_table(stdout, &summary.rejected_by, language)?;
    writeln!(
        stdout,
        "declared to {}: S {}, F {}, U {} ({} requests, {:.1}/s, {:.1} s)",
        summary.endpoint,
        summary.results.success,
        summary.results.failed,
        summary.results.unknown,
        summary.requests_sent,
        summary.achieved_rate_per_sec,
        summary.duration_ms as f64 / 1000.0
    )?;
    for (code, count) in &summary.codes {
        writeln!(stdout, "  {count:>7}  {code}")?;
    }
    if let Some(stopped) = &summary.stopped {
        writeln!(stdout, "stopped early: {stopped}")?;
    }
    writeln!(
        stdout,
        "results: {}  rejected: {}  retry: {}",
        out.join("results.csv").display(),
        out.join("rejected.csv").display(),
        out.join("retry.csv").display()
    )
}
