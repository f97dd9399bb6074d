//! The ledger: every declaration ever made, across runs, in one SQLite
//! file, so that a nightly export that overlaps last night's is not sent
//! twice, a changed row under a declared ID is a deliberate retransmission,
//! and an outage's unknown rows can be settled by asking Alipay+.
//!
//! Everything is kept per scope (endpoint + client ID), so a sandbox never
//! mixes with production. Tables: `runs` (which out folder and input),
//! `declarations` (the latest state per request ID: its fields, status,
//! answer and customs outcome), `calls` (every request sent, with the
//! answer that settled it) and `inquiries` (every inquiry result).
//! Certificate numbers are stored masked, so bodies are compared by keyed
//! fingerprints (HMAC-SHA256 with a key in a file beside the ledger; the
//! ledger alone cannot be searched for a guessed ID). WAL mode with
//! `synchronous = NORMAL`: each commit is handed to the OS at once, so a
//! killed process loses nothing, as with the journal; two processes on one
//! ledger wait for each other (busy timeout) instead of failing.
//!
//! This module is the whole interface to storage: moving the ledger to a
//! shared database (several workers on one client ID) means another
//! implementation of these methods, nothing else.

mod schema;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ring::hmac;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::protocol::{DeclareRequest, Status};
use crate::report::{ResultRow, ResultSource};

/// The ledger's file name where no path is configured.
pub const DEFAULT_FILE: &str = "declare-batch.db";

/// How long a process waits for another one's write before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the ledger cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    // The SQLite error is in the message, not a source, so that it is
    // said once wherever the error is shown.
    #[error("cannot open the ledger {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the ledger {path} exists but its fingerprint key {key} does not; the key is made with \
         the ledger and is needed to compare requests. Restore it from the backup of the \
         ledger's folder, or give --ledger a new file to start a new ledger"
    )]
    KeyMissing { path: PathBuf, key: PathBuf },
    #[error("cannot use the ledger's fingerprint key {path}: {source}")]
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
    #[error("the ledger {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Keyed fingerprints of a request: of its exact bytes, and of its bytes
/// with the fields a retransmission may change left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    pub body: Vec<u8>,
    pub fixed: Vec<u8>,
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

/// The columns of `ledger export`, for an export with no row.
pub const EXPORT_HEADER: [&str; 23] = [
    "customsDeclarationRequestId",
    "paymentRequestId",
    "referenceOrderId",
    "customsCode",
    "merchantCustomsCode",
    "merchantCustomsName",
    "declarationAmount",
    "certificateNo",
    "resultStatus",
    "resultCode",
    "resultMessage",
    "pspDeclarationRequestId",
    "identityCheckResult",
    "declarationRequestStatus",
    "customsResultCode",
    "customsResultDescription",
    "calls",
    "firstCallAt",
    "lastCallAt",
    "settledAt",
    "inquiredAt",
    "run",
    "row",
];

/// One declaration as `ledger export` writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRow {
    pub customs_declaration_request_id: String,
    pub payment_request_id: String,
    pub reference_order_id: String,
    pub customs_code: String,
    pub merchant_customs_code: String,
    pub merchant_customs_name: String,
    pub declaration_amount: String,
    pub certificate_no: String,
    pub result_status: String,
    pub result_code: String,
    pub result_message: String,
    pub psp_declaration_request_id: String,
    pub identity_check_result: String,
    pub declaration_request_status: String,
    pub customs_result_code: String,
    pub customs_result_description: String,
    pub calls: u64,
    pub first_call_at: String,
    pub last_call_at: String,
    pub settled_at: String,
    pub inquired_at: String,
    pub run: String,
    pub row: u64,
}

/// The ledger of one scope (endpoint + client ID), opened for one run or
/// one command.
pub struct Ledger {
    path: PathBuf,
    connection: Mutex<Connection>,
    key: hmac::Key,
    scope: i64,
    run: Option<i64>,
}

/// A certificate number as messages and the ledger keep it: the first 6
/// and the last 4 characters, e.g. `110105********002X`.
pub fn mask_certificate(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let mut masked: String = chars[..6].iter().collect();
    masked.extend(std::iter::repeat_n('*', chars.len() - 10));
    masked.extend(&chars[chars.len() - 4..]);
    masked
}

