//! `declare-batch run INPUT`: validates every row, declares the valid ones
//! through the declare API at the configured rate, and leaves
//! `results.csv`, `rejected.csv`, `retry.csv` and `summary.json`. Without a
//! config (or with `endpoint = "sandbox"`) it declares to a sandbox started
//! in-process, so that it can be tried on a fresh machine.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::i18n::Language;
use crate::report::write_problem_table;
use crate::run::{Phase, Progress, RunEvent, RunOptions, RunOutcome, RunPlan, RunSummary, execute};
use crate::say;
use crate::settings::Overrides;

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
    /// The ledger of every declaration across runs (SQLite) [default:
    /// [ledger] path of the config, else declare-batch.db beside the config
    /// file; with the embedded sandbox, inside OUT].
    #[arg(long)]
    pub ledger: Option<std::path::PathBuf>,
    /// Send again rows whose identical request the ledger holds as F
    /// (without it they are settled F from the ledger, not sent).
    #[arg(long)]
    pub resend_failed: bool,
    /// Before finishing, ask Alipay+ (inquireDeclarationRequests) about the
    /// rows still unknown and settle those it holds as declared.
    #[arg(long)]
    pub resolve_unknown: bool,
    /// Seconds to wait for another run (or inquire) holding the same
    /// ledger, endpoint and client ID; 0: stop at once, naming it.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
    /// Seconds to wait for an endpoint that stopped answering (probing it
    /// with one request at a time) before the run stops with exit 4; 0:
    /// stop at once [default: [run] outage_wait_secs of the config, else 600].
    #[arg(long, value_name = "SECS")]
    pub outage_wait: Option<u64>,
    /// Validate and ask the ledger, send nothing: OUT/plan.csv says what a
    /// run would do with each valid row (send, from the ledger, retransmit,
    /// too early, rejected by the ledger).
    #[arg(long, conflicts_with_all = ["fresh", "resolve_unknown", "wait"])]
    pub dry_run: bool,
    /// A command (run by `sh -c`) once the outputs are written, for alerts:
    /// DECLARE_BATCH_SUMMARY is the path of summary.json, DECLARE_BATCH_EXIT
    /// the exit code, DECLARE_BATCH_OUT the out folder. Its failure is
    /// logged and never changes the exit code.
    #[arg(long, value_name = "CMD")]
    pub on_finish: Option<String>,
}

