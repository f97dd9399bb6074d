//! `declare-batch ledger export`: every declaration the ledger holds for
//! the config's endpoint and client ID, as CSV on stdout, for audits;
//! `ledger status`: the view across nights, per run; `ledger vacuum`:
//! the file compacted.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{Local, NaiveDate, TimeZone};

use crate::exit;
use crate::ledger::{CustomsFilter, Ledger, ledger_time};
use crate::outcome::Status;
use crate::report::local_minute;
use crate::say;
use crate::settings::{Overrides, Settings};

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Every declaration of the config's endpoint and client ID as CSV on
    /// stdout (certificate numbers masked), oldest first.
    Export(ExportOpts),
    /// Per run (night): declarations S/F/U, corrections waiting for their
    /// retransmission, customs outcomes pending and returned by result
    /// code; and the oldest item still open.
    Status(StatusOpts),
    /// Compacts the ledger file (after raw answers were dropped, see
    /// [ledger] keep_raw_answers_days). Run it when no run is going.
    Vacuum(LedgerArgs),
}

/// Which ledger, and which scope in it.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// Config file (TOML): its endpoint and client ID choose the
    /// declarations, its [ledger] path the file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ledger [default: [ledger] path of the config, else
    /// declare-batch.db beside the config file].
    #[arg(long)]
    pub ledger: Option<PathBuf>,
}

impl LedgerArgs {
    /// The settings and the ledger of the scope, which must exist.
    fn open(&self) -> anyhow::Result<(Settings, Ledger)> {
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
        Ok((settings, ledger))
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusOpts {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Only runs started on or after this day (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_day)]
    pub since: Option<NaiveDate>,
}

#[derive(Debug, clap::Args)]
pub struct ExportOpts {
    #[command(flatten)]
    pub ledger: LedgerArgs,
    /// Only declarations settled (or last sent) on or after this day
    /// (YYYY-MM-DD, local time).
    #[arg(long, value_parser = parse_day)]
    pub since: Option<NaiveDate>,
    /// Only declarations with this status: S, F or U.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only declarations whose customs outcome is `pending` (declared S,
    /// no customs result yet), `final` (a customs result returned), or
    /// returned with this customs result code.
    #[arg(long, value_name = "pending|final|CODE", value_parser = parse_customs)]
    pub customs: Option<String>,
}

/// The start of a day in local time, as the ledger writes times.
pub fn day_start(day: NaiveDate) -> String {
    let midnight = Local
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .earliest()
        .unwrap_or_else(Local::now);
    ledger_time(midnight.with_timezone(&chrono::Utc))
}

pub fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("\"{text}\" is not a day as YYYY-MM-DD, e.g. 2026-11-01"))
}

/// A customs result code is never empty: an empty one would match nothing.
fn parse_customs(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("give pending, final or a customs result code".to_owned());
    }
    Ok(text.to_owned())
}

fn parse_status(text: &str) -> Result<Status, String> {
    Status::parse(text).ok_or_else(|| format!("\"{text}\" is not S, F or U"))
}

impl LedgerCommand {
    pub fn exec(self, _quiet: bool) -> anyhow::Result<u8> {
        match self {
            LedgerCommand::Export(opts) => opts.exec(),
            LedgerCommand::Status(opts) => opts.exec(),
            LedgerCommand::Vacuum(args) => {
                let (settings, ledger) = args.open()?;
                // Compacting rewrites the whole file: never under a run.
                let (endpoint, client_id) = settings.scope()?;
                let _lease = crate::ledger::LedgerLease::take(
                    ledger.path(),
                    &endpoint,
                    &client_id,
                    "ledger vacuum",
                    ledger.path(),
                    std::time::Duration::ZERO,
                )?;
                let before = file_size(ledger.path());
                ledger.vacuum()?;
                say!(
                    "declare-batch: {} compacted: {} KiB before, {} KiB now",
                    ledger.path().display(),
                    before / 1024,
                    file_size(ledger.path()) / 1024
                );
                Ok(exit::SUCCESS)
            }
        }
    }
}

