//! The `declare-batch` binary: parses the command line, sets up logging on
//! stderr, runs the command and turns a fatal error into exit code 1.

use std::process::ExitCode;

use clap::Parser;
use declare_batch::cmd::Cli;
use declare_batch::exit;
use tracing_subscriber::EnvFilter;

// Rows are allocated on the reading thread and freed on another; glibc's
// allocator spent a quarter of validation time on that hand-over.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if cli.quiet { "error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("DECLARE_LOG")
                .unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    match cli.exec() {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit::FATAL)
        }
    }
}
