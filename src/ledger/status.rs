//! The ledger's view across nights: per run (an out folder, however often
//! it was resumed) the declarations it made by status, its corrections
//! waiting for their retransmission, the customs outcomes still pending
//! and those returned by result code, and the oldest item still open. Also
//! the declarations whose customs outcome is not final, page by page, for
//! `inquire --ledger`. A customs outcome is final once customs returned a
//! result code; the statuses before it (`WAITING_FOR_PROCESSING`,
//! `IN_PROCESS`, or never asked) are pending. The spec's statuses and codes
//! are an open list, so only that rule is built in.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use rusqlite::params;

use super::{Ledger, LedgerError, SETTLED_OR_SENT, since_millis, time_text};
use crate::outcome::Status;

/// One night (run) as `ledger status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStatus {
    pub out_dir: String,
    pub input: String,
    pub started_at: String,
    /// The last end recorded (a run resumed ends more than once).
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    pub success: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Corrections waiting for their retransmission at the run's end.
    pub waiting: u64,
    /// S declarations whose customs outcome has not come back.
    pub customs_pending: u64,
    /// Customs outcomes returned, by result code.
    pub customs_results: BTreeMap<String, u64>,
}

impl RunStatus {
    /// Declarations of the run still open: U, or S with customs pending.
    pub fn open(&self) -> u64 {
        self.unknown + self.customs_pending
    }
}

/// The oldest declaration still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    pub request_id: String,
    pub status: Status,
    /// When it was settled, or last sent (RFC 3339, UTC).
    pub since: String,
    pub run: String,
    pub row: u64,
}

/// A declaration whose customs outcome is not final, as an inquiry needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeclaration {
    pub request_id: String,
    pub status: Status,
    pub customs_code: String,
    pub amount: String,
    pub reference_order_id: String,
}

/// The condition of a declaration still open (U, or S without a customs
/// result), on the alias `d`.
const OPEN: &str = "(d.status = 'U' OR (d.status = 'S' AND NOT EXISTS (
         SELECT 1 FROM inquiries i WHERE i.id = d.inquiry_id
           AND i.customs_result_code IS NOT NULL)))";

