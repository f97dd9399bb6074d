//! `declare-batch validate INPUT`: reads every row, applies every rule, and
//! reports what would be rejected and why, before anything is sent.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::Local;
use serde::Serialize;

use crate::exit;
use crate::messages::Language;
use crate::outdir::{OutLock, refuse_run_folder};
use crate::report::html::{ReportData, write_report};
use crate::report::{
    ProblemCount, ProblemTally, RejectedWriter, RowCounts, hex, timestamp, write_json,
    write_problem_table,
};
use crate::validate::{CrossRowIndex, Verdict, validate_stream};

#[derive(Debug, clap::Args)]
pub struct ValidateOpts {
    #[command(flatten)]
    pub input: super::InputArgs,
}

/// `summary.json` of a validation.
#[derive(Debug, Serialize)]
struct ValidateSummary {
    command: &'static str,
    input: String,
    input_sha256: String,
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sheet: Option<String>,
    /// The row the headers were found on.
    header_row: u64,
    rows: RowCounts,
    errors: Vec<ProblemCount>,
    started_at: String,
    finished_at: String,
    duration_ms: u128,
    exit_code: u8,
}

impl ValidateOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let started_at = Local::now();
        let clock = Instant::now();
        let config = self.input.load_config()?;
        let (mut source, rules) = self.input.open(&config)?;
        let out = &self.input.out;
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
        let _lock = OutLock::take(out, "validate")?;
        refuse_run_folder(out)?;
        let rejected_path = out.join("rejected.csv");
        let mut rejected = RejectedWriter::create(
            &rejected_path,
            source.headers(),
            rules.field_columns(),
            config.output.language,
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
            |outcome| -> anyhow::Result<()> {
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
            input: self.input.input.display().to_string(),
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
            language: config.output.language,
        };
        write_report(out, &report)
            .with_context(|| format!("cannot write {}", out.join("report.html").display()))?;
        if !quiet {
            // A closed stdout loses the table, not the outputs.
            let _ = print_summary(&summary, out, config.output.language);
        }
        Ok(exit_code)
    }
}

fn print_summary(
    summary: &ValidateSummary,
    folder: &Path,
    language: Language,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: {}", summary.input, summary.rows)?;
    if !summary.errors.is_empty() {
        write_problem_table(&mut out, &summary.errors, language)?;
        writeln!(
            out,
            "rejected rows and their errors: {} (and .xlsx)",
            folder.join("rejected.csv").display()
        )?;
    }
    writeln!(out, "report: {}", folder.join("report.html").display())
}