impl ExportOpts {
    fn exec(self) -> anyhow::Result<u8> {
        let (_, ledger) = self.ledger.open()?;
        let since = self.since.map(day_start);
        let customs = self.customs.as_deref().map(CustomsFilter::parse);
        let stdout = std::io::stdout().lock();
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(std::io::BufWriter::new(stdout));
        let exported = csv
            .write_record(crate::ledger::EXPORT_HEADER)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                ledger.export(since.as_deref(), self.status, customs.as_ref(), |row| {
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
        tracing::info!(
            "{count} declarations exported from {}",
            ledger.path().display()
        );
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

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl StatusOpts {
    fn exec(self) -> anyhow::Result<u8> {
        use std::io::Write;
        let (settings, ledger) = self.ledger.open()?;
        let since = self.since.map(day_start);
        let runs = ledger.status(since.as_deref())?;
        let oldest = ledger.oldest_open(since.as_deref())?;
        let (endpoint, client_id) = settings.scope()?;
        let mut out = super::stamped_stdout();
        let _ = writeln!(
            out,
            "ledger {} — endpoint {endpoint}, client ID {client_id}: {} runs{}",
            ledger.path().display(),
            runs.len(),
            self.since
                .map(|day| format!(" since {day}"))
                .unwrap_or_default()
        );
        let _ = write!(out, "{}", status_table(&runs));
        let _ = writeln!(
            out,
            "oldest open item: {}",
            match &oldest {
                Some(item) => format!(
                    "{} ({}, since {}; run {} row {})",
                    item.request_id,
                    match item.status {
                        Status::U => "U: sent, no final answer",
                        _ => "S: customs outcome pending",
                    },
                    local_minute(&item.since),
                    item.run,
                    item.row
                ),
                None =>
                    "none: every declaration has its final answer and customs outcome".to_owned(),
            }
        );
        Ok(exit::SUCCESS)
    }
}

/// The runs as an aligned table, with a total line.
fn status_table(runs: &[crate::ledger::RunStatus]) -> String {
    let header = [
        "run",
        "started",
        "exit",
        "S",
        "F",
        "U",
        "waiting",
        "customs pending",
        "customs results",
    ];
    let mut total = crate::ledger::RunStatus {
        out_dir: "total".to_owned(),
        ..Default::default()
    };
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    let results_line = |results: &std::collections::BTreeMap<String, u64>| {
        if results.is_empty() {
            "-".to_owned()
        } else {
            results
                .iter()
                .map(|(code, count)| format!("{code} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for run in runs {
        total.success += run.success;
        total.failed += run.failed;
        total.unknown += run.unknown;
        total.waiting += run.waiting;
        total.customs_pending += run.customs_pending;
        for (code, count) in &run.customs_results {
            *total.customs_results.entry(code.clone()).or_default() += count;
        }
        lines.push(vec![
            run.out_dir.clone(),
            local_minute(&run.started_at),
            run.exit_code
                .map_or_else(|| "-".to_owned(), |code| code.to_string()),
            run.success.to_string(),
            run.failed.to_string(),
            run.unknown.to_string(),
            run.waiting.to_string(),
            run.customs_pending.to_string(),
            results_line(&run.customs_results),
        ]);
    }
    lines.push(vec![
        total.out_dir.clone(),
        String::new(),
        String::new(),
        total.success.to_string(),
        total.failed.to_string(),
        total.unknown.to_string(),
        // Each run's count is at its end; a later run may have sent them.
        "-".to_owned(),
        total.customs_pending.to_string(),
        results_line(&total.customs_results),
    ]);
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_customs_code_is_refused_not_matched_against_nothing() {
        assert!(parse_customs("").is_err());
        assert!(parse_customs("  ").is_err());
        assert_eq!(parse_customs("ACCEPTED").as_deref(), Ok("ACCEPTED"));
    }
}
