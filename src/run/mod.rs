//! A batch run as a library, so that the command line and the web page
//! drive the same thing. [`RunPlan::prepare`] does everything that can fail
//! before a request is sent: the config's target, the out folder (lock,
//! identity, `--fresh`), the input up to its header, the journal.
//! [`execute`] then validates the rows on a thread of their own, declares
//! the valid ones through the engine (`crate::declare`), journals every
//! attempt and answer, and writes every output. It is async, stops sending
//! when its cancellation token fires, and publishes a [`Progress`] snapshot
//! as rows settle; what it came to is a [`RunReport`].

mod admission;
mod close;
mod embedded;
pub mod events;
pub mod folder;
pub mod inquire;
pub mod inquire_ledger;
pub mod metrics;
mod outputs;
mod sink;
mod summary;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, anyhow};
use chrono::Local;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::client::{DeclareClient, ResponseVerification};
use crate::declare::{
    BeforeSend, Job, Journal, OutageNotice, Replay, StopReason, Tally, declare_all,
};
use crate::input::{InputFormat, RowSource};
use crate::ledger::{Ledger, LedgerLease};
use crate::outcome::StatusCounts;
use crate::outdir::OutLock;
use crate::protocol::BODY_FORMAT_VERSION;
use crate::report::{RejectedWriter, ResultsWriter, RowCounts, hex, write_json};
use crate::sandbox::RunningSandbox;
use crate::settings::{InputSettings, Settings};
use crate::validate::{ColumnMap, RowRules};
use admission::Admission;
use close::{Closing, InputLayout};
use sink::{Sink, SinkPaths};

pub use embedded::{Target, start_embedded_sandbox};
pub use events::{Events, RunEvent};
pub use folder::RunRecord;
pub use outputs::{Outputs, raw_answer, result_row};
pub use summary::{RunOutcome, RunReport, RunSummary};

/// What to run: the input, the out folder and what the command line asks
/// of this run beyond its settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    pub fresh: bool,
    /// How long to wait for another run holding the ledger's scope.
    pub wait: std::time::Duration,
    /// `--resend-failed`: send rows whose identical request the ledger
    /// holds as F.
    pub resend_failed: bool,
    /// `--resolve-unknown`: before finishing, inquire the rows still U and
    /// settle those Alipay+ knows.
    pub resolve_unknown: bool,
    /// `results.xlsx` and `retry.xlsx` whatever the input (the page offers
    /// them for every run); otherwise for an XLSX input only.
    pub workbooks: bool,
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
    _lease: LedgerLease,
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
            folder::move_aside(out, matches!(target, Target::Embedded(..)))?;
        }
        let ledger_path = settings.ledger.for_run(settings.endpoint()?, out);
        // One run per ledger scope: taken before the ledger is read.
        let lease = LedgerLease::take(
            &ledger_path,
            &endpoint,
            &client_id,
            "run",
            out,
            options.wait,
        )?;
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
            _lease: lease,
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
    /// Corrections waiting for their retransmission (U, not sent).
    pub waiting: u64,
    /// Rows settled (by the engine or from the journal) whose answer the
    /// ledger could not record, by the status answered: written out U.
    pub unrecorded: StatusCounts,
    /// The embedded sandbox's address, once it listens.
    pub sandbox_endpoint: Option<String>,
    /// The endpoint stopped answering at this time and the run is waiting
    /// for it, sending nothing but probes.
    pub outage_since: Option<chrono::DateTime<Local>>,
    /// Valid rows written to `results.csv` so far, by status: the whole
    /// run's, answers from the journal and the ledger included.
    pub written: StatusCounts,
    /// When sending began: rates and the time left are measured from it.
    pub declaring_since: Option<Instant>,
}

impl Progress {
    /// Valid rows settled so far, this invocation's and the journal's.
    pub fn settled(&self) -> u64 {
        self.tally.settled.total() + self.replayed + self.from_ledger + self.waiting
    }
}