impl RunOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let settings = self.input.settings(Overrides {
            rate: self.rate,
            concurrency: self.concurrency,
            ledger: self.ledger.clone(),
            outage_wait: self.outage_wait.map(Duration::from_secs),
            ..Overrides::default()
        })?;
        let options = RunOptions {
            input: self.input.input.clone(),
            out: self.input.out.clone(),
            fresh: self.fresh,
            wait: std::time::Duration::from_secs(self.wait),
            resend_failed: self.resend_failed,
            resolve_unknown: self.resolve_unknown,
            workbooks: false,
        };
        let language = settings.language;
        if self.dry_run {
            return dry_run(&self, &settings, quiet);
        }
        let continuations = Continuations::of(&self);
        // The first line of a night's log, even with --quiet.
        if let Ok((endpoint, client_id)) = settings.scope() {
            say!(
                "declare-batch: started input={} endpoint={endpoint} client_id={client_id} out={}",
                self.input.input.display(),
                self.input.out.display()
            );
        }
        let metrics = settings.metrics.clone();
        let plan = match RunPlan::prepare(options, settings) {
            Ok(plan) => plan,
            Err(error) => {
                // A night that cannot start still ends as a night does: the
                // metrics say exit 1, the alert command runs, and the
                // closing line is the last.
                say!("error: {error:#}");
                if let Some(path) = &metrics {
                    let text = crate::run::metrics::render_not_started(exit::FATAL);
                    if let Err(error) = crate::run::metrics::write(path, &text) {
                        say!(
                            "declare-batch: cannot write the metrics file {}: {error}",
                            path.display()
                        );
                    }
                }
                if let Some(command) = &self.on_finish {
                    super::on_finish::run(command, &self.input.out, exit::FATAL);
                }
                say!("{}", closing_line(exit::FATAL, None, &self.input.out));
                return Ok(exit::FATAL);
            }
        };
        let runtime = super::runtime()?;
        let report = runtime.block_on(async {
            let cancel = CancellationToken::new();
            let (progress_tx, progress_rx) = watch::channel(Progress::default());
            let progress_tx = Arc::new(progress_tx);
            let reporter = (!quiet).then(|| tokio::spawn(report_progress(progress_rx.clone())));
            let interrupts = tokio::spawn(handle_interrupts(cancel.clone(), progress_rx));
            let report = execute(
                plan,
                cancel,
                progress_tx,
                Arc::new(move |event| {
                    // A failed write is said even with --quiet: it ends the run.
                    if !quiet
                        || matches!(
                            event,
                            RunEvent::WriteFailed { .. } | RunEvent::MetricsNotWritten { .. }
                        )
                    {
                        say!("declare-batch: {event}");
                    }
                }),
            )
            .await;
            if let Some(reporter) = reporter {
                reporter.abort();
            }
            interrupts.abort();
            report
        })?;
        if !quiet {
            print_summary(&report.summary, &report.out, language);
        }
        let code = exit::of_run(report.outcome.conclusion());
        let retry_path = report.retry_path();
        let closing = closing_line(code, Some(&report.summary), &report.out);
        match report.outcome {
            RunOutcome::Fatal(error) => {
                // Said here, so that the closing line stays the last.
                say!("error: {error:#}");
                if let Some(command) = &self.on_finish {
                    super::on_finish::run(command, &report.out, code);
                }
                say!("{closing}");
                return Ok(code);
            }
            RunOutcome::Unfinished(stop) => {
                // Printed even with --quiet: cron mail must say what to do,
                // each command complete, to run as it is printed.
                say!(
                    "declare-batch: {} rows are not settled{}; to resume, run the same command \
                     again: {}",
                    report.summary.results.unknown,
                    stop.map(|reason| format!(" ({})", reason.describe()))
                        .unwrap_or_default(),
                    continuations.resume
                );
                say!(
                    "declare-batch: or feed them back ({}) into a folder of their own: {}",
                    retry_path.display(),
                    continuations.refeed(&retry_path, &report.out)
                );
                if let Some(resolve) = continuations
                    .resolve
                    .as_ref()
                    .filter(|_| sent_and_unknown(&report.summary))
                {
                    say!(
                        "declare-batch: or first ask Alipay+ which of those it holds \
                         (inquireDeclarationRequests): {resolve}"
                    );
                }
            }
            RunOutcome::AllDeclared | RunOutcome::SomeFailed => {}
        }
        if let Some(command) = &self.on_finish {
            super::on_finish::run(command, &report.out, code);
        }
        say!("{closing}");
        Ok(code)
    }
}

/// `run --dry-run`: the validation, the ledger's answers in `plan.csv`,
/// and one closing line with the counts.
fn dry_run(
    opts: &RunOpts,
    settings: &crate::settings::Settings,
    quiet: bool,
) -> anyhow::Result<u8> {
    use crate::run::validate::{LedgerQuestion, plan_input};
    let out = &opts.input.out;
    let (endpoint, client_id) = settings.scope()?;
    let ledger_path = settings.ledger.for_run(settings.endpoint()?, out);
    // A ledger that does not exist yet is not made by a dry run.
    let ledger = match ledger_path.exists() {
        true => Some(crate::ledger::Ledger::open(
            &ledger_path,
            &endpoint,
            &client_id,
        )?),
        false => None,
    };
    let question = LedgerQuestion {
        ledger,
        retransmit_wait: settings.retransmit_wait,
        resend_failed: opts.resend_failed,
    };
    let summary = plan_input(&opts.input.input, settings, out, question)?;
    let plan = summary.plan.unwrap_or_default();
    if !quiet {
        super::validate::print_summary(&summary, out, settings.language);
        say!(
            "declare-batch: dry run, nothing sent: {} to send, {} to retransmit, {} answered \
             from the ledger, {} corrections too early to send, {} rejected by the ledger; \
             each row's plan: {}",
            plan.send,
            plan.retransmit,
            plan.from_ledger,
            plan.too_early,
            plan.rejected_by_ledger,
            out.join("plan.csv").display()
        );
    }
    say!(
        "declare-batch: dry run finished exit={} send={} retransmit={} from_ledger={} \
         too_early={} rejected={} out={}",
        summary.exit_code,
        plan.send,
        plan.retransmit,
        plan.from_ledger,
        plan.too_early,
        summary.rows.rejected,
        out.display()
    );
    Ok(summary.exit_code)
}