/// Now as the ledger writes times: RFC 3339 in UTC with milliseconds,
/// which sorts as text.
pub fn ledger_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// The fingerprint key beside a ledger: `<ledger>.key`.
pub fn key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Reads the fingerprint key, making it (and an empty, owner-only ledger
/// file) when the ledger is new.
fn load_key(path: &Path) -> Result<hmac::Key, LedgerError> {
    let key_file = key_path(path);
    let key_error = |source| LedgerError::Key {
        path: key_file.clone(),
        source,
    };
    let ledger_exists = path.exists();
    match std::fs::read_to_string(&key_file) {
        Ok(text) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .filter(|bytes| bytes.len() == 32)
                .ok_or_else(|| {
                    key_error(std::io::Error::other(
                        "not a 32-byte key in Base64; restore it from a backup",
                    ))
                })?;
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if ledger_exists {
                return Err(LedgerError::KeyMissing {
                    path: path.to_owned(),
                    key: key_file,
                });
            }
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| key_error(std::io::Error::other(e)))?;
            let mut file = create_private(&key_file).map_err(key_error)?;
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            file.write_all(text.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(key_error)?;
            // The ledger file itself, owner-only before SQLite opens it
            // (its -wal and -shm files take the same permissions).
            create_private(path).map_err(|source| LedgerError::Key {
                path: path.to_owned(),
                source,
            })?;
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        }
        Err(error) => Err(key_error(error)),
    }
}

