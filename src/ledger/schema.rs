//! The ledger's schema, versioned with SQLite's `user_version`: each
//! migration takes the file from one version to the next in a transaction
//! of its own, so an old ledger is brought up to date on open and a newer
//! one is refused instead of misread.

use std::path::Path;

use rusqlite::Connection;

use super::LedgerError;

/// The migrations, in order; the schema version is how many have run.
const MIGRATIONS: [&str; 3] = [
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

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

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
        tx.execute_batch(MIGRATIONS[version as usize])
            .map_err(sql)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
}
