//! The command line: one file per subcommand, each a clap `*Opts` struct
//! with an `exec` that returns the process exit code. `main.rs` only parses,
//! sets up logging and maps a fatal error to exit code 1.

pub mod init;
pub mod inquire;
pub mod keygen;
pub mod ledger;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::{Overrides, Settings};

/// The exit codes, shown by every `--help`.
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  run: every row declared S; validate: every row valid (an empty input too)
  1  fatal: bad config, unreadable input, bad key, output folder locked or of
     another run, an output that cannot be written, the first 20 answers all
     PARAM_ILLEGAL, or a configuration-level answer (INVALID_SIGNATURE, ...)
  2  wrong command-line usage
  3  finished; some rows failed (F) or were rejected, none is left unknown
  4  finished, interrupted, or stopped because the endpoint kept failing;
     rows to send again are in retry.csv (the same command resumes)";

/// Declares AlipayCN payments to Chinese customs from CSV/XLSX order exports.
#[derive(Debug, Parser)]
#[command(
    name = "declare-batch",
    version,
    about,
    propagate_version = true,
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// Print only errors: no summary, no warnings.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read and check every row; send nothing; write rejected.csv and summary.json.
    #[command(after_help = EXIT_CODES_HELP)]
    Validate(validate::ValidateOpts),
    /// Validate, then declare every valid row; write results, rejected, retry and summary.
    #[command(after_help = EXIT_CODES_HELP)]
    Run(run::RunOpts),
    /// Serve a local stand-in for the Alipay+ declare API (nothing is declared for real).
    #[command(after_help = EXIT_CODES_HELP)]
    Sandbox(sandbox::SandboxOpts),
    /// Write an RSA-2048 key pair: DIR/NAME_private.pem and DIR/NAME_public.pem.
    #[command(after_help = EXIT_CODES_HELP)]
    Keygen(keygen::KeygenOpts),
    /// Write a commented config for an export: its header row, columns and amount unit guessed.
    #[command(after_help = EXIT_CODES_HELP)]
    Init(init::InitOpts),
    /// Ask Alipay+ about a run's rows: customs outcomes into customs.csv, unknown rows settled.
    #[command(after_help = EXIT_CODES_HELP)]
    Inquire(inquire::InquireOpts),
    /// The ledger of every declaration across runs.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Serve the web page: upload an export, see what is wrong, declare, follow, download.
    #[command(after_help = EXIT_CODES_HELP)]
    Serve(serve::ServeOpts),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn exec(self) -> anyhow::Result<u8> {
        match self.command {
            Command::Validate(opts) => opts.exec(self.quiet),
            Command::Run(opts) => opts.exec(self.quiet),
            Command::Sandbox(opts) => opts.exec(self.quiet),
            Command::Keygen(opts) => opts.exec(self.quiet),
            Command::Init(opts) => opts.exec(self.quiet),
            Command::Inquire(opts) => opts.exec(self.quiet),
            Command::Ledger(command) => command.exec(self.quiet),
            Command::Serve(opts) => opts.exec(self.quiet),
        }
    }
}

/// Writes one line to stderr without ever panicking: cron may have closed
/// it, and a lost message must not cost the run. Without a terminal the
/// line starts with a timestamp, like every log line.
pub fn say_line(args: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal, Write};
    let mut stderr = std::io::stderr().lock();
    let _ = if stderr.is_terminal() {
        writeln!(stderr, "{args}")
    } else {
        writeln!(stderr, "{} {args}", log_timestamp())
    };
}

/// The timestamp that starts a log line written without a terminal.
pub fn log_timestamp() -> String {
    chrono::Local::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// `say!("...", args)`: a line on stderr that never panics (see `say_line`).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cmd::say_line(format_args!($($arg)*))
    };
}

/// The async runtime a command runs its work on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
pub async fn interrupt_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The arguments `validate` and `run` share: what to read, how, and where
/// the outputs go.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// The order export: a .csv or .xlsx file.
    pub input: PathBuf,
    /// Config file (TOML). Without one the defaults apply, and `run`
    /// declares to an embedded sandbox.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder for the outputs (created if missing).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// XLSX sheet to read [default: [input] sheet of the config, else the
    /// first sheet].
    #[arg(long)]
    pub sheet: Option<String>,
}

impl InputArgs {
    /// The settings of the config file (or the defaults without one) under
    /// `--sheet` and the command's own overrides.
    pub fn settings(&self, overrides: Overrides) -> anyhow::Result<Settings> {
        let overrides = Overrides {
            sheet: self.sheet.clone(),
            ..overrides
        };
        Ok(Settings::load(self.config.as_deref(), overrides)?)
    }
}
