//! `declare-batch inquire OUT_DIR`: asks Alipay+ about every S and U row of
//! the run in OUT_DIR, writes `customs.csv`, and settles the U rows it
//! holds as declared. The endpoint and client ID come from the folder's
//! `run.json`, the keys from the config.

use std::path::PathBuf;

use crate::exit;
use crate::run::inquire::inquire_recorded_run;
use crate::say;
use crate::settings::{Overrides, Settings};

#[derive(Debug, clap::Args)]
pub struct InquireOpts {
    /// The out folder of a run.
    pub out: PathBuf,
    /// Config file (TOML) with the run's keys; its endpoint and client ID,
    /// when set, must be the run's.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The ledger to record the results in [default: the run's].
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Seconds to wait for a run (or inquire) holding the same ledger,
    /// endpoint and client ID; 0: stop at once, naming it.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
}

impl InquireOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let out = self.out.as_path();
        let settings = Settings::load(
            self.config.as_deref(),
            Overrides::with_ledger(self.ledger.clone()),
        )?;
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
        Ok(if report.still_unknown == 0 {
            exit::SUCCESS
        } else {
            exit::UNFINISHED
        })
    }
}
