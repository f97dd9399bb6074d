use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::protocol::BuyerCertificate;

const WAIT: Duration = Duration::from_secs(300);

fn request(id: &str, payment: &str, amount: &str) -> DeclareRequest {
    DeclareRequest {
        buyer_certificate: Some(BuyerCertificate {
            certificate_type: "ID_CARD".into(),
            certificate_no: "11010519491231002X".into(),
            holder_name: None,
            effective_date: None,
            expire_date: None,
        }),
        ..DeclareRequest::example(id, payment, amount)
    }
}

fn open(dir: &Path) -> Ledger {
    let mut ledger = Ledger::open(&dir.join("l.db"), "https://api.example", "C1").unwrap();
    ledger
        .begin_run(&dir.join("night-1"), Path::new("orders.csv"), "abc")
        .unwrap();
    ledger
}

fn result(request: &DeclareRequest, status: Status, row: u64) -> ResultRow {
    ResultRow {
        row,
        customs_declaration_request_id: request.customs_declaration_request_id.clone(),
        payment_request_id: request.payment_request_id.clone(),
        result_status: status,
        result_code: if status == Status::S {
            "SUCCESS".into()
        } else {
            "ORDER_NOT_EXIST".into()
        },
        psp_declaration_request_id: "PSP9".into(),
        identity_check_result: "CHECK_PASSED".into(),
        ..ResultRow::default()
    }
}

/// Sends and settles `request` in the ledger as a run would.
fn declare(ledger: &Ledger, request: &DeclareRequest, status: Status, row: u64) {
    let body = request.to_body();
    ledger.record_call(row, request, &body, false).unwrap();
    ledger
        .record_outcome(&result(request, status, row), request, &body, "{}")
        .unwrap();
}

fn decide(ledger: &Ledger, request: &DeclareRequest, resend_failed: bool) -> Decision {
    ledger
        .decide(request, &request.to_body(), Utc::now(), WAIT, resend_failed)
        .unwrap()
}

#[test]
fn identical_answers_are_known_and_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    assert_eq!(
        decide(&ledger, &first, false),
        Decision::Send {
            retransmission: false
        }
    );
    declare(&ledger, &first, Status::S, 2);
    let Decision::Known(known) = decide(&ledger, &first, false) else {
        panic!("an identical S is known");
    };
    assert_eq!(known.result_status, Status::S);
    assert_eq!(known.source, ResultSource::Ledger);
    assert_eq!(known.psp_declaration_request_id, "PSP9");
    assert_eq!(known.identity_check_result, "CHECK_PASSED");

    let refused = request("D2", "P2", "100");
    declare(&ledger, &refused, Status::F, 3);
    assert!(
        matches!(decide(&ledger, &refused, false), Decision::Known(k) if k.result_status == Status::F)
    );
    assert_eq!(
        decide(&ledger, &refused, true),
        Decision::Send {
            retransmission: false
        },
        "--resend-failed"
    );
    // An F with another body is sent.
    assert_eq!(
        decide(&ledger, &request("D2", "P2", "90"), false),
        Decision::Send {
            retransmission: false
        }
    );
    // A U is sent again.
    let unknown = request("D3", "P3", "100");
    ledger
        .record_call(4, &unknown, &unknown.to_body(), false)
        .unwrap();
    assert_eq!(
        decide(&ledger, &unknown, false),
        Decision::Send {
            retransmission: false
        }
    );
}

#[test]
fn allowed_changes_wait_for_the_retransmission_window() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    let mut changed = first.clone();
    changed.declaration_amount.value = "90".into();
    changed.merchant_customs_info.merchant_customs_name = "Shop Ltd".into();
    let Decision::Refused(Refusal::TooEarly {
        earlier,
        allowed_from,
    }) = decide(&ledger, &changed, false)
    else {
        panic!("too early");
    };
    assert_eq!(earlier.row, 2);
    assert!(earlier.run.ends_with("night-1"), "{earlier:?}");
    let wait = allowed_from - Utc::now();
    assert!(wait > chrono::Duration::seconds(290) && wait <= chrono::Duration::seconds(300));
    // After the window.
    let later = Utc::now() + chrono::Duration::seconds(301);
    let body = changed.to_body();
    assert_eq!(
        ledger.decide(&changed, &body, later, WAIT, false).unwrap(),
        Decision::Send {
            retransmission: true
        }
    );
    // Answered S: the new body replaces the old.
    ledger.record_call(7, &changed, &body, true).unwrap();
    ledger
        .record_outcome(&result(&changed, Status::S, 7), &changed, &body, "{}")
        .unwrap();
    assert!(matches!(
        decide(&ledger, &changed, false),
        Decision::Known(_)
    ));
    // Going back to the old body is a change again, timed from the last call.
    assert!(matches!(
        decide(&ledger, &first, false),
        Decision::Refused(Refusal::TooEarly { .. })
    ));
    // A refused retransmission leaves the declaration as it was.
    let mut again = changed.clone();
    again.declaration_amount.value = "80".into();
    let body = again.to_body();
    ledger.record_call(8, &again, &body, true).unwrap();
    ledger
        .record_outcome(&result(&again, Status::F, 8), &again, &body, "{}")
        .unwrap();
    assert!(
        matches!(decide(&ledger, &changed, false), Decision::Known(k) if k.result_status == Status::S)
    );
}