/// The first SIGINT or SIGTERM stops sending; a second one while requests
/// are still going exits at once (the journal resumes the run). Once the
/// outputs are being written, a second one waits for them.
async fn handle_interrupts(cancel: CancellationToken, progress: watch::Receiver<Progress>) {
    super::interrupt_signal().await;
    cancel.cancel();
    say!(
        "declare-batch: interrupted: no new requests; waiting for those in flight and writing \
         every output (interrupt again to exit at once)"
    );
    loop {
        super::interrupt_signal().await;
        if progress.borrow().phase == Phase::Declaring {
            say!(
                "declare-batch: interrupted again: exiting now; run the same command again to \
                 resume from the journal"
            );
            std::process::exit(130);
        }
    }
}

/// An argument quoted for a shell where it needs it.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./=:@,+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A command line of `words`, each quoted for a shell where it needs it.
fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|word| shell_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commands an unfinished run prints, each complete and correct.
struct Continuations {
    /// This command again, without `--fresh` (which would start over).
    resume: String,
    /// This command again with `--resolve-unknown`, when it lacks it.
    resolve: Option<String>,
    /// Everything but the input and the out folder that shapes the requests
    /// and where they go: the config, the ledger, the pace, the choices.
    shaping: Vec<String>,
    program: String,
}

impl Continuations {
    fn of(opts: &RunOpts) -> Continuations {
        let args: Vec<String> = std::env::args().collect();
        let resume: Vec<String> = args.iter().filter(|a| *a != "--fresh").cloned().collect();
        let resolve = (!opts.resolve_unknown).then(|| {
            let mut words = resume.clone();
            words.push("--resolve-unknown".to_owned());
            shell_line(&words)
        });
        let mut shaping = Vec::new();
        let mut pair = |flag: &str, value: String| {
            shaping.push(flag.to_owned());
            shaping.push(value);
        };
        if let Some(config) = &opts.input.config {
            pair("--config", config.display().to_string());
        }
        if let Some(ledger) = &opts.ledger {
            pair("--ledger", ledger.display().to_string());
        }
        if let Some(rate) = opts.rate {
            pair("--rate", rate.to_string());
        }
        if let Some(concurrency) = opts.concurrency {
            pair("--concurrency", concurrency.to_string());
        }
        if opts.wait > 0 {
            pair("--wait", opts.wait.to_string());
        }
        if let Some(outage_wait) = opts.outage_wait {
            pair("--outage-wait", outage_wait.to_string());
        }
        // retry.csv has its header on row 1, whatever row the input's was
        // (and whatever [input] header_row says).
        pair("--header-row", "0".to_owned());
        for (flag, set) in [
            ("--resend-failed", opts.resend_failed),
            ("--resolve-unknown", opts.resolve_unknown),
        ] {
            if set {
                shaping.push(flag.to_owned());
            }
        }
        if args.iter().any(|a| a == "--quiet" || a == "-q") {
            shaping.push("--quiet".to_owned());
        }
        Continuations {
            resume: shell_line(&resume),
            resolve,
            shaping,
            program: args
                .first()
                .cloned()
                .unwrap_or_else(|| "declare-batch".to_owned()),
        }
    }

    /// The command that feeds `retry` back into a folder beside `out`: the
    /// first `OUT-retry-N` that does not exist yet (an earlier re-feed may
    /// have taken `-retry-1`).
    fn refeed(&self, retry: &Path, out: &Path) -> String {
        let folder = (1u32..)
            .map(|n| format!("{}-retry-{n}", out.display()))
            .find(|folder| !Path::new(folder).exists())
            .expect("a free name");
        let mut words = vec![
            self.program.clone(),
            "run".to_owned(),
            retry.display().to_string(),
            "--out".to_owned(),
            folder,
        ];
        words.extend(self.shaping.iter().cloned());
        shell_line(&words)
    }
}

/// Whether rows left unknown were sent (an answer may be held by
/// Alipay+), not only left unsent.
fn sent_and_unknown(summary: &RunSummary) -> bool {
    let not_sent = summary
        .codes
        .get(crate::outcome::codes::NOT_SENT)
        .copied()
        .unwrap_or(0)
        + summary.waiting_for_retransmission;
    summary.requests_sent > 0 && summary.results.unknown > not_sent
}