/// A declaration row as the decisions read it.
struct Held {
    status: Status,
    body: Vec<u8>,
    fixed: Vec<u8>,
    last_call_at: String,
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
        connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| {
                row.get::<_, String>(0)
            })
            .map_err(open_error)?;
        connection
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(open_error)?;
        schema::migrate(&mut connection, path)?;
        let ledger = Ledger {
            path: path.to_owned(),
            connection: Mutex::new(connection),
            key,
            scope: 0,
            run: None,
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
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        work(&mut connection).map_err(|source| LedgerError::Sql {
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
        let mut fixed = request.clone();
        // What a retransmission may change (the spec): left out.
        fixed.merchant_customs_info.merchant_customs_code.clear();
        fixed.merchant_customs_info.merchant_customs_name.clear();
        fixed.customs.customs_code.clear();
        fixed.declaration_amount.value.clear();
        fixed.declaration_amount.currency.clear();
        Fingerprints {
            body: hmac::sign(&self.key, body).as_ref().to_vec(),
            fixed: hmac::sign(&self.key, &fixed.to_body()).as_ref().to_vec(),
        }
    }

    fn held(&self, request_id: &str) -> Result<Option<Held>, LedgerError> {
        let scope = self.scope;
        self.with(|c| {
            c.prepare_cached(
                "SELECT d.status, d.body_hmac, d.fixed_hmac, d.last_call_at,
                        COALESCE(r.out_dir, ''), d.input_row, COALESCE(d.settled_at, d.last_call_at),
                        d.payment_request_id, d.reference_order_id, d.customs_code, d.amount,
                        d.result_code, d.result_message, d.psp_payment_id,
                        d.psp_declaration_request_id, d.psp_customs_code, d.clearing_channel,
                        d.clearing_transaction_id, d.psp_order_amount, d.identity_check_result
                 FROM declarations d LEFT JOIN runs r ON r.id = d.run_id
                 WHERE d.scope_id = ?1 AND d.request_id = ?2",
            )?
            .query_row(params![scope, request_id], |row| {
                let status: String = row.get(0)?;
                Ok(Held {
                    status: Status::parse(&status).unwrap_or(Status::U),
                    body: row.get(1)?,
                    fixed: row.get(2)?,
                    last_call_at: row.get(3)?,
                    earlier: Earlier {
                        run: row.get(4)?,
                        row: row.get(5)?,
                        request_id: request_id.to_owned(),
                        at: row.get(6)?,
                    },
                    result: ResultRow {
                        customs_declaration_request_id: request_id.to_owned(),
                        payment_request_id: row.get(7)?,
                        reference_order_id: row.get(8)?,
                        customs_code: row.get(9)?,
                        declaration_amount: row.get(10)?,
                        result_status: Status::parse(&status).unwrap_or(Status::U),
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
                    let last_call = parse_time(&held.last_call_at).unwrap_or(now);
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
        let order = request.declaration_order_id().to_owned();
        let customs = request.customs.customs_code.to_uppercase();
        let other = self.with(|c| {
            c.prepare_cached(
                "SELECT d.request_id, COALESCE(r.out_dir, ''), d.input_row,
                        COALESCE(d.settled_at, d.last_call_at)
                 FROM declarations d LEFT JOIN runs r ON r.id = d.run_id
                 WHERE d.scope_id = ?1 AND d.order_id = ?2 AND d.customs_code = ?3
                   AND d.status = 'S' AND d.request_id <> ?4
                 LIMIT 1",
            )?
            .query_row(params![scope, order, customs, request_id], |row| {
                Ok(Earlier {
                    request_id: row.get(0)?,
                    run: row.get(1)?,
                    row: row.get(2)?,
                    at: row.get(3)?,
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
        let fingerprints = self.fingerprints(request, body);
        let now = ledger_time(Utc::now());
        let (scope, run) = (self.scope, self.run);
        let certificate = request
            .buyer_certificate
            .as_ref()
            .map(|c| mask_certificate(&c.certificate_no))
            .unwrap_or_default();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "INSERT INTO calls(scope_id, request_id, run_id, input_row, sent_at, body_hmac,
                                   retransmission)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                scope,
                request.customs_declaration_request_id,
                run,
                line,
                now,
                fingerprints.body,
                retransmission
            ])?;
            tx.prepare_cached(
                "INSERT INTO declarations(scope_id, request_id, payment_request_id,
                     reference_order_id, order_id, customs_code, merchant_customs_code,
                     merchant_customs_name, amount, certificate_no, body_hmac, fixed_hmac,
                     status, run_id, input_row, first_call_at, last_call_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'U', ?13, ?14, ?15, ?15)
                 ON CONFLICT(scope_id, request_id) DO UPDATE SET
                     last_call_at = excluded.last_call_at,
                     payment_request_id = iif(status = 'S', payment_request_id, excluded.payment_request_id),
                     reference_order_id = iif(status = 'S', reference_order_id, excluded.reference_order_id),
                     order_id = iif(status = 'S', order_id, excluded.order_id),
                     customs_code = iif(status = 'S', customs_code, excluded.customs_code),
                     merchant_customs_code = iif(status = 'S', merchant_customs_code, excluded.merchant_customs_code),
                     merchant_customs_name = iif(status = 'S', merchant_customs_name, excluded.merchant_customs_name),
                     amount = iif(status = 'S', amount, excluded.amount),
                     certificate_no = iif(status = 'S', certificate_no, excluded.certificate_no),
                     body_hmac = iif(status = 'S', body_hmac, excluded.body_hmac),
                     fixed_hmac = iif(status = 'S', fixed_hmac, excluded.fixed_hmac),
                     run_id = iif(status = 'S', run_id, excluded.run_id),
                     input_row = iif(status = 'S', input_row, excluded.input_row)",
            )?
            .execute(params![
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
        let fingerprints = self.fingerprints(request, body);
        let now = ledger_time(Utc::now());
        let (scope, run) = (self.scope, self.run);
        let certificate = request
            .buyer_certificate
            .as_ref()
            .map(|c| mask_certificate(&c.certificate_no))
            .unwrap_or_default();
        let status = result.result_status.as_str();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "UPDATE calls SET status = ?3, result_code = ?4, result_message = ?5,
                                  answer = ?6, answered_at = ?7
                 WHERE id = (SELECT max(id) FROM calls WHERE scope_id = ?1 AND request_id = ?2)",
            )?
            .execute(params![
                scope,
                result.customs_declaration_request_id,
                status,
                result.result_code,
                result.result_message,
                answer,
                now
            ])?;
            if result.result_status != Status::U {
                tx.prepare_cached(
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
                         amount = excluded.amount,
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
                     WHERE declarations.status <> 'S' OR excluded.status = 'S'",
                )?
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
                    certificate,
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
            }
            tx.commit()
        })
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
        let now = ledger_time(Utc::now());
        let scope = self.scope;
        self.with(|c| {
            c.prepare_cached(
                "UPDATE declarations SET status = 'S', result_code = ?3, result_message = ?4,
                     psp_payment_id = ?5, psp_declaration_request_id = ?6, settled_at = ?7
                 WHERE scope_id = ?1 AND request_id = ?2 AND status <> 'S'",
            )?
            .execute(params![
                scope,
                result.customs_declaration_request_id,
                result.result_code,
                result.result_message,
                result.psp_payment_id,
                result.psp_declaration_request_id,
                now
            ])?;
            Ok(())
        })
    }

    /// Records what an inquiry said about a request ID.
    pub fn record_inquiry(&self, outcome: &CustomsOutcome) -> Result<(), LedgerError> {
        let now = ledger_time(Utc::now());
        let (scope, run) = (self.scope, self.run);
        self.with(|c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "INSERT INTO inquiries(scope_id, request_id, run_id, inquired_at, status,
                     customs_result_code, customs_result_description, returned_time,
                     modified_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                scope,
                outcome.request_id,
                run,
                now,
                outcome.status,
                outcome.result_code,
                outcome.result_description,
                outcome.returned_time,
                outcome.modified_time
            ])?;
            tx.prepare_cached(
                "UPDATE declarations SET customs_status = ?3, customs_result_code = ?4,
                     customs_result_description = ?5, customs_result_returned_time = ?6,
                     customs_modified_time = ?7, inquired_at = ?8
                 WHERE scope_id = ?1 AND request_id = ?2",
            )?
            .execute(params![
                scope,
                outcome.request_id,
                outcome.status,
                outcome.result_code,
                outcome.result_description,
                outcome.returned_time,
                outcome.modified_time,
                now
            ])?;
            tx.commit()
        })
    }

    /// Every declaration of this scope, oldest first, for `ledger export`:
    /// settled (or last sent) on or after `since`, with `status` when given.
    pub fn export(
        &self,
        since: Option<&str>,
        status: Option<Status>,
        mut each: impl FnMut(ExportRow) -> std::io::Result<()>,
    ) -> Result<u64, anyhow::Error> {
        let scope = self.scope;
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let mut statement = connection.prepare(
            "SELECT d.request_id, d.payment_request_id, d.reference_order_id, d.customs_code,
                    d.merchant_customs_code, d.merchant_customs_name, d.amount,
                    d.certificate_no, d.status, d.result_code, d.result_message,
                    d.psp_declaration_request_id, d.identity_check_result,
                    COALESCE(d.customs_status, ''), COALESCE(d.customs_result_code, ''),
                    COALESCE(d.customs_result_description, ''),
                    (SELECT count(*) FROM calls c
                      WHERE c.scope_id = d.scope_id AND c.request_id = d.request_id),
                    COALESCE(d.first_call_at, ''), d.last_call_at, COALESCE(d.settled_at, ''),
                    COALESCE(d.inquired_at, ''), COALESCE(r.out_dir, ''), d.input_row
             FROM declarations d LEFT JOIN runs r ON r.id = d.run_id
             WHERE d.scope_id = ?1
               AND COALESCE(d.settled_at, d.last_call_at) >= ?2
               AND (?3 IS NULL OR d.status = ?3)
             ORDER BY COALESCE(d.settled_at, d.last_call_at), d.request_id",
        )?;
        let mut rows = statement.query(params![
            scope,
            since.unwrap_or(""),
            status.map(Status::as_str)
        ])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            each(ExportRow {
                customs_declaration_request_id: row.get(0)?,
                payment_request_id: row.get(1)?,
                reference_order_id: row.get(2)?,
                customs_code: row.get(3)?,
                merchant_customs_code: row.get(4)?,
                merchant_customs_name: row.get(5)?,
                declaration_amount: row.get(6)?,
                certificate_no: row.get(7)?,
                result_status: row.get(8)?,
                result_code: row.get(9)?,
                result_message: row.get(10)?,
                psp_declaration_request_id: row.get(11)?,
                identity_check_result: row.get(12)?,
                declaration_request_status: row.get(13)?,
                customs_result_code: row.get(14)?,
                customs_result_description: row.get(15)?,
                calls: row.get(16)?,
                first_call_at: row.get(17)?,
                last_call_at: row.get(18)?,
                settled_at: row.get(19)?,
                inquired_at: row.get(20)?,
                run: row.get(21)?,
                row: row.get(22)?,
            })?;
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests;