#[test]
fn other_changes_and_orders_under_another_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    let mut changed = first.clone();
    changed.payment_request_id = "P9".into();
    assert!(
        matches!(decide(&ledger, &changed, false), Decision::Refused(Refusal::Changed { earlier }) if earlier.row == 2)
    );
    let mut changed = first.clone();
    changed.buyer_certificate = None;
    assert!(matches!(
        decide(&ledger, &changed, false),
        Decision::Refused(Refusal::Changed { .. })
    ));
    // The same order at the same customs (any case) under another ID.
    let mut other = request("D7", "P1", "100");
    other.customs.customs_code = "zongshu".into();
    let Decision::Refused(Refusal::OrderDeclared { earlier }) = decide(&ledger, &other, false)
    else {
        panic!("order declared");
    };
    assert_eq!(earlier.request_id, "D1");
    // At another customs it is another declaration.
    other.customs.customs_code = "NINGBO".into();
    assert_eq!(
        decide(&ledger, &other, false),
        Decision::Send {
            retransmission: false
        }
    );
}

#[test]
fn scopes_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    drop(ledger);
    let sandbox = Ledger::open(&dir.path().join("l.db"), "http://127.0.0.1:1", "C1").unwrap();
    assert_eq!(
        decide(&sandbox, &first, false),
        Decision::Send {
            retransmission: false
        }
    );
    let other_client = Ledger::open(&dir.path().join("l.db"), "https://api.example", "C2").unwrap();
    assert!(matches!(
        decide(&other_client, &first, false),
        Decision::Send { .. }
    ));
}

#[test]
fn certificate_numbers_are_stored_masked_and_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    declare(&ledger, &request("D1", "P1", "100"), Status::S, 2);
    let mut exported = Vec::new();
    ledger
        .export(None, None, None, |row| {
            exported.push(row);
            Ok(())
        })
        .unwrap();
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0].certificate_no, "110105********002X");
    assert_eq!(exported[0].calls, 1);
    drop(ledger);
    for name in ["l.db", "l.db-wal", "l.db.key"] {
        let path = dir.path().join(name);
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes
                .windows(18)
                .any(|window| window == b"11010519491231002X"),
            "{name} holds the whole number"
        );
        #[cfg(unix)]
        if path.exists() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
        }
    }
    assert_eq!(mask_certificate("11010519491231002X"), "110105********002X");
    assert_eq!(mask_certificate("12345"), "*****");
}

#[test]
fn a_ledger_without_its_key_or_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    drop(Ledger::open(&path, "e", "c").unwrap());
    std::fs::remove_file(key_path(&path)).unwrap();
    let error = Ledger::open(&path, "e", "c").err().unwrap().to_string();
    assert!(error.contains("l.db.key"), "{error}");

    let path = dir.path().join("new.db");
    drop(Ledger::open(&path, "e", "c").unwrap());
    let connection = Connection::open(&path).unwrap();
    connection
        .pragma_update(None, "user_version", schema::VERSION + 1)
        .unwrap();
    drop(connection);
    let error = Ledger::open(&path, "e", "c").err().unwrap().to_string();
    assert!(error.contains("newer declare-batch"), "{error}");
}

#[test]
fn two_writers_on_one_ledger_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let path = dir.path().to_owned();
            std::thread::spawn(move || {
                let ledger = open(&path);
                for n in 0..200 {
                    let request =
                        request(&format!("D{writer}-{n}"), &format!("P{writer}-{n}"), "1");
                    declare(&ledger, &request, Status::S, n + 2);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("no writer fails");
    }
    let ledger = open(dir.path());
    let count = ledger
        .export(None, Some(Status::S), None, |_| Ok(()))
        .unwrap();
    assert_eq!(count, 400);
}

#[test]
fn replayed_outcomes_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    let body = first.to_body();
    // Killed between the journal and the ledger: the call is a U.
    ledger.record_call(2, &first, &body, false).unwrap();
    ledger
        .ensure_outcome(&result(&first, Status::S, 2), &first, &body)
        .unwrap();
    assert!(
        matches!(decide(&ledger, &first, false), Decision::Known(k) if k.result_status == Status::S)
    );
    ledger
        .ensure_outcome(&result(&first, Status::S, 2), &first, &body)
        .unwrap();
    let count = ledger.export(None, None, None, |_| Ok(())).unwrap();
    assert_eq!(count, 1);
}

