//! The `declare-batch` binary: parses the command line, sets up logging on
//! stderr, runs the command and turns a fatal error into exit code 1.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use declare_batch::cmd::Cli;
use declare_batch::exit;
use tracing_subscriber::EnvFilter;

// Rows are allocated on the reading thread and freed on another; glibc's
// allocator spent a quarter of validation time on that hand-over.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A file-size limit (`ulimit -f` in a cron job) kills a process with
/// SIGXFSZ by default, mid-write and without a word. Ignored, the write
/// fails with EFBIG instead, and the run stops like on a full disk: exit 1,
/// naming the file, every output it still can written.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: at the start of main, before any thread exists; SIG_IGN is a
    // valid disposition for SIGXFSZ.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Log lines on stderr: on a terminal, coloured and without a time; into a
/// file or cron mail, plain and each with its timestamp.
struct LogTime;

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", declare_batch::cmd::log_timestamp())
    }
}

fn main() -> ExitCode {
    ignore_file_size_signal();
    let cli = Cli::parse();
    let default_level = if cli.quiet { "error" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("DECLARE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // A stderr that cannot be written loses the line, never the run.
    let writer = || LossyStderr;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    if std::io::stderr().is_terminal() {
        builder.without_time().init();
    } else {
        builder.with_ansi(false).with_timer(LogTime).init();
    }
    if let Some(path) = &cli.log
        && let Err(error) = declare_batch::cmd::open_log(path)
    {
        declare_batch::say!("error: {error:#}");
        return ExitCode::from(exit::FATAL);
    }
    let code = match cli.exec() {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            declare_batch::say!("error: {error:#}");
            ExitCode::from(exit::FATAL)
        }
    };
    log_peak_memory();
    code
}

/// Logs the process's peak resident memory (`VmHWM`, counted from this
/// program's start, unlike `getrusage`, which also counts the parent's
/// memory a forked child began with). Shown with
/// `DECLARE_LOG=declare_batch::memory=info`; the tests of hostile inputs
/// and the benchmarks read it.
fn log_peak_memory() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(kib) = peak_kib {
        tracing::info!(target: "declare_batch::memory", "peak memory: {kib} KiB");
    }
}

/// stderr with every write error swallowed (cron may close it).
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        // Log lines (warnings) go to the --log file too.
        declare_batch::cmd::log_text(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
