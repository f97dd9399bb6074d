//! `declare-batch inquire OUT_DIR`: asks Alipay+ about every S and U row of
//! the run in OUT_DIR, writes `customs.csv`, and settles the U rows it
//! holds as declared. The endpoint and client ID come from the folder's
//! `run.json`, the keys from the config. `inquire --ledger` asks instead
//! about every declaration of the ledger still open, across runs.

use std::path::PathBuf;

use crate::exit;
use crate::run::inquire::inquire_recorded_run;
use crate::say;
use crate::settings::{Overrides, Settings};

#[derive(Debug, clap::Args)]
pub struct InquireOpts {
    /// The out folder of a run (without it, --ledger asks across the
    /// ledger).
    pub out: Option<PathBuf>,
    /// Config file (TOML) with the run's keys; its endpoint and client ID,
    /// when set, must be the run's.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// With OUT_DIR: the ledger to record the results in [default: the
    /// run's]. Without OUT_DIR: ask about every declaration of this ledger
    /// [default: the config's] still open across runs (U, or customs outcome
    /// pending).
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<Option<PathBuf>>,
    /// With --ledger and no OUT_DIR: only declarations settled or last sent
    /// on or after this day (YYYY-MM-DD, local time).
    #[arg(long, value_parser = super::ledger::parse_day)]
    pub since: Option<chrono::NaiveDate>,
    /// Seconds to wait for a run (or inquire) holding the same ledger,
    /// endpoint and client ID; 0: stop at once, naming it.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
}

impl InquireOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        // `--ledger` without a path: the config's.
        let ledger = self.ledger.clone().flatten();
        let settings = Settings::load(self.config.as_deref(), Overrides::with_ledger(ledger))?;
        let Some(out) = self.out.as_deref() else {
            if self.ledger.is_none() {
                anyhow::bail!(
                    "give the out folder of a run (inquire OUT_DIR), or --ledger to ask about \
                     every declaration of the ledger still open"
                );
            }
            return self.across_the_ledger(&settings, quiet);
        };
        if self.since.is_some() {
            anyhow::bail!(
                "--since chooses declarations across the ledger: give it with --ledger and \
                 without OUT_DIR"
            );
        }
        let runtime = super::runtime()?;
        let wait = std::time::Duration::from_secs(self.wait);
        let report = runtime.block_on(inquire_recorded_run(out, &settings, wait, |notice| {
            if !quiet {
                say!("declare-batch: {notice}");
            }
        }))?;
        if !quiet {
            use std::io::Write;
            let mut stdout = super::stamped_stdout();
            let statuses: Vec<String> = report
                .by_status
                .iter()
                .map(|(status, count)| format!("{status} {count}"))
                .collect();
            let _ = writeln!(
                stdout,
                "asked about {} request IDs in {} calls: {}; not found {}",
                report.asked,
                report.calls,
                if statuses.is_empty() {
                    "none known".to_owned()
                } else {
                    statuses.join(", ")
                },
                report.not_found
            );
            let _ = writeln!(stdout, "customs results: {}", report.customs_results_line());
            let _ = writeln!(
                stdout,
                "unknown rows settled as S: {}; still unknown: {}; customs outcomes: {}",
                report.settled,
                report.still_unknown,
                out.join("customs.csv").display()
            );
        }
        if report.failed > 0 {
            say!(
                "declare-batch: the inquiry about {} request IDs failed ({}); run inquire again \
                 later",
                report.failed,
                report.last_failure.as_deref().unwrap_or("no answer")
            );
        }
        let code = if report.still_unknown == 0 {
            exit::SUCCESS
        } else {
            exit::UNFINISHED
        };
        // One line to grep, as a run's closing line.
        say!(
            "declare-batch: inquiry finished exit={code} asked={} calls={} not_found={} \
             settled={} still_unknown={} customs: {} out={}",
            report.asked,
            report.calls,
            report.not_found,
            report.settled,
            report.still_unknown,
            report.customs_results_line(),
            out.display()
        );
        Ok(code)
    }
}

impl InquireOpts {
    /// `inquire --ledger [--since DAY]`.
    fn across_the_ledger(&self, settings: &Settings, quiet: bool) -> anyhow::Result<u8> {
        let path = settings.ledger.standing();
        let since = self.since.map(super::ledger::day_start);
        let runtime = super::runtime()?;
        let wait = std::time::Duration::from_secs(self.wait);
        let inquiry = runtime.block_on(crate::run::inquire_ledger::inquire_ledger(
            &path,
            settings,
            since.as_deref(),
            wait,
            |notice| {
                if !quiet {
                    say!("declare-batch: {notice}");
                }
            },
        ))?;
        let report = &inquiry.report;
        if report.failed > 0 {
            say!(
                "declare-batch: the inquiry about {} request IDs failed ({}); run it again later",
                report.failed,
                report.last_failure.as_deref().unwrap_or("no answer")
            );
        }
        let code = if report.still_unknown == 0 && report.failed == 0 {
            exit::SUCCESS
        } else {
            exit::UNFINISHED
        };
        say!(
            "declare-batch: inquiry finished exit={code} asked={} calls={} not_found={} \
             settled={} still_unknown={} customs_pending={} customs: {} ledger={}",
            report.asked,
            report.calls,
            report.not_found,
            report.settled,
            report.still_unknown,
            inquiry.customs_pending,
            report.customs_results_line(),
            path.display()
        );
        Ok(code)
    }
}