impl Ledger {
    /// Records the end of the run begun with `begin_run`: when, its exit
    /// code, and its corrections waiting for their retransmission; and
    /// drops raw answers older than `keep_raw_answers` (their fields stay).
    pub fn finish_run(
        &self,
        exit_code: u8,
        waiting: u64,
        keep_raw_answers: std::time::Duration,
    ) -> Result<u64, LedgerError> {
        let now = Utc::now();
        let cutoff = chrono::Duration::from_std(keep_raw_answers)
            .ok()
            .and_then(|keep| now.checked_sub_signed(keep))
            .map_or(i64::MIN, |time| time.timestamp_millis());
        let (scope, run) = (self.scope, self.run);
        self.with(|c| {
            if let Some(run) = run {
                c.execute(
                    "UPDATE runs SET finished_at = ?2, exit_code = ?3, waiting = ?4 WHERE id = ?1",
                    params![run, super::ledger_time(now), exit_code, waiting],
                )?;
            }
            let dropped = c.execute(
                "UPDATE calls INDEXED BY calls_with_answers
                 SET answer_shape = NULL, answer_values = NULL, answer_text = NULL
                 WHERE (answer_shape IS NOT NULL OR answer_text IS NOT NULL)
                   AND answered_at < ?2
                   AND (SELECT d.scope_id FROM declarations d WHERE d.id = calls.declaration_id)
                       = ?1",
                params![scope, cutoff],
            )?;
            // Shapes only pile up when answers differ in more than the known
            // fields; then the ones no kept answer uses go.
            let shapes: i64 = c.query_row("SELECT count(*) FROM shapes", [], |row| row.get(0))?;
            if shapes > super::answers::FEW_SHAPES {
                c.execute(
                    "DELETE FROM shapes WHERE id NOT IN (
                         SELECT answer_shape FROM calls INDEXED BY calls_with_answers
                         WHERE (answer_shape IS NOT NULL OR answer_text IS NOT NULL)
                           AND answer_shape IS NOT NULL)",
                    [],
                )?;
            }
            Ok(dropped as u64)
        })
    }

    /// Every run of this scope that declared, started on or after `since`
    /// (RFC 3339 UTC), oldest first.
    pub fn status(&self, since: Option<&str>) -> Result<Vec<RunStatus>, LedgerError> {
        let scope = self.scope;
        let since = since.unwrap_or("");
        self.with(|c| {
            let mut runs: Vec<RunStatus> = c
                .prepare(
                    "SELECT r.out_dir, max(r.input), min(r.started_at),
                            (SELECT r2.finished_at FROM runs r2 WHERE r2.scope_id = ?1
                               AND r2.out_dir = r.out_dir AND r2.input_sha256 <> '' ORDER BY r2.started_at DESC LIMIT 1),
                            (SELECT r2.exit_code FROM runs r2 WHERE r2.scope_id = ?1
                               AND r2.out_dir = r.out_dir AND r2.input_sha256 <> '' ORDER BY r2.started_at DESC LIMIT 1),
                            (SELECT r2.waiting FROM runs r2 WHERE r2.scope_id = ?1
                               AND r2.out_dir = r.out_dir AND r2.input_sha256 <> '' ORDER BY r2.started_at DESC LIMIT 1)
                     FROM runs r
                     WHERE r.scope_id = ?1 AND r.input_sha256 <> ''
                     GROUP BY r.out_dir
                     HAVING min(r.started_at) >= ?2
                     ORDER BY min(r.started_at)",
                )?
                .query_map(params![scope, since], |row| {
                    Ok(RunStatus {
                        out_dir: row.get(0)?,
                        input: row.get(1)?,
                        started_at: row.get(2)?,
                        finished_at: row.get(3)?,
                        exit_code: row.get(4)?,
                        waiting: row.get::<_, Option<u64>>(5)?.unwrap_or(0),
                        ..RunStatus::default()
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let index: std::collections::HashMap<String, usize> = runs
                .iter()
                .enumerate()
                .map(|(n, run)| (run.out_dir.clone(), n))
                .collect();
            let mut statement = c.prepare(
                "SELECT r.out_dir, d.status, COALESCE(code.text, ''), count(*)
                 FROM declarations d JOIN runs r ON r.id = d.run_id
                      LEFT JOIN inquiries i ON i.id = d.inquiry_id
                      LEFT JOIN texts code ON code.id = i.customs_result_code
                 WHERE d.scope_id = ?1
                 GROUP BY d.run_id, d.status, i.customs_result_code",
            )?;
            let mut rows = statement.query(params![scope])?;
            while let Some(row) = rows.next()? {
                let out_dir: String = row.get(0)?;
                let Some(&n) = index.get(&out_dir) else {
                    continue;
                };
                let status: Status = row.get(1)?;
                let customs_code: String = row.get(2)?;
                let count: u64 = row.get(3)?;
                let run = &mut runs[n];
                match status {
                    Status::S => run.success += count,
                    Status::F => run.failed += count,
                    Status::U => run.unknown += count,
                }
                match (status, customs_code.as_str()) {
                    (Status::S, "") => run.customs_pending += count,
                    (_, "") => {}
                    (_, code) => *run.customs_results.entry(code.to_owned()).or_default() += count,
                }
            }
            Ok(runs)
        })
    }

    /// The oldest declaration still open (U, or S with its customs outcome
    /// pending), settled or last sent on or after `since`.
    pub fn oldest_open(&self, since: Option<&str>) -> Result<Option<OpenItem>, LedgerError> {
        let scope = self.scope;
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT d.request_id, d.status, {SETTLED_OR_SENT} AS since,
                        COALESCE(r.out_dir, ''), d.input_row
                 FROM declarations d LEFT JOIN runs r ON r.id = d.run_id
                 WHERE d.scope_id = ?1 AND {OPEN} AND since >= ?2
                 ORDER BY since LIMIT 1"
            ))?;
            let mut rows = statement.query(params![scope, since_millis(since)])?;
            rows.next()?
                .map(|row| {
                    Ok(OpenItem {
                        request_id: row.get(0)?,
                        status: row.get(1)?,
                        since: time_text(row.get(2)?),
                        run: row.get(3)?,
                        row: row.get(4)?,
                    })
                })
                .transpose()
        })
    }

    /// Up to `limit` declarations still open, settled or last sent on or
    /// after `since`, with request IDs after `after`, in request ID order:
    /// a page of what `inquire --ledger` asks about.
    pub fn open_declarations(
        &self,
        since: Option<&str>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<PendingDeclaration>, LedgerError> {
        let scope = self.scope;
        self.with(|c| {
            let mut statement = c.prepare_cached(&format!(
                "SELECT d.request_id, d.status, t.customs_code, d.amount, d.reference_order_id
                 FROM declarations d JOIN targets t ON t.id = d.target_id
                 WHERE d.scope_id = ?1 AND d.request_id > ?2 AND {OPEN}
                   AND {SETTLED_OR_SENT} >= ?3
                 ORDER BY d.request_id LIMIT ?4"
            ))?;
            statement
                .query_map(params![scope, after, since_millis(since), limit], |row| {
                    Ok(PendingDeclaration {
                        request_id: row.get(0)?,
                        status: row.get(1)?,
                        customs_code: row.get(2)?,
                        amount: row.get(3)?,
                        reference_order_id: row.get(4)?,
                    })
                })?
                .collect()
        })
    }

    /// Settles a U declaration that an inquiry found declared with its own
    /// content, outside any run's folder.
    pub fn settle_unknown_by_inquiry(
        &self,
        request_id: &str,
        psp_payment_id: &str,
        psp_declaration_request_id: &str,
        message: &str,
    ) -> Result<(), LedgerError> {
        self.settle(
            request_id,
            "= 'U'",
            "SUCCESS",
            message,
            psp_payment_id,
            psp_declaration_request_id,
        )
    }

    /// When a run of this scope first read an input with this SHA-256,
    /// other than the runs into `except` (out folders): the same file
    /// declared before, from the page or the command line.
    pub fn first_run_of_input(
        &self,
        input_sha256: &str,
        except: &[&Path],
    ) -> Result<Option<String>, LedgerError> {
        let scope = self.scope;
        let except: Vec<String> = except
            .iter()
            .map(|folder| {
                std::fs::canonicalize(folder)
                    .unwrap_or_else(|_| folder.to_path_buf())
                    .display()
                    .to_string()
            })
            .collect();
        let runs: Vec<(String, String)> = self.with(|c| {
            let mut statement = c.prepare(
                "SELECT started_at, out_dir FROM runs WHERE scope_id = ?1 AND input_sha256 = ?2",
            )?;
            let rows = statement.query_map(params![scope, input_sha256], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            rows.collect()
        })?;
        // Started at is RFC 3339 in one zone: the text orders as the time.
        Ok(runs
            .into_iter()
            .filter(|(_, out_dir)| !except.contains(out_dir))
            .map(|(started_at, _)| started_at)
            .min())
    }

    /// Compacts the file (SQLite's VACUUM) and empties its write-ahead log.
    pub fn vacuum(&self) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute_batch("VACUUM")?;
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })
    }
}
