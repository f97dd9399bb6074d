//! `declare-batch ledger export`: every declaration the ledger holds for
//! the config's endpoint and client ID, as CSV on stdout, for audits.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{Local, NaiveDate, TimeZone};

use crate::exit;
use crate::ledger::{Ledger, ledger_time};
use crate::outcome::Status;
use crate::settings::{Overrides, Settings};

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Every declaration of the config's endpoint and client ID as CSV on
    /// stdout (certificate numbers masked), oldest first.
    Export(ExportOpts),
}

#[derive(Debug, clap::Args)]
pub struct ExportOpts {
    /// Config file (TOML): its endpoint and client ID choose the
    /// declarations, its [ledger] path the file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ledger [default: [ledger] path of the config, else
    /// declare-batch.db beside the config file].
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Only declarations settled (or last sent) on or after this day
    /// (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_day)]
    pub since: Option<NaiveDate>,
    /// Only declarations with this status: S, F or U.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("\"{text}\" is not a day as YYYY-MM-DD, e.g. 2026-11-01"))
}

fn parse_status(text: &str) -> Result<Status, String> {
    Status::parse(text).ok_or_else(|| format!("\"{text}\" is not S, F or U"))
}

impl LedgerCommand {
    pub fn exec(self, _quiet: bool) -> anyhow::Result<u8> {
        match self {
            LedgerCommand::Export(opts) => opts.exec(),
        }
    }
}

impl ExportOpts {
    fn exec(self) -> anyhow::Result<u8> {
        let settings = Settings::load(
            self.config.as_deref(),
            Overrides::with_ledger(self.ledger.clone()),
        )?;
        let (endpoint, client_id) = settings.scope().context(
            "the ledger keeps declarations by endpoint and client ID: give the --config the \
             runs used",
        )?;
        let path = settings.ledger.standing();
        if !path.exists() {
            bail!(
                "there is no ledger at {}; give --ledger, or the --config the runs used",
                path.display()
            );
        }
        let ledger = Ledger::open(&path, &endpoint, &client_id)?;
        let since = self.since.map(|day| {
            let midnight = Local
                .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
                .earliest()
                .unwrap_or_else(Local::now);
            ledger_time(midnight.with_timezone(&chrono::Utc))
        });
        let stdout = std::io::stdout().lock();
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(std::io::BufWriter::new(stdout));
        let exported = csv
            .write_record(crate::ledger::EXPORT_HEADER)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                ledger.export(since.as_deref(), self.status, |row| {
                    crate::report::spreadsheet_safe::serialize(&mut csv, &row).map_err(|error| {
                        match error.kind() {
                            // Keeps the kind, so that a closed pipe is seen as one.
                            csv::ErrorKind::Io(io) => {
                                std::io::Error::new(io.kind(), error.to_string())
                            }
                            _ => std::io::Error::other(error),
                        }
                    })
                })
            })
            .and_then(|count| {
                csv.flush()?;
                Ok(count)
            });
        let count = match exported {
            Ok(count) => count,
            // A reader that stops early (`| head`) has what it wanted.
            Err(error) if is_broken_pipe(&error) => return Ok(exit::SUCCESS),
            Err(error) => return Err(error),
        };
        tracing::info!("{count} declarations exported from {}", path.display());
        Ok(exit::SUCCESS)
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}
