//! The ledger: every declaration ever made, across runs, in one SQLite
//! file, so that a nightly export that overlaps last night's is not sent
//! twice, a changed row under a declared ID is a deliberate retransmission,
//! and an outage's unknown rows can be settled by asking Alipay+.
//!
//! Everything is kept per scope (endpoint + client ID), so a sandbox never
//! mixes with production. Tables: `runs` (which out folder and input),
//! `declarations` (the latest state per request ID: its fields, status,
//! answer and customs outcome), `calls` (every request sent, with its
//! answer), `inquiries` (every inquiry result), and what they name by
//! number: `targets` (customs and merchant), `texts` (result codes,
//! messages) and `shapes` (of raw answers). Certificate numbers are stored
//! masked, so bodies are compared by keyed fingerprints (HMAC-SHA256 with a
//! key in a file beside the ledger, its first 64 bits kept; the ledger
//! alone cannot be searched for a guessed ID). Times are milliseconds since
//! the epoch; a year of nights stays a few hundred bytes a declaration.
//! WAL mode with `synchronous = NORMAL`: each commit is handed to the OS at
//! once, so a killed process loses nothing, as with the journal; two
//! processes on one ledger wait for each other (busy timeout) instead of
//! failing.
//!
//! This module is the whole interface to storage: moving the ledger to a
//! shared database (several workers on one client ID) means another
//! implementation of these methods, nothing else. By responsibility: the
//! tables and their migrations (`schema.rs`), the fingerprint key and
//! masking (`keys.rs`), raw answers as shapes and interned texts
//! (`answers.rs`), the writer thread of a run (`writer.rs`), reading back
//! (`export.rs`, `status.rs`); opening, the send decision and the single
//! writes of inquiries are here.

/// The PSP's values of the declaration `d`, in `AnswerValues` order: the
/// one list every query that shapes or decodes raw answers reads (a
/// literal, so that statements are built with `concat!` once).
macro_rules! psp_values_of_d {
    () => {
        "d.psp_payment_id, d.psp_declaration_request_id,
         COALESCE((SELECT text FROM texts WHERE id = d.psp_customs_code), ''),
         d.clearing_transaction_id,
         COALESCE((SELECT text FROM texts WHERE id = d.clearing_channel), ''),
         d.psp_order_amount,
         COALESCE((SELECT text FROM texts WHERE id = d.identity_check_result), '')"
    };
}

mod answers;
mod export;
mod keys;
mod lease;
mod schema;
mod status;
mod writer;

pub use export::{CustomsFilter, EXPORT_HEADER, ExportRow};
pub use keys::{Fingerprints, key_path, mask_certificate};
use keys::{fingerprints, load_key};
pub use lease::{LeaseError, LedgerLease, lease_path};
pub use status::{OpenItem, PendingDeclaration, RunStatus};
use writer::Writes;
pub use writer::{AfterCommit, LedgerWriter};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::hmac;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::outcome::{ResultRow, ResultSource, Status};
use crate::protocol::DeclareRequest;

/// The ledger's file name where no path is configured.
pub const DEFAULT_FILE: &str = "declare-batch.db";

/// Set on every connection: commits reach the OS at once and the disk at
/// checkpoints (survives kill -9, like the journal); pages are read through
/// a memory map, so that a connection whose cache another one's commit
/// made stale re-reads them without copying.
const CONNECTION_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
     PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384;";

/// How long a process waits for another one's write before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the ledger cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    // Each cause is a source, never also in the message: shown with its
    // chain (anyhow's `{:#}`, `error_chain`), it is said once.
    #[error("cannot open the ledger {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the ledger {path} exists but its fingerprint key {key} does not; the key is made with \
         the ledger and is needed to compare requests. Restore it from the backup of the \
         ledger's folder, or give --ledger a new file to start a new ledger"
    )]
    KeyMissing { path: PathBuf, key: PathBuf },
    #[error("cannot use the ledger's fingerprint key {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the ledger {path} was written by a newer declare-batch (schema {found}, this one knows \
         up to {known}); use that version"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("cannot use the ledger {path}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the ledger {path} was removed or replaced while the run used it, so answers would go to \
         a file no later run reads; the run stopped. Put the ledger back where it was (or \
         give --ledger the file to use) and run the same command again"
    )]
    Replaced { path: PathBuf },
}

