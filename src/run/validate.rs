//! Validation as a library: every row of an input read and checked, its
//! rejected rows written (`rejected.csv`, `rejected.xlsx`), `summary.json`
//! and `report.html`, nothing sent. Driven by `declare-batch validate` and
//! the web page alike.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::Local;
use serde::Serialize;

use crate::exit;
use crate::outdir::{OutLock, refuse_run_folder};
use crate::report::html::{ReportData, write_report};
use crate::report::{
    ProblemCount, ProblemTally, RejectedWriter, RowCounts, hex, timestamp, write_json,
};
use crate::settings::Settings;
use crate::validate::{CountedRow, CrossRowIndex, Outcome, Verdict, validate_stream};

/// `summary.json` of a validation.
#[derive(Debug, Serialize)]
pub struct ValidateSummary {
    pub command: &'static str,
    pub input: String,
    pub input_sha256: String,
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The row the headers were found on.
    pub header_row: u64,
    pub rows: RowCounts,
    pub errors: Vec<ProblemCount>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u128,
    pub exit_code: u8,
}

/// Validates `input` into the folder `out` (locked meanwhile; a folder
/// that holds a run is refused).
pub fn validate_input(
    input: &Path,
    settings: &Settings,
    out: &Path,
) -> anyhow::Result<ValidateSummary> {
    let started_at = Local::now();
    let clock = Instant::now();
    let (mut source, rules) = super::open_input(input, &settings.input)?;
    crate::outdir::create_private_folder(out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let _lock = OutLock::take(out, "validate")?;
    refuse_run_folder(out)?;
    let rejected_path = out.join("rejected.csv");
    let mut rejected = RejectedWriter::create(
        &rejected_path,
        source.headers(),
        rules.field_columns(),
        settings.language,
    )
    .with_context(|| format!("cannot write {}", rejected_path.display()))?;
    let mut counts = RowCounts::default();
    let mut tally = ProblemTally::default();
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    validate_stream(
        &mut source,
        &rules,
        &mut CrossRowIndex::default(),
        workers,
        |outcome: Outcome<CountedRow>| -> anyhow::Result<()> {
            counts.read += 1;
            match outcome.verdict {
                Verdict::Valid(valid) => {
                    counts.valid += 1;
                    counts.long_term_id_cards += u64::from(valid.long_term_expiry);
                }
                Verdict::Totals => counts.add_totals_row(outcome.row.line),
                Verdict::Rejected(problems) => {
                    tally.add(&problems);
                    rejected
                        .write(&outcome.row.as_row(), &problems)
                        .with_context(|| format!("cannot write {}", rejected_path.display()))?;
                }
            }
            Ok(())
        },
    )?;
    counts.rejected = rejected.rows();
    counts.blank = source.blank_rows();
    counts.above_header = source.rows_above_header();
    rejected
        .commit()
        .with_context(|| format!("cannot write {}", rejected_path.display()))?;
    let exit_code = if counts.rejected == 0 {
        exit::SUCCESS
    } else {
        exit::SOME_FAILED
    };
    let summary = ValidateSummary {
        command: "validate",
        input: input.display().to_string(),
        input_sha256: hex(&source.sha256()?),
        format: source.format().name(),
        encoding: source.encoding().map(|e| e.name()),
        sheet: source.sheet().map(str::to_owned),
        header_row: source.header_line(),
        rows: counts,
        errors: tally.sorted(),
        started_at: timestamp(started_at),
        finished_at: timestamp(Local::now()),
        duration_ms: clock.elapsed().as_millis(),
        exit_code,
    };
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)
        .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let no_codes = std::collections::BTreeMap::new();
    let report = ReportData {
        command: "validate",
        input: &summary.input,
        endpoint: None,
        rows: &summary.rows,
        results: None,
        codes: &no_codes,
        problems: &summary.errors,
        identity_checks: &no_codes,
        per_second: &[],
        latency: None,
        started_at: &summary.started_at,
        duration_ms: summary.duration_ms,
        stopped: None,
        exit_code,
        language: settings.language,
        retransmitted: 0,
        waiting_for_retransmission: 0,
        customs_results: Vec::new(),
    };
    write_report(out, &report)
        .with_context(|| format!("cannot write {}", out.join("report.html").display()))?;
    Ok(summary)
}