/// Runs a prepared plan to its end: every valid row settled (or, after a
/// cancel or a stop, left unknown and in `retry.csv`) and every output
/// written. Rows flow through three stages: admission (read, checked,
/// decided against the journal and the ledger) on a thread of its own, the
/// sending pool (`declare_all`), and the one sink that writes everything;
/// then the close writes the files of the whole run.
pub async fn execute(
    plan: RunPlan,
    cancel: CancellationToken,
    progress: Arc<watch::Sender<Progress>>,
    events: Events,
) -> anyhow::Result<RunReport> {
    let RunPlan {
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
        ledger,
        started_at,
        clock,
        _lock,
        _lease,
    } = plan;
    let out = options.out.clone();
    if replay.finals() > 0 {
        events(RunEvent::Resuming {
            out: out.clone(),
            final_rows: replay.finals(),
        });
    }
    let layout = InputLayout {
        headers: source.headers().to_vec(),
        xlsx: source.format() == InputFormat::Xlsx,
        sheet: source.sheet().map(str::to_owned),
        header_row: source.header_line(),
    };
    let outputs = Outputs::new(
        RejectedWriter::create(
            &out.join("rejected.csv"),
            &layout.headers,
            rules.field_columns(),
            settings.language,
        )?,
        ResultsWriter::create(&out)?,
    );
    let paths = SinkPaths {
        journal: out.join("journal.jsonl"),
        results: out.join("results.csv.partial"),
        rejected: out.join("rejected.csv"),
        ledger: ledger.path().to_owned(),
    };
    let sink = Arc::new(Sink::new(
        journal,
        ledger.writer()?,
        outputs,
        Arc::clone(&progress),
        Arc::clone(&events),
        paths,
    ));
    let (sandbox, client) = connect(target, &settings, &progress, &events).await?;
    sink.progress(|p| {
        p.phase = Phase::Declaring;
        p.rows.above_header = source.rows_above_header();
    });
    sink.progress(|p| p.declaring_since = Some(Instant::now()));
    let (jobs_tx, jobs_rx) = tokio::sync::mpsc::channel::<Job>(settings.run.concurrency * 4);
    let stop_signal = sink.stop_signal();
    let admission = Admission {
        rules,
        replay,
        ledger: Arc::clone(&ledger),
        retransmit_wait: settings.retransmit_wait,
        resend_failed: options.resend_failed,
        language: settings.language,
        ledger_broken: AtomicBool::new(false),
    }
    .spawn(source, Arc::clone(&sink), jobs_tx)?;
    let interrupted = {
        let sink = Arc::clone(&sink);
        tokio::spawn(async move {
            cancel.cancelled().await;
            sink.stop(StopReason::Interrupted);
        })
    };
    let before_send: BeforeSend = {
        let sink = Arc::clone(&sink);
        Arc::new(move |job: &Job| sink.before_send(job))
    };
    let settle = {
        let sink = Arc::clone(&sink);
        move |settled, tally: &Tally| sink.settle(settled, tally)
    };
    let on_outage = {
        let sink = Arc::clone(&sink);
        let events = Arc::clone(&events);
        move |notice: OutageNotice| {
            let mut since = None;
            sink.progress(|p| {
                p.outage_since = match &notice {
                    OutageNotice::Ended { .. } => None,
                    OutageNotice::Began { .. } | OutageNotice::ProbeFailed { .. } => {
                        Some(p.outage_since.unwrap_or_else(Local::now))
                    }
                };
                since = p.outage_since;
            });
            events(RunEvent::Outage { notice, since });
        }
    };
    let (stop, timing) = declare_all(
        &settings.run,
        client.clone(),
        before_send,
        stop_signal,
        jobs_rx,
        settle,
        on_outage,
    )
    .await;
    // Awaited: an aborted task drops what it holds only once it ends.
    interrupted.abort();
    let _ = interrupted.await;
    let admitted = tokio::task::spawn_blocking(move || admission.join())
        .await
        .context("the validation thread")?
        .unwrap_or_else(|_| Err(anyhow!("the validation thread panicked")));
    let drained = Arc::try_unwrap(sink)
        .map_err(|_| anyhow!("the run's sink is still in use"))?
        .drain()?;
    progress.send_modify(|p| p.phase = Phase::WritingOutputs);
    let closing = Closing {
        out,
        input: options.input.display().to_string(),
        input_sha256,
        endpoint,
        response_signatures,
        layout,
        settings,
        resolve_unknown: options.resolve_unknown,
        workbooks: options.workbooks,
        ledger,
        client,
        sandbox,
        started_at,
        clock,
        events,
        progress,
    };
    Ok(closing.close(drained, admitted, stop, timing).await)
}

/// The client of the run's target; for the embedded sandbox, the sandbox
/// started first.
async fn connect(
    target: Target,
    settings: &Settings,
    progress: &watch::Sender<Progress>,
    events: &Events,
) -> anyhow::Result<(Option<RunningSandbox>, DeclareClient)> {
    let (sandbox, api) = match target {
        Target::Remote(api) => (None, *api),
        Target::Embedded(payments, memory) => {
            let (sandbox, api) =
                start_embedded_sandbox(payments, memory, settings.api.timeout).await?;
            events(RunEvent::EmbeddedSandbox {
                endpoint: sandbox.endpoint(),
            });
            progress.send_modify(|p| p.sandbox_endpoint = Some(sandbox.endpoint()));
            (Some(sandbox), api)
        }
    };
    Ok((sandbox, DeclareClient::new(api)?))
}
