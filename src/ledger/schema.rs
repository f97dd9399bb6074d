//! The ledger's schema, versioned with SQLite's `user_version`: each
//! migration takes the file from one version to the next in a transaction
//! of its own, so an old ledger is brought up to date on open and a newer
//! one is refused instead of misread.
//!
//! Version 4 is the compact ledger: fingerprints as 64-bit integers, times
//! as milliseconds since the epoch, customs and merchant (`targets`), short
//! texts (`texts`: result codes, messages) and raw answers' shapes
//! (`shapes`, see `answers.rs`) stored once and named by number, the order
//! indexed without a column of its own, calls keyed by their declaration's
//! number. Its migration rewrites the older tables row by row, in Rust.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::LedgerError;
use super::answers::{AnswerValues, Texts, encode, psp_values};
use super::keys::leading_integer;

/// The migrations written in SQL, in order; the fourth is `compact`.
pub(super) const MIGRATIONS: [&str; 3] = [
    // 1: scopes, runs, declarations, calls, inquiries.
    "CREATE TABLE scopes(
         id INTEGER PRIMARY KEY,
         endpoint TEXT NOT NULL,
         client_id TEXT NOT NULL,
         UNIQUE(endpoint, client_id)
     );
     CREATE TABLE runs(
         id INTEGER PRIMARY KEY,
         scope_id INTEGER NOT NULL REFERENCES scopes(id),
         out_dir TEXT NOT NULL,
         input TEXT NOT NULL,
         input_sha256 TEXT NOT NULL,
         started_at TEXT NOT NULL
     );
     CREATE TABLE declarations(
         scope_id INTEGER NOT NULL REFERENCES scopes(id),
         request_id TEXT NOT NULL,
         payment_request_id TEXT NOT NULL,
         reference_order_id TEXT NOT NULL DEFAULT '',
         order_id TEXT NOT NULL,
         customs_code TEXT NOT NULL,
         merchant_customs_code TEXT NOT NULL,
         merchant_customs_name TEXT NOT NULL,
         amount TEXT NOT NULL,
         certificate_no TEXT NOT NULL DEFAULT '',
         body_hmac BLOB NOT NULL,
         fixed_hmac BLOB NOT NULL,
         status TEXT NOT NULL CHECK (status IN ('S', 'F', 'U')),
         result_code TEXT NOT NULL DEFAULT '',
         result_message TEXT NOT NULL DEFAULT '',
         psp_payment_id TEXT NOT NULL DEFAULT '',
         psp_declaration_request_id TEXT NOT NULL DEFAULT '',
         psp_customs_code TEXT NOT NULL DEFAULT '',
         clearing_channel TEXT NOT NULL DEFAULT '',
         clearing_transaction_id TEXT NOT NULL DEFAULT '',
         psp_order_amount TEXT NOT NULL DEFAULT '',
         identity_check_result TEXT NOT NULL DEFAULT '',
         run_id INTEGER REFERENCES runs(id),
         input_row INTEGER NOT NULL,
         first_call_at TEXT,
         last_call_at TEXT NOT NULL,
         settled_at TEXT,
         customs_status TEXT,
         customs_result_code TEXT,
         customs_result_description TEXT,
         customs_result_returned_time TEXT,
         customs_modified_time TEXT,
         inquired_at TEXT,
         PRIMARY KEY (scope_id, request_id)
     ) WITHOUT ROWID;
     CREATE INDEX declarations_by_order ON declarations(scope_id, order_id, customs_code);
     CREATE TABLE calls(
         id INTEGER PRIMARY KEY,
         scope_id INTEGER NOT NULL REFERENCES scopes(id),
         request_id TEXT NOT NULL,
         run_id INTEGER REFERENCES runs(id),
         input_row INTEGER NOT NULL,
         sent_at TEXT NOT NULL,
         body_hmac BLOB NOT NULL,
         retransmission INTEGER NOT NULL,
         status TEXT,
         result_code TEXT,
         result_message TEXT,
         answer TEXT,
         answered_at TEXT
     );
     CREATE INDEX calls_by_request ON calls(scope_id, request_id);
     CREATE TABLE inquiries(
         id INTEGER PRIMARY KEY,
         scope_id INTEGER NOT NULL REFERENCES scopes(id),
         request_id TEXT NOT NULL,
         run_id INTEGER REFERENCES runs(id),
         inquired_at TEXT NOT NULL,
         status TEXT NOT NULL,
         customs_result_code TEXT NOT NULL,
         customs_result_description TEXT NOT NULL,
         returned_time TEXT NOT NULL,
         modified_time TEXT NOT NULL
     );",
    // 2: a corrected amount keeps the one it replaced, and when.
    "ALTER TABLE declarations ADD COLUMN earlier_amount TEXT;
     ALTER TABLE declarations ADD COLUMN amount_changed_at TEXT;",
    // 3: a run's end: when, its exit code, and its corrections waiting for
    // their retransmission (which are not declarations yet).
    "ALTER TABLE runs ADD COLUMN finished_at TEXT;
     ALTER TABLE runs ADD COLUMN exit_code INTEGER;
     ALTER TABLE runs ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;",
];

