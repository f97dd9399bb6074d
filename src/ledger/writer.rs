//! The ledger's writes: a call about to be sent and an answer that
//! settles it, as SQL, and the writer thread that commits them in groups
//! (what arrives within a few milliseconds, one transaction), so that a
//! run never waits for the disk per row. An outcome's callback runs once
//! its group is committed, or has failed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::hmac;
use chrono::Utc;
use rusqlite::{Connection, params};

use super::keys::{fingerprints, masked_certificate};
use super::{LedgerError, file_identity, ledger_time};
use crate::outcome::{ResultRow, Status};
use crate::protocol::DeclareRequest;

/// The writes of one scope and run, shared by the ledger's own methods and
/// its writer thread.
pub(super) struct Writes {
    pub(super) key: hmac::Key,
    pub(super) scope: i64,
    pub(super) run: Option<i64>,
}

impl Writes {
    pub(super) fn call(
        &self,
        tx: &Connection,
        line: u64,
        request: &DeclareRequest,
        body: &[u8],
        retransmission: bool,
    ) -> rusqlite::Result<()> {
        let fingerprints = fingerprints(&self.key, request, body);
        let now = ledger_time(Utc::now());
        let (scope, run) = (self.scope, self.run);
        let certificate = masked_certificate(request);
        tx.prepare_cached(CALL_SQL)?.execute(params![
            scope,
            request.customs_declaration_request_id,
            run,
            line,
            now,
            fingerprints.body,
            retransmission
        ])?;
        tx.prepare_cached(CALL_DECLARATION_SQL)?.execute(params![
            scope,
            request.customs_declaration_request_id,
            request.payment_request_id,
            request.reference_order_id.as_deref().unwrap_or_default(),
            request.declaration_order_id(),
            request.customs.customs_code.to_uppercase(),
            request.merchant_customs_info.merchant_customs_code,
            request.merchant_customs_info.merchant_customs_name,
            request.declaration_amount.value,
            certificate,
            fingerprints.body,
            fingerprints.fixed,
            run,
            line,
            now
        ])?;
        Ok(())
    }

    pub(super) fn outcome(
        &self,
        tx: &Connection,
        result: &ResultRow,
        request: &DeclareRequest,
        body: &[u8],
        answer: &str,
    ) -> rusqlite::Result<()> {
        let now = ledger_time(Utc::now());
        let (scope, run) = (self.scope, self.run);
        let status = result.result_status.as_str();
        tx.prepare_cached(OUTCOME_CALL_SQL)?.execute(params![
            scope,
            result.customs_declaration_request_id,
            status,
            result.result_code,
            result.result_message,
            answer,
            now
        ])?;
        if result.result_status == Status::U {
            return Ok(());
        }
        let fingerprints = fingerprints(&self.key, request, body);
        let updated = tx.prepare_cached(OUTCOME_SAME_BODY_SQL)?.execute(params![
            scope,
            result.customs_declaration_request_id,
            fingerprints.body,
            status,
            result.result_code,
            result.result_message,
            result.psp_payment_id,
            result.psp_declaration_request_id,
            result.psp_customs_code,
            result.clearing_channel,
            result.clearing_transaction_id,
            result.psp_order_amount,
            result.identity_check_result,
            run,
            result.row,
            now
        ])?;
        if updated > 0 {
            return Ok(());
        }
        tx.prepare_cached(OUTCOME_DECLARATION_SQL)?
            .execute(params![
                scope,
                result.customs_declaration_request_id,
                request.payment_request_id,
                request.reference_order_id.as_deref().unwrap_or_default(),
                request.declaration_order_id(),
                request.customs.customs_code.to_uppercase(),
                request.merchant_customs_info.merchant_customs_code,
                request.merchant_customs_info.merchant_customs_name,
                request.declaration_amount.value,
                masked_certificate(request),
                fingerprints.body,
                fingerprints.fixed,
                status,
                result.result_code,
                result.result_message,
                result.psp_payment_id,
                result.psp_declaration_request_id,
                result.psp_customs_code,
                result.clearing_channel,
                result.clearing_transaction_id,
                result.psp_order_amount,
                result.identity_check_result,
                run,
                result.row,
                now
            ])?;
        Ok(())
    }
}

const CALL_SQL: &str =
    "INSERT INTO calls(scope_id, request_id, run_id, input_row, sent_at, body_hmac,
                                   retransmission)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
/// A new request ID's row, as U; a known one only gets its last call (its
/// body is replaced when an answer settles it), so that the indexes are not
/// rewritten per call.
const CALL_DECLARATION_SQL: &str =
    "INSERT INTO declarations(scope_id, request_id, payment_request_id,
                     reference_order_id, order_id, customs_code, merchant_customs_code,
                     merchant_customs_name, amount, certificate_no, body_hmac, fixed_hmac,
                     status, run_id, input_row, first_call_at, last_call_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'U', ?13, ?14, ?15, ?15)
                 ON CONFLICT(scope_id, request_id) DO UPDATE SET
                     last_call_at = excluded.last_call_at";
