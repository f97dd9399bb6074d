//! A run's out folder: what run it holds (`run.json`: identity, request
//! format, endpoint, client ID, ledger), the refusal of a folder that holds
//! another run or the input itself, and `--fresh`, which moves a previous
//! run's outputs aside.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::Local;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::BODY_FORMAT_VERSION;
use crate::report::hex;
use crate::settings::InputSettings;

/// Output files of a run, which `--fresh` moves aside.
pub const OUTPUTS: [&str; 13] = [
    "journal.jsonl",
    "plan.csv",
    "results.csv",
    "results.csv.partial",
    "results.xlsx",
    "rejected.csv",
    "rejected.xlsx",
    "retry.xlsx",
    "retry.csv",
    "customs.csv",
    "report.html",
    "summary.json",
    "run.json",
];

/// `run.json`: what the run in this folder is, so that another run into
/// it is recognised and `inquire` finds where it declared. Never key
/// material.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunRecord {
    pub identity: String,
    pub input: String,
    /// The version of the request bytes built from rows; runs recorded
    /// before it was kept made version 1's.
    #[serde(default = "first_body_format")]
    pub body_format: u32,
    /// Where the run declares: a base URL, or `embedded-sandbox`.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub client_id: String,
    /// The ledger the run records in, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<PathBuf>,
}

fn first_body_format() -> u32 {
    1
}

impl RunRecord {
    /// The record of the run in `out`, if it holds one.
    pub fn read(out: &Path) -> Option<RunRecord> {
        let text = std::fs::read_to_string(out.join("run.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The run's identity: the input and what shapes the requests and where
/// they go.
pub fn identity(
    input_sha256: &str,
    endpoint: &str,
    input: &InputSettings,
    client_id: &str,
) -> String {
    let mut shape = serde_json::json!({
        "input_sha256": input_sha256,
        "endpoint": endpoint,
        "client_id": client_id,
        "sheet": input.sheet,
        "columns": input.columns_as_written,
        "defaults": input.defaults_as_written,
        "amount_unit": format!("{:?}", input.amount_unit),
    });
    // Only when set, so that runs from before the key keep their identity.
    if input.header_row > 0 {
        shape["header_row"] = input.header_row.into();
    }
    if let Some(edits) = input.edits.as_ref().filter(|edits| !edits.is_empty()) {
        shape["edits"] = edits.digest().into();
    }
    hex(&Sha256::digest(shape.to_string().as_bytes()))
}

/// Refuses to resume a folder that holds another run (unless `fresh`), or
/// a run whose requests another version built.
pub fn check_previous(out: &Path, identity: &str, fresh: bool) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(out.join("run.json")) else {
        return Ok(());
    };
    if fresh {
        return Ok(());
    }
    let previous: Option<RunRecord> = serde_json::from_str(&text).ok();
    let same = previous.as_ref().is_some_and(|p| p.identity == identity);
    if let Some(previous) = previous
        .as_ref()
        .filter(|p| same && p.body_format != BODY_FORMAT_VERSION)
    {
        bail!(
            "{} holds a run whose requests were built by another version of declare-batch \
             (request format {}, this one builds {}): resuming it would send rows in doubt with \
             other bytes under the same request IDs. Finish it with the version that started \
             it, or use --fresh to start over",
            out.display(),
            previous.body_format,
            BODY_FORMAT_VERSION
        );
    }
    if !same {
        bail!(
            "{} holds another run (other input, endpoint, client ID, sheet, [columns], \
             [defaults] or amount_unit); use another --out folder, or --fresh to move its \
             outputs aside and start over",
            out.display()
        );
    }
    Ok(())
}

pub fn refuse_input_inside_out(input: &Path, out: &Path) -> anyhow::Result<()> {
    let input =
        std::fs::canonicalize(input).with_context(|| format!("cannot read {}", input.display()))?;
    let out = std::fs::canonicalize(out)?;
    if input.starts_with(&out) {
        bail!(
            "--out {} contains the input {}; write each run to a folder of its own, e.g. \
             declare-batch run {} --out {}-1",
            out.display(),
            input.display(),
            input.display(),
            out.display()
        );
    }
    Ok(())
}

/// Moves a previous run's outputs to OUT/.previous-<timestamp>/; with
/// `embedded_ledger`, the embedded sandbox's ledger too (that sandbox and
/// its declarations are gone).
pub fn move_aside(out: &Path, embedded_ledger: bool) -> anyhow::Result<()> {
    let aside = out.join(format!(
        ".previous-{}",
        Local::now().format("%Y%m%dT%H%M%S%.3f")
    ));
    let ledger_files = [
        crate::ledger::DEFAULT_FILE.to_owned(),
        format!("{}-wal", crate::ledger::DEFAULT_FILE),
        format!("{}-shm", crate::ledger::DEFAULT_FILE),
        format!("{}.key", crate::ledger::DEFAULT_FILE),
    ];
    let ledger_files = ledger_files.iter().filter(|_| embedded_ledger);
    for name in OUTPUTS
        .iter()
        .copied()
        .chain(ledger_files.map(String::as_str))
    {
        let path = out.join(name);
        if path.exists() {
            std::fs::create_dir_all(&aside)?;
            std::fs::rename(&path, aside.join(name))?;
        }
    }
    Ok(())
}
