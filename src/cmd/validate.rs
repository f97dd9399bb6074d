//! `declare-batch validate INPUT`: reads every row, applies every rule, and
//! reports what would be rejected and why, before anything is sent.

use std::io::Write;
use std::path::Path;

use crate::i18n::Language;
use crate::report::write_problem_table;
use crate::run::validate::{ValidateSummary, validate_input};
use crate::settings::Overrides;

#[derive(Debug, clap::Args)]
pub struct ValidateOpts {
    #[command(flatten)]
    pub input: super::InputArgs,
}

impl ValidateOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let settings = self.input.settings(Overrides::default())?;
        let summary = validate_input(&self.input.input, &settings, &self.input.out)?;
        if !quiet {
            print_summary(&summary, &self.input.out, settings.language);
        }
        Ok(summary.exit_code)
    }
}

/// The table of a validation on stdout; a closed stdout loses the table,
/// not the outputs.
pub fn print_summary(summary: &ValidateSummary, folder: &Path, language: Language) {
    let _ = write_summary(summary, folder, language);
}

fn write_summary(
    summary: &ValidateSummary,
    folder: &Path,
    language: Language,
) -> std::io::Result<()> {
    let mut out = super::stamped_stdout();
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