const OUTCOME_CALL_SQL: &str =
    "UPDATE calls SET status = ?3, result_code = ?4, result_message = ?5,
                                  answer = ?6, answered_at = ?7
                 WHERE id = (SELECT max(id) FROM calls WHERE scope_id = ?1 AND request_id = ?2)";
/// An answer for the body the row already holds: no indexed column changes.
const OUTCOME_SAME_BODY_SQL: &str = "UPDATE declarations SET status = ?4, result_code = ?5,
                     result_message = ?6, psp_payment_id = ?7, psp_declaration_request_id = ?8,
                     psp_customs_code = ?9, clearing_channel = ?10, clearing_transaction_id = ?11,
                     psp_order_amount = ?12, identity_check_result = ?13, run_id = ?14,
                     input_row = ?15, settled_at = ?16
                 WHERE scope_id = ?1 AND request_id = ?2 AND body_hmac = ?3
                   AND (status <> 'S' OR ?4 = 'S')";
/// A new body (a retransmission) replaces the old one, keeps the amount it
/// replaced, and forgets the old body's customs outcome: customs decides on
/// the new one, which an inquiry then asks about.
const OUTCOME_DECLARATION_SQL: &str =
    "INSERT INTO declarations(scope_id, request_id, payment_request_id,
                         reference_order_id, order_id, customs_code, merchant_customs_code,
                         merchant_customs_name, amount, certificate_no, body_hmac, fixed_hmac,
                         status, result_code, result_message, psp_payment_id,
                         psp_declaration_request_id, psp_customs_code, clearing_channel,
                         clearing_transaction_id, psp_order_amount, identity_check_result,
                         run_id, input_row, first_call_at, last_call_at, settled_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                             ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?25, ?25)
                     ON CONFLICT(scope_id, request_id) DO UPDATE SET
                         payment_request_id = excluded.payment_request_id,
                         reference_order_id = excluded.reference_order_id,
                         order_id = excluded.order_id,
                         customs_code = excluded.customs_code,
                         merchant_customs_code = excluded.merchant_customs_code,
                         merchant_customs_name = excluded.merchant_customs_name,
                         earlier_amount = CASE WHEN declarations.amount <> excluded.amount
                             THEN declarations.amount ELSE declarations.earlier_amount END,
                         amount_changed_at = CASE WHEN declarations.amount <> excluded.amount
                             THEN excluded.settled_at ELSE declarations.amount_changed_at END,
                         amount = excluded.amount,
                         customs_status = CASE WHEN declarations.body_hmac <> excluded.body_hmac
                             THEN NULL ELSE declarations.customs_status END,
                         customs_result_code = CASE WHEN declarations.body_hmac <> excluded.body_hmac
                             THEN NULL ELSE declarations.customs_result_code END,
                         customs_result_description = CASE WHEN declarations.body_hmac <> excluded.body_hmac
                             THEN NULL ELSE declarations.customs_result_description END,
                         customs_result_returned_time = CASE WHEN declarations.body_hmac <> excluded.body_hmac
                             THEN NULL ELSE declarations.customs_result_returned_time END,
                         customs_modified_time = CASE WHEN declarations.body_hmac <> excluded.body_hmac
                             THEN NULL ELSE declarations.customs_modified_time END,
                         inquired_at = CASE WHEN declarations.body_hmac <> excluded.body_hmac
                             THEN NULL ELSE declarations.inquired_at END,
                         certificate_no = excluded.certificate_no,
                         body_hmac = excluded.body_hmac,
                         fixed_hmac = excluded.fixed_hmac,
                         status = excluded.status,
                         result_code = excluded.result_code,
                         result_message = excluded.result_message,
                         psp_payment_id = excluded.psp_payment_id,
                         psp_declaration_request_id = excluded.psp_declaration_request_id,
                         psp_customs_code = excluded.psp_customs_code,
                         clearing_channel = excluded.clearing_channel,
                         clearing_transaction_id = excluded.clearing_transaction_id,
                         psp_order_amount = excluded.psp_order_amount,
                         identity_check_result = excluded.identity_check_result,
                         run_id = excluded.run_id,
                         input_row = excluded.input_row,
                         settled_at = excluded.settled_at
                     WHERE declarations.status <> 'S' OR excluded.status = 'S'";

/// Called once an outcome's group is committed, or has failed.
pub type AfterCommit = Box<dyn FnOnce(Result<(), &LedgerError>) + Send>;

/// A write queued for the writer thread.
enum Queued {
    Call(Box<QueuedCall>),
    Outcome(Box<QueuedOutcome>),
}

struct QueuedCall {
    line: u64,
    request: DeclareRequest,
    body: Vec<u8>,
    retransmission: bool,
}

struct QueuedOutcome {
    result: ResultRow,
    request: DeclareRequest,
    body: Vec<u8>,
    answer: String,
    after: AfterCommit,
}

/// A write-ahead log past this size is checkpointed and truncated after the
/// next group, so that it stays a few MB however long the run.
const WAL_CHECKPOINT_BYTES: u64 = 4 << 20;