/// A declaration's order, as the order index holds it; a query that uses
/// the index says it the same way.
pub(super) const ORDER_OF: &str =
    "CASE WHEN split THEN reference_order_id ELSE payment_request_id END";

/// The tables of version 4, made beside the older ones by `compact`.
const COMPACT_TABLES: &str = "
     CREATE TABLE texts(
         id INTEGER PRIMARY KEY,
         text TEXT NOT NULL UNIQUE
     );
     CREATE TABLE shapes(
         id INTEGER PRIMARY KEY,
         shape TEXT NOT NULL UNIQUE
     );
     CREATE TABLE targets(
         id INTEGER PRIMARY KEY,
         customs_code TEXT NOT NULL,
         merchant_customs_code TEXT NOT NULL,
         merchant_customs_name TEXT NOT NULL,
         UNIQUE(customs_code, merchant_customs_code, merchant_customs_name)
     );
     CREATE TABLE declarations(
         id INTEGER PRIMARY KEY,
         scope_id INTEGER NOT NULL REFERENCES scopes(id),
         request_id TEXT NOT NULL,
         payment_request_id TEXT NOT NULL,
         reference_order_id TEXT NOT NULL DEFAULT '',
         -- The order is reference_order_id when split, else payment_request_id.
         split INTEGER NOT NULL DEFAULT 0,
         target_id INTEGER NOT NULL REFERENCES targets(id),
         amount TEXT NOT NULL,
         certificate_no TEXT NOT NULL DEFAULT '',
         body_fp INTEGER NOT NULL,
         fixed_fp INTEGER NOT NULL,
         status TEXT NOT NULL CHECK (status IN ('S', 'F', 'U')),
         result_code INTEGER REFERENCES texts(id),
         result_message INTEGER REFERENCES texts(id),
         psp_payment_id TEXT NOT NULL DEFAULT '',
         psp_declaration_request_id TEXT NOT NULL DEFAULT '',
         psp_customs_code INTEGER REFERENCES texts(id),
         clearing_channel INTEGER REFERENCES texts(id),
         clearing_transaction_id TEXT NOT NULL DEFAULT '',
         psp_order_amount TEXT NOT NULL DEFAULT '',
         identity_check_result INTEGER REFERENCES texts(id),
         run_id INTEGER REFERENCES runs(id),
         input_row INTEGER NOT NULL,
         settled_at INTEGER,
         -- The latest inquiry about its body: its customs outcome.
         inquiry_id INTEGER REFERENCES inquiries(id),
         earlier_amount TEXT,
         amount_changed_at INTEGER
     );
     CREATE UNIQUE INDEX declarations_by_request ON declarations(scope_id, request_id);
     -- Only declared orders are looked up (DUPLICATED_DECLARATION). By the
     -- order's text, not a keyed fingerprint: order IDs grow with time, so a
     -- night's entries land together instead of on every page of a year.
     CREATE INDEX declarations_by_order ON declarations(scope_id, (ORDER_OF))
         WHERE status = 'S';
     -- A call's body is its declaration's unless it says otherwise; its
     -- answer is a shape (shapes) with the values of its own result and of
     -- its declaration (or answer_values, once those changed), or the whole
     -- text when no shape fits.
     CREATE TABLE calls(
         declaration_id INTEGER NOT NULL REFERENCES declarations(id),
         seq INTEGER NOT NULL,
         run_id INTEGER REFERENCES runs(id),
         input_row INTEGER NOT NULL,
         sent_at INTEGER NOT NULL,
         body_fp INTEGER,
         retransmission INTEGER NOT NULL,
         status TEXT,
         result_code INTEGER REFERENCES texts(id),
         result_message INTEGER REFERENCES texts(id),
         answered_at INTEGER,
         -- A shape (no foreign key: unused shapes are deleted without
         -- looking for their calls one by one).
         answer_shape INTEGER,
         answer_values TEXT,
         answer_text TEXT,
         PRIMARY KEY (declaration_id, seq)
     ) WITHOUT ROWID;
     -- Every inquiry's result; the request ID only when the ledger holds no
     -- declaration of it.
     CREATE TABLE inquiries(
         id INTEGER PRIMARY KEY,
         scope_id INTEGER NOT NULL REFERENCES scopes(id),
         declaration_id INTEGER REFERENCES declarations(id),
         request_id TEXT,
         run_id INTEGER REFERENCES runs(id),
         inquired_at INTEGER NOT NULL,
         status INTEGER REFERENCES texts(id),
         customs_result_code INTEGER REFERENCES texts(id),
         customs_result_description INTEGER REFERENCES texts(id),
         returned_time TEXT NOT NULL,
         modified_time TEXT NOT NULL
     );
     -- The raw answers still kept, by age: what a run's end drops is found
     -- without reading a year of calls.
     CREATE INDEX calls_with_answers ON calls(answered_at)
         WHERE answer_shape IS NOT NULL OR answer_text IS NOT NULL;";