/// The file's device and inode: which file a path names now.
pub fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|metadata| (metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

/// An earlier declaration, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    /// The out folder of the run that made it.
    pub run: String,
    pub row: u64,
    pub request_id: String,
    /// When it was settled (or last sent), RFC 3339.
    pub at: String,
}

/// What the ledger says about a valid row before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it; `retransmission`: a changed row under its declared ID.
    Send { retransmission: bool },
    /// Not sent: the ledger holds the identical request's final answer.
    Known(Box<ResultRow>),
    /// Not sent, and rejected.
    Refused(Refusal),
}

/// Why the ledger refuses a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A changed row under a declared ID, too early to send again.
    TooEarly {
        earlier: Earlier,
        allowed_from: DateTime<Utc>,
    },
    /// A change a retransmission may not make (the API would answer
    /// REPEAT_REQ_INCONSISTENT).
    Changed { earlier: Earlier },
    /// The order is declared at this customs under another request ID (the
    /// API would answer DUPLICATED_DECLARATION).
    OrderDeclared { earlier: Earlier },
}

/// A customs outcome from `inquireDeclarationRequests`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomsOutcome {
    pub request_id: String,
    pub status: String,
    pub result_code: String,
    pub result_description: String,
    pub returned_time: String,
    pub modified_time: String,
}

/// The ledger of one scope (endpoint + client ID), opened for one run or
/// one command.
pub struct Ledger {
    path: PathBuf,
    connection: Mutex<Session>,
    key: hmac::Key,
    scope: i64,
    run: Option<i64>,
    /// The file opened (device, inode), to notice it removed or replaced.
    identity: Option<(u64, u64)>,
}

/// Now as the ledger writes times: RFC 3339 in UTC with milliseconds,
/// which sorts as text.
pub fn ledger_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time the ledger stores (milliseconds since the epoch) as it writes
/// times for people: RFC 3339, UTC, milliseconds.
fn time_text(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis)
        .map(ledger_time)
        .unwrap_or_default()
}

/// A `since` given as RFC 3339, in the milliseconds the ledger compares;
/// none (or a text that is no time) is the beginning.
fn since_millis(since: Option<&str>) -> i64 {
    since
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map_or(i64::MIN, |time| time.timestamp_millis())
}

/// A declaration's time as messages and filters use it: when it was
/// settled, or else last sent (on the alias `d`).
const SETTLED_OR_SENT: &str = "COALESCE(d.settled_at,
     (SELECT max(c.sent_at) FROM calls c WHERE c.declaration_id = d.id), 0)";

/// Reads share a read transaction for this many queries at most, or this
/// long: what other processes commit meanwhile is seen a moment later.
const READ_GROUP: u32 = 512;
const READ_AGE: Duration = Duration::from_millis(100);

/// The ledger's own connection, and the read transaction it holds open.
struct Session {
    connection: Connection,
    reading: Option<(std::time::Instant, u32)>,
}

impl Session {
    fn end_reading(&mut self) -> rusqlite::Result<()> {
        if self.reading.take().is_some() {
            self.connection.execute_batch("COMMIT")?;
        }
        Ok(())
    }
}

