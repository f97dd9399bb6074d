//! The command line: one file per subcommand, each a clap `*Opts` struct
//! with an `exec` that returns the process exit code. `main.rs` only parses,
//! sets up logging and maps a fatal error to exit code 1.

pub mod keygen;
pub mod run;
pub mod sandbox;
pub mod validate;

use clap::{Parser, Subcommand};

/// Declares AlipayCN payments to Chinese customs from CSV/XLSX order exports.
#[derive(Debug, Parser)]
#[command(name = "declare-batch", version, about, propagate_version = true)]
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
    Validate(validate::ValidateOpts),
    /// Validate, then declare every valid row; write results, rejected, retry and summary.
    Run(run::RunOpts),
    /// Serve a local stand-in for the Alipay+ declare API (nothing is declared for real).
    Sandbox(sandbox::SandboxOpts),
    /// Write an RSA-2048 key pair: DIR/NAME_private.pem and DIR/NAME_public.pem.
    Keygen(keygen::KeygenOpts),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn exec(self) -> anyhow::Result<u8> {
        match self.command {
            Command::Validate(opts) => opts.exec(self.quiet),
            Command::Run(opts) => opts.exec(self.quiet),
            Command::Sandbox(opts) => opts.exec(self.quiet),
            Command::Keygen(opts) => opts.exec(self.quiet),
        }
    }
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