/// An inquiry's result: its declaration, or its request ID when the
/// ledger holds no declaration of it.
pub(super) const INSERT_INQUIRY_SQL: &str = "INSERT INTO inquiries(scope_id, declaration_id,
         request_id, run_id, inquired_at, status, customs_result_code,
         customs_result_description, returned_time, modified_time)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64 + 1;

/// Milliseconds since the epoch of an RFC 3339 time as versions 1–3 wrote
/// them.
fn millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_millis())
}

/// A declaration of version 4 as the migration of its calls needs it.
struct Declared {
    declaration: i64,
    body: i64,
    psp: [String; 7],
}

fn declared(tx: &Connection, scope: i64, request_id: &str) -> rusqlite::Result<Option<Declared>> {
    tx.prepare_cached(concat!(
        "SELECT d.id, d.body_fp, ",
        psp_values_of_d!(),
        " FROM declarations d WHERE d.scope_id = ?1 AND d.request_id = ?2"
    ))?
    .query_row(params![scope, request_id], |row| {
        Ok(Declared {
            declaration: row.get(0)?,
            body: row.get(1)?,
            psp: psp_values(row, 2)?,
        })
    })
    .optional()
}

/// Version 3 to 4: the declarations and calls rewritten compactly, the
/// fingerprints cut to their first 64 bits, every raw answer shaped against
/// its declaration.
fn compact(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(
        // Only the index whose name the new tables reuse: calls_by_request
        // gives the old calls in the order they are rewritten in, and goes
        // with its table.
        "DROP INDEX declarations_by_order;
         ALTER TABLE declarations RENAME TO declarations_v3;
         ALTER TABLE calls RENAME TO calls_v3;
         ALTER TABLE inquiries RENAME TO inquiries_v3;",
    )?;
    tx.execute_batch(&COMPACT_TABLES.replace("ORDER_OF", ORDER_OF))?;
    let mut texts = Texts::default();
    {
        let mut read = tx.prepare(
            "SELECT scope_id, request_id, payment_request_id, reference_order_id, order_id,
                    customs_code, merchant_customs_code, merchant_customs_name, amount,
                    certificate_no, body_hmac, fixed_hmac, status, result_code, result_message,
                    psp_payment_id, psp_declaration_request_id, psp_customs_code,
                    clearing_channel, clearing_transaction_id, psp_order_amount,
                    identity_check_result, run_id, input_row, settled_at, earlier_amount,
                    amount_changed_at
             FROM declarations_v3",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let scope: i64 = row.get(0)?;
            let request_id: String = row.get(1)?;
            let customs_code: String = row.get(5)?;
            // Versions 1–3 kept the order itself: the reference's when split.
            let order: String = row.get(4)?;
            let reference: String = row.get(3)?;
            let split = !reference.is_empty() && order == reference;
            let target = texts.target(tx, &customs_code, &row.get::<_, String>(6)?, &{
                row.get::<_, String>(7)?
            })?;
            let body: Vec<u8> = row.get(10)?;
            let fixed: Vec<u8> = row.get(11)?;
            let psp: [String; 7] = [
                row.get(15)?,
                row.get(16)?,
                row.get(17)?,
                row.get(19)?,
                row.get(18)?,
                row.get(20)?,
                row.get(21)?,
            ];
            let time = |index: usize| -> rusqlite::Result<Option<i64>> {
                Ok(row
                    .get::<_, Option<String>>(index)?
                    .as_deref()
                    .and_then(millis))
            };
            tx.prepare_cached(
                "INSERT INTO declarations(scope_id, request_id, payment_request_id,
                     reference_order_id, split, target_id, amount, certificate_no, body_fp,
                     fixed_fp, status, result_code, result_message, psp_payment_id,
                     psp_declaration_request_id, psp_customs_code, clearing_channel,
                     clearing_transaction_id, psp_order_amount, identity_check_result, run_id,
                     input_row, settled_at, earlier_amount, amount_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                         ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
            )?
            .execute(params![
                scope,
                request_id,
                row.get::<_, String>(2)?,
                reference,
                split,
                target,
                row.get::<_, String>(8)?,
                row.get::<_, String>(9)?,
                leading_integer(&body),
                leading_integer(&fixed),
                row.get::<_, String>(12)?,
                texts.id(tx, &row.get::<_, String>(13)?)?,
                texts.id(tx, &row.get::<_, String>(14)?)?,
                psp[0],
                psp[1],
                texts.id(tx, &psp[2])?,
                texts.id(tx, &psp[4])?,
                psp[3],
                psp[5],
                texts.id(tx, &psp[6])?,
                row.get::<_, Option<i64>>(22)?,
                row.get::<_, i64>(23)?,
                time(24)?,
                row.get::<_, Option<String>>(25)?,
                time(26)?,
            ])?;
        }
    }
    {
        let mut read = tx.prepare(
            "SELECT scope_id, request_id, run_id, input_row, sent_at, body_hmac, retransmission,
                    status, result_code, result_message, answer, answered_at
             FROM calls_v3 ORDER BY scope_id, request_id, id",
        )?;
        let mut rows = read.query([])?;
        // The calls come by request ID: each declaration is looked up once,
        // when its first call comes, so that memory does not grow with a
        // year of them.
        let mut current: Option<(i64, String, Option<Declared>)> = None;
        let mut seq = 0;
        while let Some(row) = rows.next()? {
            let scope: i64 = row.get(0)?;
            let request_id: String = row.get(1)?;
            if current
                .as_ref()
                .is_none_or(|(s, id, _)| *s != scope || *id != request_id)
            {
                let declared = declared(tx, scope, &request_id)?;
                current = Some((scope, request_id, declared));
                seq = 0;
            }
            // A call whose declaration is gone (never in versions 1–3) has
            // nothing to belong to.
            let Some((
                _,
                _,
                Some(Declared {
                    declaration,
                    body: declared_body,
                    psp,
                }),
            )) = &current
            else {
                continue;
            };
            seq += 1;
            let body = leading_integer(&row.get::<_, Vec<u8>>(5)?);
            let status: Option<String> = row.get(7)?;
            let code: Option<String> = row.get(8)?;
            let message: Option<String> = row.get(9)?;
            let answer: Option<String> = row.get(10)?;
            let stored = encode(
                answer.as_deref().unwrap_or_default(),
                &AnswerValues {
                    own: [
                        code.as_deref().unwrap_or_default(),
                        message.as_deref().unwrap_or_default(),
                        status.as_deref().unwrap_or_default(),
                    ],
                    declaration: psp.each_ref().map(String::as_str),
                },
            );
            let shape = match &stored.shape {
                Some(shape) => texts.shape_id(tx, shape)?,
                None => None,
            };
            let text = match (&stored.shape, shape) {
                (Some(_), None) => answer,
                _ => stored.text,
            };
            tx.prepare_cached(
                "INSERT INTO calls(declaration_id, seq, run_id, input_row, sent_at, body_fp,
                     retransmission, status, result_code, result_message, answered_at,
                     answer_shape, answer_text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                declaration,
                seq,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, i64>(3)?,
                millis(&row.get::<_, String>(4)?).unwrap_or(0),
                (body != *declared_body).then_some(body),
                row.get::<_, bool>(6)?,
                status,
                texts.id(tx, code.as_deref().unwrap_or_default())?,
                texts.id(tx, message.as_deref().unwrap_or_default())?,
                row.get::<_, Option<String>>(11)?
                    .as_deref()
                    .and_then(millis),
                shape,
                text,
            ])?;
        }
    }
    {
        // Inquiries by their declaration; a declaration whose customs
        // outcome was not forgotten (by a retransmission) points at its
        // latest.
        let mut read = tx.prepare(
            "SELECT scope_id, request_id, run_id, inquired_at, status, customs_result_code,
                    customs_result_description, returned_time, modified_time
             FROM inquiries_v3 ORDER BY id",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let scope: i64 = row.get(0)?;
            let request_id: String = row.get(1)?;
            let declared: Option<(i64, bool)> = tx
                .prepare_cached(
                    "SELECT d.id, v.customs_status IS NOT NULL
                     FROM declarations d JOIN declarations_v3 v
                          ON v.scope_id = d.scope_id AND v.request_id = d.request_id
                     WHERE d.scope_id = ?1 AND d.request_id = ?2",
                )?
                .query_row(params![scope, request_id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            tx.prepare_cached(INSERT_INQUIRY_SQL)?.execute(params![
                scope,
                declared.map(|(id, _)| id),
                declared.is_none().then_some(&request_id),
                row.get::<_, Option<i64>>(2)?,
                millis(&row.get::<_, String>(3)?).unwrap_or(0),
                texts.id(tx, &row.get::<_, String>(4)?)?,
                texts.id(tx, &row.get::<_, String>(5)?)?,
                texts.id(tx, &row.get::<_, String>(6)?)?,
                row.get::<_, String>(7)?,
                row.get::<_, String>(8)?,
            ])?;
            if let Some((declaration, true)) = declared {
                tx.prepare_cached("UPDATE declarations SET inquiry_id = ?2 WHERE id = ?1")?
                    .execute(params![declaration, tx.last_insert_rowid()])?;
            }
        }
    }
    tx.execute_batch("DROP TABLE inquiries_v3; DROP TABLE calls_v3; DROP TABLE declarations_v3;")
}

/// Brings the ledger's schema up to [`VERSION`].
pub fn migrate(connection: &mut Connection, path: &Path) -> Result<(), LedgerError> {
    let sql = |source| LedgerError::Sql {
        path: path.to_owned(),
        source,
    };
    loop {
        // IMMEDIATE: a second process opening a new ledger waits here.
        let tx = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sql)?;
        if version > VERSION {
            return Err(LedgerError::TooNew {
                path: path.to_owned(),
                found: version,
                known: VERSION,
            });
        }
        if version == VERSION {
            return tx.commit().map_err(sql);
        }
        match MIGRATIONS.get(version as usize) {
            Some(migration) => tx.execute_batch(migration).map_err(sql)?,
            None => compact(&tx).map_err(sql)?,
        }
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
}
