//! `declare-batch inquire OUT_DIR`: asks Alipay+ about every S and U row of
//! the run in OUT_DIR, writes `customs.csv`, and settles the U rows it
//! holds as declared. The endpoint and client ID come from the folder's
//! `run.json`, the keys from the config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::declare::Journal;
use crate::exit;
use crate::ledger::Ledger;
use crate::outdir::OutLock;
use crate::run::inquire::{InquirySettings, client_for_run, inquire_folder, update_summary};
use crate::run::{EMBEDDED_ENDPOINT, RunRecord};
use crate::say;

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
}

impl InquireOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let out = self.out.as_path();
        if !out.join("run.json").exists() {
            bail!(
                "{} holds no run (no run.json); give the --out folder of a declare-batch run",
                out.display()
            );
        }
        let _lock = OutLock::take(out, "inquire")?;
        let record = RunRecord::read(out)
            .with_context(|| format!("{} is damaged", out.join("run.json").display()))?;
        if record.endpoint == EMBEDDED_ENDPOINT {
            bail!(
                "the run in {} declared to the embedded sandbox, which is gone with its run: \
                 there is nothing to ask. Use run --resolve-unknown to inquire while it runs",
                out.display()
            );
        }
        if record.endpoint.is_empty() {
            bail!(
                "the run in {} was made by an earlier version that did not record its endpoint; \
                 run the same run command again with this version first",
                out.display()
            );
        }
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::without_file(),
        };
        let ledger_path = self
            .ledger
            .clone()
            .or_else(|| record.ledger.clone())
            .or_else(|| config.ledger.path.clone())
            .unwrap_or_else(|| default_ledger(self.config.as_deref()));
        let settings = InquirySettings {
            rate_per_sec: config.run.rate_per_sec,
            max_attempts: config.run.max_attempts.max(1),
            backoff_base: Duration::from_millis(config.run.backoff_base_ms),
        };
        let client = client_for_run(&record, config)?;
        let mut ledger = Ledger::open(&ledger_path, &record.endpoint, &record.client_id)?;
        ledger.begin_run(out, Path::new(&record.input), "")?;
        let (mut journal, _) = Journal::open(&out.join("journal.jsonl"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let report = runtime.block_on(inquire_folder(
            out,
            &client,
            &ledger,
            &mut journal,
            &settings,
            |notice| {
                if !quiet {
                    say!("declare-batch: {notice}");
                }
            },
        ))?;
        update_summary(out, &report)?;
        if !quiet {
            let statuses: Vec<String> = report
                .by_status
                .iter()
                .map(|(status, count)| format!("{status} {count}"))
                .collect();
            println!(
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
            println!(
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

/// The ledger beside the config file, or in the working folder.
fn default_ledger(config: Option<&Path>) -> PathBuf {
    config
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join(crate::ledger::DEFAULT_FILE)
}