/// Writes queued at most in one group (one transaction), and how long a
/// group waits for more.
const GROUP: usize = 512;
const GROUP_WAIT: Duration = Duration::from_millis(5);

/// Writes waiting for the writer at most: past it, the sending pool waits
/// for the ledger, so that a run's memory does not grow with its rows when
/// answers come faster than the disk takes them.
const QUEUED: usize = 2 * GROUP;

/// The writer thread: takes what is queued, writes it in one transaction,
/// commits, then tells the outcomes. After a failure nothing more is
/// written and every later outcome is told the failure.
fn write_groups(
    mut connection: Connection,
    writes: &Writes,
    path: &Path,
    identity: Option<(u64, u64)>,
    receiver: &std::sync::mpsc::Receiver<Queued>,
) {
    let mut failure: Option<LedgerError> = None;
    while let Ok(first) = receiver.recv() {
        // What arrives within a few milliseconds joins the group: one
        // commit for many rows instead of one each.
        let mut group = vec![first];
        let deadline = std::time::Instant::now() + GROUP_WAIT;
        while group.len() < GROUP {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match receiver.recv_timeout(left) {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        // SQLite goes on writing to a file that was unlinked or renamed
        // away; each group first checks that the path still names it.
        if failure.is_none() && identity.is_some() && file_identity(path) != identity {
            failure = Some(LedgerError::Replaced {
                path: path.to_owned(),
            });
        }
        if failure.is_none() {
            let written = (|| {
                let tx = connection.transaction()?;
                for write in &group {
                    match write {
                        Queued::Call(call) => writes.call(
                            &tx,
                            call.line,
                            &call.request,
                            &call.body,
                            call.retransmission,
                        )?,
                        Queued::Outcome(outcome) => writes.outcome(
                            &tx,
                            &outcome.result,
                            &outcome.request,
                            &outcome.body,
                            &outcome.answer,
                        )?,
                    }
                }
                tx.commit()
            })();
            if let Err(source) = written {
                failure = Some(LedgerError::Sql {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        if failure.is_none() {
            checkpoint_when_large(&connection, path);
        }
        for write in group {
            if let Queued::Outcome(outcome) = write {
                (outcome.after)(failure.as_ref().map_or(Ok(()), Err));
            }
        }
    }
}

/// Copies the write-ahead log into the database and truncates it once it
/// has grown past `WAL_CHECKPOINT_BYTES`. It waits (within the busy timeout)
/// for readers to leave the log; one that cannot finish now is tried again
/// after the next group, and is never a failure of the run.
fn checkpoint_when_large(connection: &Connection, path: &Path) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let large = std::fs::metadata(&wal).is_ok_and(|wal| wal.len() > WAL_CHECKPOINT_BYTES);
    if large
        && let Err(error) = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            row.get::<_, i64>(0)
        })
    {
        tracing::debug!("the ledger's log was not checkpointed now: {error}");
    }
}

/// The run's handle on the ledger's writer thread.
pub struct LedgerWriter {
    sender: Option<std::sync::mpsc::SyncSender<Queued>>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl LedgerWriter {
    /// Starts the writer thread on `connection`, its own.
    pub(super) fn start(
        connection: Connection,
        writes: Writes,
        path: PathBuf,
        identity: Option<(u64, u64)>,
    ) -> Result<LedgerWriter, LedgerError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Queued>(QUEUED);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || write_groups(connection, &writes, &thread_path, identity, &receiver))
            .map_err(|source| LedgerError::Key {
                path: path.clone(),
                source,
            })?;
        Ok(LedgerWriter {
            sender: Some(sender),
            thread: Some(thread),
            path,
        })
    }

    /// Queues a call about to be sent (the journal holds it already).
    pub fn call(&self, line: u64, request: &DeclareRequest, body: &[u8], retransmission: bool) {
        if let Some(sender) = &self.sender {
            // A stopped writer has told its failure to every outcome.
            let _ = sender.send(Queued::Call(Box::new(QueuedCall {
                line,
                request: request.clone(),
                body: body.to_vec(),
                retransmission,
            })));
        }
    }

    /// Queues an outcome; `after` runs once it is committed (or not).
    pub fn outcome(
        &self,
        result: ResultRow,
        request: &DeclareRequest,
        body: &[u8],
        answer: &str,
        after: AfterCommit,
    ) {
        let write = Queued::Outcome(Box::new(QueuedOutcome {
            result,
            request: request.clone(),
            body: body.to_vec(),
            answer: answer.to_owned(),
            after,
        }));
        let sent = self.sender.as_ref().map(|sender| sender.send(write));
        if let Some(Err(std::sync::mpsc::SendError(Queued::Outcome(outcome)))) = sent {
            (outcome.after)(Err(&LedgerError::Key {
                path: self.path.clone(),
                source: std::io::Error::other("the ledger's writer stopped"),
            }));
        }
    }

    /// Waits until everything queued is written and told.
    pub fn finish(mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