#[test]
fn processes_making_one_new_ledger_at_once_share_its_key() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let fingerprints: Vec<Fingerprints> = std::thread::scope(|scope| {
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let ledger = Ledger::open(&path, "e", "c").expect("opens");
                        let request = request("D1", "P1", "1");
                        ledger.fingerprints(&request, &request.to_body())
                    })
                })
                .collect();
            openers.into_iter().map(|o| o.join().unwrap()).collect()
        });
        assert!(fingerprints.windows(2).all(|pair| pair[0] == pair[1]));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("new.db.key."))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn a_cause_is_said_once() {
    let locked = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("database is locked".to_owned()),
    );
    let cause = "database is locked";
    let error = LedgerError::Open {
        path: "l.db".into(),
        source: locked,
    };
    let chain = crate::error_chain(&error);
    assert_eq!(chain.matches(cause).count(), 1, "{chain}");
    let shown = format!("{:#}", anyhow::Error::new(error));
    assert_eq!(shown.matches(cause).count(), 1, "{shown}");
    assert!(shown.starts_with("cannot open the ledger l.db"), "{shown}");
}

#[test]
fn a_damaged_status_is_an_error_not_an_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    ledger
        .with(|c| {
            // A file damaged past its CHECK constraint.
            c.execute_batch("PRAGMA ignore_check_constraints = ON")?;
            c.execute("UPDATE declarations SET status = 'X'", [])
        })
        .unwrap();
    let error = ledger
        .decide(&first, &first.to_body(), Utc::now(), WAIT, false)
        .unwrap_err();
    let text = crate::error_chain(&error);
    assert!(text.contains("\"X\" is not S, F or U"), "{text}");
}

#[test]
fn a_ledger_of_the_first_schema_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    // Back to version 1, as an older declare-batch left it.
    let connection = rusqlite::Connection::open(dir.path().join("l.db")).unwrap();
    connection
        .execute_batch(
            "ALTER TABLE declarations DROP COLUMN earlier_amount;
             ALTER TABLE declarations DROP COLUMN amount_changed_at;
             ALTER TABLE runs DROP COLUMN finished_at;
             ALTER TABLE runs DROP COLUMN exit_code;
             ALTER TABLE runs DROP COLUMN waiting;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    drop(connection);
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    let version: i64 = ledger
        .with(|c| c.query_row("PRAGMA user_version", [], |row| row.get(0)))
        .unwrap();
    assert_eq!(version, schema::VERSION);
    assert_eq!(version, 3);
    ledger
        .finish_run(0, 0, Duration::from_secs(86_400))
        .unwrap();
}

#[test]
fn a_run_end_is_recorded_and_old_raw_answers_are_dropped_but_their_fields_stay() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let old = request("D1", "P1", "100");
    let new = request("D2", "P2", "100");
    declare(&ledger, &old, Status::S, 2);
    declare(&ledger, &new, Status::S, 3);
    // The first answer came 100 days ago.
    let long_ago = ledger_time(Utc::now() - chrono::Duration::days(100));
    ledger
        .with(|c| {
            c.execute(
                "UPDATE calls SET answered_at = ?1 WHERE request_id = 'D1'",
                params![long_ago],
            )
        })
        .unwrap();
    let dropped = ledger
        .finish_run(4, 3, Duration::from_secs(90 * 86_400))
        .unwrap();
    assert_eq!(dropped, 1);
    let answers: Vec<(String, Option<String>)> = ledger
        .with(|c| {
            c.prepare("SELECT request_id, answer FROM calls ORDER BY request_id")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .unwrap();
    assert_eq!(answers[0], ("D1".to_owned(), None));
    assert_eq!(answers[1], ("D2".to_owned(), Some("{}".to_owned())));
    // The declaration itself still answers a re-feed.
    assert!(matches!(decide(&ledger, &old, false), Decision::Known(_)));
    let runs = ledger.status(None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].exit_code, runs[0].waiting), (Some(4), 3));
    assert_eq!((runs[0].success, runs[0].customs_pending), (2, 2));
    let oldest = ledger.oldest_open(None).unwrap().unwrap();
    assert_eq!(oldest.status, Status::S);
    ledger.vacuum().unwrap();
    assert!(matches!(decide(&ledger, &new, false), Decision::Known(_)));
}

#[test]
fn a_retransmission_forgets_the_old_bodys_customs_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    ledger
        .record_inquiry(&CustomsOutcome {
            request_id: "D1".into(),
            status: "CUSTOMS_ACCEPT_SUCCESS".into(),
            result_code: "ACCEPTED".into(),
            ..CustomsOutcome::default()
        })
        .unwrap();
    let runs = ledger.status(None).unwrap();
    assert_eq!(runs[0].customs_pending, 0);
    assert_eq!(runs[0].customs_results.get("ACCEPTED"), Some(&1));
    // The corrected amount goes as a retransmission and is answered S.
    let mut changed = first.clone();
    changed.declaration_amount.value = "90".into();
    let body = changed.to_body();
    ledger.record_call(3, &changed, &body, true).unwrap();
    ledger
        .record_outcome(&result(&changed, Status::S, 3), &changed, &body, "{}")
        .unwrap();
    let runs = ledger.status(None).unwrap();
    assert_eq!(
        runs[0].customs_pending, 1,
        "customs decides on the new body"
    );
    assert!(runs[0].customs_results.is_empty(), "{runs:?}");
    let open = ledger.open_declarations(None, "", 10).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].amount, "90");
}