/// On a terminal, a progress bar; without one (cron), a line every 10 s.
async fn report_progress(progress: watch::Receiver<Progress>) {
    use std::io::IsTerminal;
    let started = Instant::now();
    let snapshot = || progress.borrow().clone();
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
            bar.set_position(now.settled());
            let counts = now.tally.settled;
            bar.set_message(match now.outage_since {
                Some(since) => format!(
                    "waiting for the endpoint since {} (Ctrl-C ends the run, exit 4)",
                    since.format("%H:%M:%S")
                ),
                None => format!(
                    "S {} F {} U {}  {rate:.1} req/s",
                    counts.success, counts.failed, counts.unknown
                ),
            });
        }
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = snapshot();
        let rate = now.tally.requests as f64 / started.elapsed().as_secs_f64().max(0.001);
        if let Some(since) = now.outage_since {
            say!(
                "declare-batch: {} of {} valid rows settled so far; waiting for the endpoint \
                 since {} ({} s), sending only probes; Ctrl-C ends the run now (exit 4)",
                now.settled(),
                now.rows.valid,
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                (chrono::Local::now() - since).num_seconds()
            );
            continue;
        }
        say!(
            "declare-batch: {} of {} valid rows settled so far (S {}, F {}, U {}; {} from the \
             journal), {rate:.1} requests/s",
            now.settled(),
            now.rows.valid,
            now.tally.settled.success,
            now.tally.settled.failed,
            now.tally.settled.unknown,
            now.replayed
        );
    }
}

/// The end-of-run table on stdout; a closed stdout loses it silently.
fn print_summary(summary: &RunSummary, out: &Path, language: Language) {
    let _ = write_summary(&mut super::stamped_stdout(), summary, out, language);
}

/// The last line of a run's log, one line to grep in cron mail, printed
/// even with --quiet.
fn closing_line(code: u8, summary: Option<&RunSummary>, out: &Path) -> String {
    let (results, rejected, from_ledger, retransmitted, waiting) =
        summary.map_or_else(Default::default, |summary| {
            (
                summary.results,
                summary.rows.rejected,
                summary.from_ledger,
                summary.retransmitted,
                summary.waiting_for_retransmission,
            )
        });
    format!(
        "declare-batch: finished exit={code} S={} F={} U={} rejected={rejected} \
         from_ledger={from_ledger} retransmitted={retransmitted} waiting={waiting} out={}",
        results.success,
        results.failed,
        results.unknown,
        out.display()
    )
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
    if let Some(inquiry) = &summary.inquiry {
        let statuses: Vec<String> = inquiry
            .by_status
            .iter()
            .map(|(status, count)| format!("{status} {count}"))
            .collect();
        writeln!(
            stdout,
            "inquired about the unknown rows: {} settled as S, {} still unknown; customs: {}; \
             customs results: {}",
            inquiry.settled,
            inquiry.still_unknown,
            if statuses.is_empty() {
                "-".to_owned()
            } else {
                statuses.join(", ")
            },
            inquiry.customs_results_line()
        )?;
    }
    if summary.from_ledger > 0 {
        writeln!(
            stdout,
            "not sent, declared before (the ledger {} holds their answers): {}",
            summary.ledger, summary.from_ledger
        )?;
    }
    if summary.retransmitted > 0 {
        writeln!(
            stdout,
            "corrections sent again under their declared request IDs: {}",
            summary.retransmitted
        )?;
    }
    if summary.waiting_for_retransmission > 0 {
        writeln!(
            stdout,
            "corrections waiting for their retransmission (RETRANSMIT_LATER, in retry.csv): {}",
            summary.waiting_for_retransmission
        )?;
    }
    if !summary.identity_checks.is_empty() {
        let checks: Vec<String> = summary
            .identity_checks
            .iter()
            .map(|(result, count)| format!("{result} {count}"))
            .collect();
        writeln!(stdout, "identity checks: {}", checks.join(", "))?;
        if !summary.identity_not_passed_rows.is_empty() {
            let rows: Vec<String> = summary
                .identity_not_passed_rows
                .iter()
                .take(20)
                .map(u64::to_string)
                .collect();
            let more = summary.identity_not_passed_rows.len().saturating_sub(20);
            writeln!(
                stdout,
                "  not passed in rows {}{}",
                rows.join(", "),
                if more > 0 {
                    format!(" and {more} more (see results.csv, identityCheckResult)")
                } else {
                    String::new()
                }
            )?;
        }
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
    )?;
    writeln!(stdout, "report: {}", out.join("report.html").display())
}