/// A declaration row as the decisions read it.
struct Held {
    status: Status,
    body: i64,
    fixed: i64,
    /// When it was last sent (settled, for an outcome replayed from a
    /// journal whose call never reached the ledger), in milliseconds.
    last_call_at: Option<i64>,
    earlier: Earlier,
    result: ResultRow,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` for the scope of `endpoint`
    /// and `client_id`, migrating its schema when it is older.
    pub fn open(path: &Path, endpoint: &str, client_id: &str) -> Result<Ledger, LedgerError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| LedgerError::Key {
                path: folder.to_owned(),
                source,
            })?;
        }
        let key = load_key(path)?;
        let open_error = |source| LedgerError::Open {
            path: path.to_owned(),
            source,
        };
        let mut connection = Connection::open(path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Switching a new file to WAL can find another process creating
        // it; SQLite answers "locked" then without waiting, so it waits here.
        let started = std::time::Instant::now();
        loop {
            let prepared = connection
                .query_row("PRAGMA journal_mode = WAL", [], |row| {
                    row.get::<_, String>(0)
                })
                .and_then(|_| connection.execute_batch(CONNECTION_PRAGMAS));
            match prepared {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(failure, _))
                    if matches!(
                        failure.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(open_error(error)),
            }
        }
        schema::migrate(&mut connection, path)?;
        let ledger = Ledger {
            path: path.to_owned(),
            connection: Mutex::new(Session {
                connection,
                reading: None,
            }),
            key,
            scope: 0,
            run: None,
            identity: file_identity(path),
        };
        let scope = ledger.with(|c| {
            c.execute(
                "INSERT INTO scopes(endpoint, client_id) VALUES (?1, ?2)
                 ON CONFLICT(endpoint, client_id) DO NOTHING",
                params![endpoint, client_id],
            )?;
            c.query_row(
                "SELECT id FROM scopes WHERE endpoint = ?1 AND client_id = ?2",
                params![endpoint, client_id],
                |row| row.get(0),
            )
        })?;
        Ok(Ledger { scope, ..ledger })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let mut session = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let sql_error = |source| LedgerError::Sql {
            path: self.path.clone(),
            source,
        };
        session.end_reading().map_err(sql_error)?;
        work(&mut session.connection).map_err(sql_error)
    }

    /// Runs a read in the current read transaction: the decisions about a
    /// run's rows share one for up to `READ_GROUP` rows or `READ_AGE`,
    /// instead of taking and dropping SQLite's locks per query.
    fn with_read<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let mut session = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let sql_error = |source| LedgerError::Sql {
            path: self.path.clone(),
            source,
        };
        if session
            .reading
            .is_some_and(|(since, reads)| reads >= READ_GROUP || since.elapsed() >= READ_AGE)
        {
            session.end_reading().map_err(sql_error)?;
        }
        if session.reading.is_none() {
            session
                .connection
                .execute_batch("BEGIN")
                .map_err(sql_error)?;
            session.reading = Some((std::time::Instant::now(), 0));
        }
        if let Some((_, reads)) = &mut session.reading {
            *reads += 1;
        }
        work(&mut session.connection).map_err(sql_error)
    }

    /// Ends the read transaction the decisions share, so that it does not
    /// pin the write-ahead log while the reader waits (its rows wait for the
    /// sending pool, or the input is read to its end).
    pub fn pause_reading(&self) -> Result<(), LedgerError> {
        let mut session = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        session.end_reading().map_err(|source| LedgerError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    /// Records a run (its out folder and input); later records name it.
    pub fn begin_run(
        &mut self,
        out: &Path,
        input: &Path,
        input_sha256: &str,
    ) -> Result<(), LedgerError> {
        let out = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_owned());
        let scope = self.scope;
        let run = self.with(|c| {
            c.execute(
                "INSERT INTO runs(scope_id, out_dir, input, input_sha256, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    scope,
                    out.display().to_string(),
                    input.display().to_string(),
                    input_sha256,
                    ledger_time(Utc::now())
                ],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        self.run = Some(run);
        Ok(())
    }

    /// The fingerprints of a request and its exact bytes.
    pub fn fingerprints(&self, request: &DeclareRequest, body: &[u8]) -> Fingerprints {
        fingerprints(&self.key, request, body)
    }

    fn held(&self, request_id: &str) -> Result<Option<Held>, LedgerError> {
        let scope = self.scope;
        self.with_read(|c| {
            c.prepare_cached(&format!(
                "SELECT d.status, d.body_fp, d.fixed_fp,
                        COALESCE((SELECT max(c.sent_at) FROM calls c WHERE c.declaration_id = d.id),
                                 d.settled_at),
                        COALESCE(r.out_dir, ''), d.input_row, {SETTLED_OR_SENT},
                        d.payment_request_id, d.reference_order_id, t.customs_code, d.amount,
                        COALESCE(code.text, ''), COALESCE(message.text, ''), d.psp_payment_id,
                        d.psp_declaration_request_id, COALESCE(customs.text, ''),
                        COALESCE(channel.text, ''), d.clearing_transaction_id,
                        d.psp_order_amount, COALESCE(identity.text, '')
                 FROM declarations d JOIN targets t ON t.id = d.target_id
                      LEFT JOIN runs r ON r.id = d.run_id
                      LEFT JOIN texts code ON code.id = d.result_code
                      LEFT JOIN texts message ON message.id = d.result_message
                      LEFT JOIN texts customs ON customs.id = d.psp_customs_code
                      LEFT JOIN texts channel ON channel.id = d.clearing_channel
                      LEFT JOIN texts identity ON identity.id = d.identity_check_result
                 WHERE d.scope_id = ?1 AND d.request_id = ?2"
            ))?
            .query_row(params![scope, request_id], |row| {
                let status: Status = row.get(0)?;
                Ok(Held {
                    status,
                    body: row.get(1)?,
                    fixed: row.get(2)?,
                    last_call_at: row.get(3)?,
                    earlier: Earlier {
                        run: row.get(4)?,
                        row: row.get(5)?,
                        request_id: request_id.to_owned(),
                        at: time_text(row.get(6)?),
                    },
                    result: ResultRow {
                        customs_declaration_request_id: request_id.to_owned(),
                        payment_request_id: row.get(7)?,
                        reference_order_id: row.get(8)?,
                        customs_code: row.get(9)?,
                        declaration_amount: row.get(10)?,
                        result_status: status,
                        result_code: row.get(11)?,
                        result_message: row.get(12)?,
                        psp_payment_id: row.get(13)?,
                        psp_declaration_request_id: row.get(14)?,
                        psp_customs_code: row.get(15)?,
                        clearing_channel: row.get(16)?,
                        clearing_transaction_id: row.get(17)?,
                        psp_order_amount: row.get(18)?,
                        identity_check_result: row.get(19)?,
                        source: ResultSource::Ledger,
                        ..ResultRow::default()
                    },
                })
            })
            .optional()
        })
    }

    /// The contract's table: what to do with a valid row, given what the
    /// ledger holds for its request ID and its order.
    pub fn decide(
        &self,
        request: &DeclareRequest,
        body: &[u8],
        now: DateTime<Utc>,
        retransmit_wait: Duration,
        resend_failed: bool,
    ) -> Result<Decision, LedgerError> {
        let request_id = &request.customs_declaration_request_id;
        let fingerprints = self.fingerprints(request, body);
        if let Some(held) = self.held(request_id)? {
            let identical = held.body == fingerprints.body;
            match held.status {
                Status::S if identical => return Ok(Decision::Known(Box::new(held.result))),
                Status::S if held.fixed == fingerprints.fixed => {
                    let last_call = held
                        .last_call_at
                        .and_then(DateTime::from_timestamp_millis)
                        .unwrap_or(now);
                    let allowed_from = last_call
                        + chrono::Duration::from_std(retransmit_wait)
                            .unwrap_or(chrono::Duration::MAX);
                    return Ok(if now >= allowed_from {
                        Decision::Send {
                            retransmission: true,
                        }
                    } else {
                        Decision::Refused(Refusal::TooEarly {
                            earlier: held.earlier,
                            allowed_from,
                        })
                    });
                }
                Status::S => {
                    return Ok(Decision::Refused(Refusal::Changed {
                        earlier: held.earlier,
                    }));
                }
                Status::F if identical && !resend_failed => {
                    return Ok(Decision::Known(Box::new(held.result)));
                }
                Status::F | Status::U => {}
            }
        }
        let scope = self.scope;
        let order = request.declaration_order_id();
        let customs = request.customs.customs_code.to_uppercase();
        let other = self.with_read(|c| {
            c.prepare_cached(&format!(
                "SELECT d.request_id, COALESCE(r.out_dir, ''), d.input_row, {SETTLED_OR_SENT}
                 FROM declarations d INDEXED BY declarations_by_order
                      JOIN targets t ON t.id = d.target_id
                      LEFT JOIN runs r ON r.id = d.run_id
                 WHERE d.scope_id = ?1 AND ({ORDER_OF}) = ?2 AND d.status = 'S'
                   AND t.customs_code = ?3 AND d.request_id <> ?4
                 LIMIT 1",
                ORDER_OF = schema::ORDER_OF
            ))?
            .query_row(params![scope, order, customs, request_id], |row| {
                Ok(Earlier {
                    request_id: row.get(0)?,
                    run: row.get(1)?,
                    row: row.get(2)?,
                    at: time_text(row.get(3)?),
                })
            })
            .optional()
        })?;
        Ok(match other {
            Some(earlier) => Decision::Refused(Refusal::OrderDeclared { earlier }),
            None => Decision::Send {
                retransmission: false,
            },
        })
    }

    /// Records a request about to be sent: the call, and the request ID's
    /// row (new ones as U; an S keeps its body until a retransmission is
    /// answered S).
    pub fn record_call(
        &self,
        line: u64,
        request: &DeclareRequest,
        body: &[u8],
        retransmission: bool,
    ) -> Result<(), LedgerError> {
        let mut writes = self.writes();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            writes.call(&tx, line, request, body, retransmission)?;
            tx.commit()
        })
    }

    /// Records a row's final outcome (S or F) with the answer it came
    /// from. An S replaces the ID's row (a retransmission's new body with
    /// it); an F never overwrites an S (a refused retransmission leaves the
    /// declaration as it was).
    pub fn record_outcome(
        &self,
        result: &ResultRow,
        request: &DeclareRequest,
        body: &[u8],
        answer: &str,
    ) -> Result<(), LedgerError> {
        let mut writes = self.writes();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            writes.outcome(&tx, result, request, body, answer)?;
            tx.commit()
        })
    }

    fn writes(&self) -> Writes {
        Writes {
            key: self.key.clone(),
            scope: self.scope,
            run: self.run,
            texts: answers::Texts::default(),
        }
    }

    /// A writer on a connection of its own, for a run: calls and outcomes
    /// are queued and committed in groups by its thread, so that a run
    /// never waits for the disk per row; each outcome's `after` runs once
    /// its group is committed (or has failed).
    pub fn writer(&self) -> Result<LedgerWriter, LedgerError> {
        let open_error = |source| LedgerError::Open {
            path: self.path.clone(),
            source,
        };
        let connection = Connection::open(&self.path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        connection
            .execute_batch(CONNECTION_PRAGMAS)
            .map_err(open_error)?;
        LedgerWriter::start(connection, self.writes(), self.path.clone(), self.identity)
    }

    /// Makes sure a final outcome replayed from a run's journal is in the
    /// ledger (a kill may have come between the journal and the ledger).
    pub fn ensure_outcome(
        &self,
        result: &ResultRow,
        request: &DeclareRequest,
        body: &[u8],
    ) -> Result<(), LedgerError> {
        if result.result_status == Status::U || result.source != ResultSource::Api {
            return Ok(());
        }
        let held = self.held(&result.customs_declaration_request_id)?;
        let fingerprints = self.fingerprints(request, body);
        let recorded = held.is_some_and(|held| {
            held.status == result.result_status && held.body == fingerprints.body
                || held.status == Status::S
        });
        if recorded {
            return Ok(());
        }
        self.record_outcome(result, request, body, "")
    }

    /// Settles a request ID the ledger holds as U, which an inquiry found
    /// declared with the row's content, as S.
    pub fn settle_by_inquiry(&self, result: &ResultRow) -> Result<(), LedgerError> {
        self.settle(
            &result.customs_declaration_request_id,
            "<> 'S'",
            &result.result_code,
            &result.result_message,
            &result.psp_payment_id,
            &result.psp_declaration_request_id,
        )
    }

    /// Sets a declaration S with an inquiry's answer when its status
    /// matches `condition`, the earlier answers stored against its fields
    /// keeping theirs.
    fn settle(
        &self,
        request_id: &str,
        condition: &str,
        code: &str,
        message: &str,
        psp_payment_id: &str,
        psp_declaration_request_id: &str,
    ) -> Result<(), LedgerError> {
        let now = Utc::now().timestamp_millis();
        let scope = self.scope;
        let mut writes = self.writes();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let declaration: Option<i64> = tx
                .prepare_cached(&format!(
                    "SELECT id FROM declarations
                     WHERE scope_id = ?1 AND request_id = ?2 AND status {condition}"
                ))?
                .query_row(params![scope, request_id], |row| row.get(0))
                .optional()?;
            let Some(declaration) = declaration else {
                return Ok(());
            };
            tx.prepare_cached(answers::FREEZE_ANSWERS_SQL)?
                .execute(params![declaration])?;
            let code = writes.texts.id(&tx, code)?;
            let message = writes.texts.id(&tx, message)?;
            tx.prepare_cached(
                "UPDATE declarations SET status = 'S', result_code = ?2, result_message = ?3,
                     psp_payment_id = ?4, psp_declaration_request_id = ?5, settled_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                declaration,
                code,
                message,
                psp_payment_id,
                psp_declaration_request_id,
                now
            ])?;
            tx.commit()
        })
    }

    /// Records what an inquiry said about a request ID: an inquiry row,
    /// which becomes its declaration's customs outcome.
    pub fn record_inquiry(&self, outcome: &CustomsOutcome) -> Result<(), LedgerError> {
        let now = Utc::now().timestamp_millis();
        let (scope, run) = (self.scope, self.run);
        let mut writes = self.writes();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let declaration: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM declarations WHERE scope_id = ?1 AND request_id = ?2",
                )?
                .query_row(params![scope, outcome.request_id], |row| row.get(0))
                .optional()?;
            let status = writes.texts.id(&tx, &outcome.status)?;
            let code = writes.texts.id(&tx, &outcome.result_code)?;
            let description = writes.texts.id(&tx, &outcome.result_description)?;
            tx.prepare_cached(schema::INSERT_INQUIRY_SQL)?
                .execute(params![
                    scope,
                    declaration,
                    declaration.is_none().then_some(&outcome.request_id),
                    run,
                    now,
                    status,
                    code,
                    description,
                    outcome.returned_time,
                    outcome.modified_time
                ])?;
            if let Some(declaration) = declaration {
                tx.prepare_cached("UPDATE declarations SET inquiry_id = ?2 WHERE id = ?1")?
                    .execute(params![declaration, tx.last_insert_rowid()])?;
            }
            tx.commit()
        })
    }
}

/// A status read back from the ledger: a value that is not S, F or U is
/// an error, never silently taken for U.
impl rusqlite::types::FromSql for Status {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        Status::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("the status \"{text}\" is not S, F or U").into(),
            )
        })
    }
}

#[cfg(test)]
mod tests;
