//! The ledger's writes: a call about to be sent and an answer that
//! settles it, as SQL, and the writer thread that commits them in groups
//! (what arrives within a few milliseconds, one transaction), so that a
//! run never waits for the disk per row. An outcome's callback runs once
//! its group is committed, or has failed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::hmac;
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::answers::{AnswerValues, FREEZE_ANSWERS_SQL, Texts, encode, psp_values};
use super::keys::{fingerprints, masked_certificate};
use super::{LedgerError, file_identity};
use crate::outcome::{ResultRow, Status};
use crate::protocol::{DeclareRequest, IsSplit};

/// The writes of one scope and run, shared by the ledger's own methods and
/// its writer thread.
pub(super) struct Writes {
    pub(super) key: hmac::Key,
    pub(super) scope: i64,
    pub(super) run: Option<i64>,
    pub(super) texts: Texts,
}

/// Now as the ledger stores times: milliseconds since the epoch.
pub(super) fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

impl Writes {
    /// The request ID's declaration (a new one as U), then the call.
    pub(super) fn call(
        &mut self,
        tx: &Connection,
        line: u64,
        request: &DeclareRequest,
        body: &[u8],
        retransmission: bool,
    ) -> rusqlite::Result<()> {
        let fingerprints = fingerprints(&self.key, request, body);
        let (scope, run) = (self.scope, self.run);
        let target = self.texts.target(
            tx,
            &request.customs.customs_code.to_uppercase(),
            &request.merchant_customs_info.merchant_customs_code,
            &request.merchant_customs_info.merchant_customs_name,
        )?;
        tx.prepare_cached(CALL_DECLARATION_SQL)?.execute(params![
            scope,
            request.customs_declaration_request_id,
            request.payment_request_id,
            request.reference_order_id.as_deref().unwrap_or_default(),
            is_split(request),
            target,
            request.declaration_amount.value,
            masked_certificate(request),
            fingerprints.body,
            fingerprints.fixed,
            run,
            line,
        ])?;
        tx.prepare_cached(CALL_SQL)?.execute(params![
            scope,
            request.customs_declaration_request_id,
            run,
            line,
            now_millis(),
            fingerprints.body,
            retransmission
        ])?;
        Ok(())
    }

    /// A call's answer: on the call, and (S or F) on the declaration.
    pub(super) fn outcome(
        &mut self,
        tx: &Connection,
        result: &ResultRow,
        request: &DeclareRequest,
        body: &[u8],
        answer: &str,
    ) -> rusqlite::Result<()> {
        let now = now_millis();
        let (scope, run) = (self.scope, self.run);
        let status = result.result_status.as_str();
        let request_id = &result.customs_declaration_request_id;
        let code = self.texts.id(tx, &result.result_code)?;
        let message = self.texts.id(tx, &result.result_message)?;
        let held: Option<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, body_fp FROM declarations WHERE scope_id = ?1 AND request_id = ?2",
            )?
            .query_row(params![scope, request_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        // Whether the declaration now holds this answer's fields.
        let mut took_answer = false;
        if result.result_status != Status::U {
            let fingerprints = fingerprints(&self.key, request, body);
            let psp_customs_code = self.texts.id(tx, &result.psp_customs_code)?;
            let clearing_channel = self.texts.id(tx, &result.clearing_channel)?;
            let identity = self.texts.id(tx, &result.identity_check_result)?;
            if let Some((declaration, _)) = held {
                tx.prepare_cached(FREEZE_ANSWERS_SQL)?
                    .execute(params![declaration])?;
            }
            match held {
                Some((declaration, held_body)) if held_body == fingerprints.body => {
                    took_answer = tx.prepare_cached(OUTCOME_SAME_BODY_SQL)?.execute(params![
                        declaration,
                        status,
                        code,
                        message,
                        result.psp_payment_id,
                        result.psp_declaration_request_id,
                        psp_customs_code,
                        clearing_channel,
                        result.clearing_transaction_id,
                        result.psp_order_amount,
                        identity,
                        run,
                        result.row,
                        now
                    ])? > 0;
                }
                _ => {
                    if let Some((declaration, held_body)) = held {
                        // The calls of the old body keep it.
                        tx.prepare_cached(
                            "UPDATE calls SET body_fp = ?2
                             WHERE declaration_id = ?1 AND body_fp IS NULL",
                        )?
                        .execute(params![declaration, held_body])?;
                    }
                    let target = self.texts.target(
                        tx,
                        &request.customs.customs_code.to_uppercase(),
                        &request.merchant_customs_info.merchant_customs_code,
                        &request.merchant_customs_info.merchant_customs_name,
                    )?;
                    took_answer = tx
                        .prepare_cached(OUTCOME_DECLARATION_SQL)?
                        .execute(params![
                            scope,
                            request_id,
                            request.payment_request_id,
                            request.reference_order_id.as_deref().unwrap_or_default(),
                            is_split(request),
                            target,
                            request.declaration_amount.value,
                            masked_certificate(request),
                            fingerprints.body,
                            fingerprints.fixed,
                            status,
                            code,
                            message,
                            result.psp_payment_id,
                            result.psp_declaration_request_id,
                            psp_customs_code,
                            clearing_channel,
                            result.clearing_transaction_id,
                            result.psp_order_amount,
                            identity,
                            run,
                            result.row,
                            now
                        ])?
                        > 0;
                }
            }
        }
        let Some((declaration, _)) = held else {
            // An outcome replayed from a journal may have no call here.
            return Ok(());
        };
        // The answer is shaped against the declaration as it now stands:
        // its own fields when it just took them, else read back.
        let values = if took_answer {
            [
                &result.psp_payment_id,
                &result.psp_declaration_request_id,
                &result.psp_customs_code,
                &result.clearing_transaction_id,
                &result.clearing_channel,
                &result.psp_order_amount,
                &result.identity_check_result,
            ]
            .map(String::clone)
        } else {
            tx.prepare_cached(DECLARATION_VALUES_SQL)?
                .query_row(params![declaration], |row| psp_values(row, 0))?
        };
        let stored = encode(
            answer,
            &AnswerValues {
                own: [&result.result_code, &result.result_message, status],
                declaration: values.each_ref().map(String::as_str),
            },
        );
        let shape = match &stored.shape {
            Some(shape) => self.texts.shape_id(tx, shape)?,
            None => None,
        };
        let text = match (&stored.shape, shape) {
            (Some(_), None) => Some(answer),
            _ => stored.text.as_deref(),
        };
        tx.prepare_cached(OUTCOME_CALL_SQL)?.execute(params![
            declaration,
            status,
            code,
            message,
            now,
            shape,
            text
        ])?;
        Ok(())
    }
}

/// Whether the request's order is its `referenceOrderId` (else its
/// `paymentRequestId`), as the ledger's order index reads it.
fn is_split(request: &DeclareRequest) -> bool {
    matches!(
        (&request.reference_order_id, &request.is_split),
        (Some(_), IsSplit::Yes)
    )
}

/// A new request ID's row, as U; a known one is left as it is (its body is
/// replaced when an answer settles it), so that the indexes are not
/// rewritten per call.
const CALL_DECLARATION_SQL: &str = "INSERT INTO declarations(scope_id, request_id,
         payment_request_id, reference_order_id, split, target_id, amount, certificate_no,
         body_fp, fixed_fp, status, run_id, input_row)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'U', ?11, ?12)
     ON CONFLICT(scope_id, request_id) DO NOTHING";
