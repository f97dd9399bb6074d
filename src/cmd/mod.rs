//! The command line: one file per subcommand, each a clap `*Opts` struct
//! with an `exec` that returns the process exit code. `main.rs` only parses,
//! sets up logging and maps a fatal error to exit code 1.

pub mod init;
pub mod inquire;
pub mod keygen;
pub mod ledger;
mod on_finish;
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

    /// Append every line written to stdout and stderr to FILE too, each
    /// with its timestamp (created readable by the owner only).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,

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
    log_line(args);
}

/// The `--log` file, once opened.
static LOG_FILE: std::sync::OnceLock<std::sync::Mutex<std::fs::File>> = std::sync::OnceLock::new();

/// Opens `--log FILE` for appending (created owner-only): every line
/// written to stdout and stderr goes there too.
pub fn open_log(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot open the log file {} (--log)", path.display()))?;
    let _ = LOG_FILE.set(std::sync::Mutex::new(file));
    Ok(())
}

/// Appends one line, timestamped, to the `--log` file if there is one; a
/// failed write loses the line, never the run.
pub fn log_line(args: std::fmt::Arguments<'_>) {
    append_to_log(format_args!("{} {args}", log_timestamp()));
}

/// Appends one line as it is to the `--log` file, if there is one.
fn append_to_log(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Some(file) = LOG_FILE.get() {
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(file, "{line}");
    }
}

/// Appends text already made of whole lines to the `--log` file, each line
/// timestamped unless it starts with one already.
pub fn log_text(text: &str) {
    for line in text.lines() {
        let stamped = line
            .split_whitespace()
            .next()
            .is_some_and(|first| chrono::DateTime::parse_from_rfc3339(first).is_ok());
        if stamped {
            append_to_log(format_args!("{line}"));
        } else {
            log_line(format_args!("{line}"));
        }
    }
}

/// Stdout for a table a person reads: on a terminal as it is; without one
/// (cron mail, a file), each line starts with its timestamp like every log
/// line. Not for data (`ledger export` writes CSV to stdout).
pub fn stamped_stdout() -> impl std::io::Write {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    StampedLines {
        stamp: !stdout.is_terminal(),
        inner: stdout.lock(),
        at_line_start: true,
        log_pending: Vec::new(),
    }
}

/// Writes through to `inner`, starting each line with a timestamp when
/// `stamp` is set.
struct StampedLines<W> {
    inner: W,
    stamp: bool,
    at_line_start: bool,
    /// The part of a line not yet ended, for the --log file.
    log_pending: Vec<u8>,
}

impl<W: std::io::Write> std::io::Write for StampedLines<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // Each whole line goes to the --log file too.
        self.log_pending.extend_from_slice(bytes);
        while let Some(end) = self.log_pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.log_pending.drain(..=end).collect();
            log_text(&String::from_utf8_lossy(&line));
        }
        if !self.stamp {
            return self.inner.write(bytes);
        }
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if self.at_line_start {
                write!(self.inner, "{} ", log_timestamp())?;
            }
            self.inner.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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
    /// The header row's number; 0: found (the first row, among the first
    /// 30 non-blank ones, holding every required header) [default:
    /// [input] header_row of the config, else 0].
    #[arg(long)]
    pub header_row: Option<u64>,
}

impl InputArgs {
    /// The settings of the config file (or the defaults without one) under
    /// `--sheet` and the command's own overrides.
    pub fn settings(&self, overrides: Overrides) -> anyhow::Result<Settings> {
        let overrides = Overrides {
            sheet: self.sheet.clone(),
            header_row: self.header_row,
            ..overrides
        };
        Ok(Settings::load(self.config.as_deref(), overrides)?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::StampedLines;

    #[test]
    fn each_line_gets_one_timestamp_however_it_is_written() {
        let mut lines = StampedLines {
            inner: Vec::new(),
            stamp: true,
            at_line_start: true,
            log_pending: Vec::new(),
        };
        write!(lines, "first\nsec").unwrap();
        writeln!(lines, "ond").unwrap();
        lines.write_all(b"third\n").unwrap();
        let text = String::from_utf8(lines.inner).unwrap();
        let written: Vec<&str> = text.lines().collect();
        assert_eq!(written.len(), 3, "{text}");
        for (line, content) in written.iter().zip(["first", "second", "third"]) {
            let (stamp, rest) = line.split_once(' ').unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
                "{line}"
            );
            assert_eq!(rest, content);
        }
        let mut plain = StampedLines {
            inner: Vec::new(),
            stamp: false,
            at_line_start: true,
            log_pending: Vec::new(),
        };
        writeln!(plain, "as it is").unwrap();
        assert_eq!(plain.inner, b"as it is\n");
    }
}