/// The call, numbered after its declaration's earlier ones; its body only
/// when it is not its declaration's.
const CALL_SQL: &str = "INSERT INTO calls(declaration_id, seq, run_id, input_row, sent_at,
         body_fp, retransmission)
     SELECT d.id, COALESCE((SELECT max(c.seq) FROM calls c WHERE c.declaration_id = d.id), 0) + 1,
            ?3, ?4, ?5, CASE WHEN d.body_fp = ?6 THEN NULL ELSE ?6 END, ?7
     FROM declarations d WHERE d.scope_id = ?1 AND d.request_id = ?2";
/// The answer, on its declaration's last call.
const OUTCOME_CALL_SQL: &str = "UPDATE calls SET status = ?2, result_code = ?3,
         result_message = ?4, answered_at = ?5, answer_shape = ?6, answer_values = NULL,
         answer_text = ?7
     WHERE declaration_id = ?1
       AND seq = (SELECT max(seq) FROM calls WHERE declaration_id = ?1)";
/// The declaration's PSP values, in `AnswerValues` order.
const DECLARATION_VALUES_SQL: &str = concat!(
    "SELECT ",
    psp_values_of_d!(),
    " FROM declarations d WHERE d.id = ?1"
);
/// An answer for the body the row already holds: no indexed column
/// changes, unless it settles the row as S (the order index holds only S).
const OUTCOME_SAME_BODY_SQL: &str = "UPDATE declarations SET status = ?2, result_code = ?3,
         result_message = ?4, psp_payment_id = ?5, psp_declaration_request_id = ?6,
         psp_customs_code = ?7, clearing_channel = ?8, clearing_transaction_id = ?9,
         psp_order_amount = ?10, identity_check_result = ?11, run_id = ?12, input_row = ?13,
         settled_at = ?14
     WHERE id = ?1 AND (status <> 'S' OR ?2 = 'S')";
/// A new body (a retransmission) replaces the old one, keeps the amount it
/// replaced, and forgets the old body's customs outcome: customs decides on
/// the new one, which an inquiry then asks about.
const OUTCOME_DECLARATION_SQL: &str = "INSERT INTO declarations(scope_id, request_id,
         payment_request_id, reference_order_id, split, target_id, amount, certificate_no,
         body_fp, fixed_fp, status, result_code, result_message, psp_payment_id,
         psp_declaration_request_id, psp_customs_code, clearing_channel,
         clearing_transaction_id, psp_order_amount, identity_check_result, run_id, input_row,
         settled_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, ?20, ?21, ?22, ?23)
     ON CONFLICT(scope_id, request_id) DO UPDATE SET
         payment_request_id = excluded.payment_request_id,
         reference_order_id = excluded.reference_order_id,
         split = excluded.split,
         target_id = excluded.target_id,
         earlier_amount = CASE WHEN declarations.amount <> excluded.amount
             THEN declarations.amount ELSE declarations.earlier_amount END,
         amount_changed_at = CASE WHEN declarations.amount <> excluded.amount
             THEN excluded.settled_at ELSE declarations.amount_changed_at END,
         amount = excluded.amount,
         inquiry_id = CASE WHEN declarations.body_fp <> excluded.body_fp
             THEN NULL ELSE declarations.inquiry_id END,
         certificate_no = excluded.certificate_no,
         body_fp = excluded.body_fp,
         fixed_fp = excluded.fixed_fp,
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
    writes: &mut Writes,
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
                let tx = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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
                writes.texts.forget();
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
        mut writes: Writes,
        path: PathBuf,
        identity: Option<(u64, u64)>,
    ) -> Result<LedgerWriter, LedgerError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Queued>(QUEUED);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || write_groups(connection, &mut writes, &thread_path, identity, &receiver))
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
