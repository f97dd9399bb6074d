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
    // A file of version 1, as an older declare-batch left it.
    let connection = rusqlite::Connection::open(dir.path().join("l.db")).unwrap();
    connection
        .execute_batch(&format!(
            "{} PRAGMA user_version = 1;",
            schema::MIGRATIONS[0]
        ))
        .unwrap();
    drop(connection);
    std::fs::write(
        dir.path().join("l.db.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    declare(&ledger, &first, Status::S, 2);
    let version: i64 = ledger
        .with(|c| c.query_row("PRAGMA user_version", [], |row| row.get(0)))
        .unwrap();
    assert_eq!(version, schema::VERSION);
    assert_eq!(version, 4);
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
    let long_ago = (Utc::now() - chrono::Duration::days(100)).timestamp_millis();
    ledger
        .with(|c| {
            c.execute(
                "UPDATE calls SET answered_at = ?1
                 WHERE declaration_id = (SELECT id FROM declarations WHERE request_id = 'D1')",
                params![long_ago],
            )
        })
        .unwrap();
    let dropped = ledger
        .finish_run(4, 3, Duration::from_secs(90 * 86_400))
        .unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(ledger.raw_answers("D1").unwrap(), vec![None]);
    assert_eq!(
        ledger.raw_answers("D2").unwrap(),
        vec![Some("{}".to_owned())]
    );
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

/// An answer as the API gives it, holding the result's own fields.
fn answer_of(result: &ResultRow) -> String {
    serde_json::json!({
        "result": {
            "resultCode": result.result_code,
            "resultMessage": result.result_message,
            "resultStatus": result.result_status.as_str(),
        },
        "pspPaymentId": result.psp_payment_id,
        "pspDeclarationRequestId": result.psp_declaration_request_id,
        "pspCustomsCode": result.psp_customs_code,
        "clearingTransactionId": result.clearing_transaction_id,
        "clearingChannel": result.clearing_channel,
        "pspOrderAmount": {"currency": "CNY", "value": result.psp_order_amount},
        "identityCheckResult": result.identity_check_result,
    })
    .to_string()
}

fn answered(request: &DeclareRequest, status: Status, row: u64, psp: &str) -> ResultRow {
    ResultRow {
        result_message: "Success".into(),
        psp_payment_id: format!("2000{psp}"),
        psp_declaration_request_id: format!("2026{psp}"),
        psp_customs_code: "31222699S7".into(),
        clearing_channel: "CUP".into(),
        clearing_transaction_id: format!("0000{psp}"),
        psp_order_amount: "1000".into(),
        ..result(request, status, row)
    }
}

#[test]
fn raw_answers_come_back_byte_for_byte_after_their_declaration_changed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    let body = first.to_body();
    // Sent twice: an unknown answer, then S.
    let unknown = r#"{"result":{"resultCode":"UNKNOWN_EXCEPTION","resultMessage":"try again","resultStatus":"U"}}"#;
    ledger.record_call(2, &first, &body, false).unwrap();
    let mut in_doubt = result(&first, Status::U, 2);
    in_doubt.result_code = "UNKNOWN_EXCEPTION".into();
    in_doubt.result_message = "try again".into();
    ledger
        .record_outcome(&in_doubt, &first, &body, unknown)
        .unwrap();
    ledger.record_call(2, &first, &body, false).unwrap();
    let declared = answered(&first, Status::S, 2, "111");
    let declared_answer = answer_of(&declared);
    ledger
        .record_outcome(&declared, &first, &body, &declared_answer)
        .unwrap();
    // A retransmission with another amount, answered S with other IDs.
    let mut changed = first.clone();
    changed.declaration_amount.value = "90".into();
    let changed_body = changed.to_body();
    ledger
        .record_call(3, &changed, &changed_body, true)
        .unwrap();
    let again = answered(&changed, Status::S, 3, "222");
    let again_answer = answer_of(&again);
    ledger
        .record_outcome(&again, &changed, &changed_body, &again_answer)
        .unwrap();
    let answers = ledger.raw_answers("D1").unwrap();
    assert_eq!(
        answers,
        vec![
            Some(unknown.to_owned()),
            Some(declared_answer.clone()),
            Some(again_answer.clone())
        ]
    );
    // An inquiry settling it anew changes its IDs; the answers stay.
    ledger
        .settle_by_inquiry(&ResultRow {
            psp_payment_id: "2000333".into(),
            ..answered(&changed, Status::S, 3, "333")
        })
        .unwrap();
    let Decision::Known(known) = decide(&ledger, &changed, false) else {
        panic!("the retransmitted body is known");
    };
    assert_eq!(
        known.psp_payment_id, "2000222",
        "settle_by_inquiry keeps an S"
    );
    assert_eq!(ledger.raw_answers("D1").unwrap()[2], Some(again_answer));
    // The calls know which body each carried: the first two the old one.
    let bodies: Vec<Option<i64>> = ledger
        .with(|c| {
            c.prepare(
                "SELECT COALESCE(c.body_fp, d.body_fp) FROM calls c
                 JOIN declarations d ON d.id = c.declaration_id ORDER BY c.seq",
            )?
            .query_map([], |row| row.get(0))?
            .collect()
        })
        .unwrap();
    let old = ledger.fingerprints(&first, &body).body;
    let new = ledger.fingerprints(&changed, &changed_body).body;
    assert_eq!(bodies, vec![Some(old), Some(old), Some(new)]);
}

#[test]
fn an_unknown_settled_by_inquiry_keeps_its_earlier_answer() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    let body = first.to_body();
    ledger.record_call(2, &first, &body, false).unwrap();
    let failed = answered(&first, Status::F, 2, "111");
    let failed_answer = answer_of(&failed);
    ledger
        .record_outcome(&failed, &first, &body, &failed_answer)
        .unwrap();
    ledger.record_call(2, &first, &body, false).unwrap();
    ledger
        .record_outcome(&result(&first, Status::U, 2), &first, &body, "")
        .unwrap();
    ledger
        .settle(
            &first.customs_declaration_request_id,
            "<> 'S'",
            "SUCCESS",
            "found",
            "PAY9",
            "PSP9",
        )
        .unwrap();
    let Decision::Known(known) = decide(&ledger, &first, false) else {
        panic!("settled S");
    };
    assert_eq!(
        (known.psp_payment_id.as_str(), known.result_message.as_str()),
        ("PAY9", "found")
    );
    assert_eq!(
        ledger.raw_answers("D1").unwrap(),
        vec![Some(failed_answer), None]
    );
}

#[test]
fn a_ledger_of_version_3_is_rewritten_compactly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute_batch(&format!(
            "{} {} {} PRAGMA user_version = 3;",
            schema::MIGRATIONS[0],
            schema::MIGRATIONS[1],
            schema::MIGRATIONS[2]
        ))
        .unwrap();
    std::fs::write(
        dir.path().join("l.db.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[0; 32]);
    let declared = request("D1", "P1", "100");
    let unknown = request("D2", "P2", "50");
    let hmac = |bytes: &[u8]| aws_lc_rs::hmac::sign(&key, bytes).as_ref().to_vec();
    let fixed = |request: &DeclareRequest| hmac(&keys::fixed_part(request).to_body());
    let answer = answer_of(&answered(&declared, Status::S, 2, "111"));
    connection
        .execute_batch(
            "INSERT INTO scopes(id, endpoint, client_id) VALUES (1, 'https://api.example', 'C1');
             INSERT INTO runs(id, scope_id, out_dir, input, input_sha256, started_at)
             VALUES (1, 1, 'night-0', 'orders.csv', 'abc', '2026-11-01T01:00:00.000Z');",
        )
        .unwrap();
    for (request, status, settled) in [
        (&declared, "S", Some("2026-11-01T01:00:02.000Z")),
        (&unknown, "U", None),
    ] {
        connection
            .execute(
                "INSERT INTO declarations(scope_id, request_id, payment_request_id, order_id,
                     customs_code, merchant_customs_code, merchant_customs_name, amount,
                     certificate_no, body_hmac, fixed_hmac, status, result_code, result_message,
                     psp_payment_id, psp_declaration_request_id, psp_customs_code,
                     clearing_channel, clearing_transaction_id, psp_order_amount,
                     identity_check_result, run_id, input_row, first_call_at, last_call_at,
                     settled_at)
                 VALUES (1, ?1, ?2, ?2, 'ZONGSHU', 'M1', 'Shop', ?3, '110105********002X', ?4,
                         ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, '1000', 'CHECK_PASSED', 1, 2,
                         '2026-11-01T01:00:01.000Z', '2026-11-01T01:00:01.000Z', ?14)",
                params![
                    request.customs_declaration_request_id,
                    request.payment_request_id,
                    request.declaration_amount.value,
                    hmac(&request.to_body()),
                    fixed(request),
                    status,
                    if status == "S" { "SUCCESS" } else { "" },
                    if status == "S" { "Success" } else { "" },
                    if status == "S" { "2000111" } else { "" },
                    if status == "S" { "2026111" } else { "" },
                    if status == "S" { "31222699S7" } else { "" },
                    if status == "S" { "CUP" } else { "" },
                    if status == "S" { "0000111" } else { "" },
                    settled,
                ],
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO calls(scope_id, request_id, run_id, input_row, sent_at, body_hmac,
                     retransmission, status, result_code, result_message, answer, answered_at)
                 VALUES (1, ?1, 1, 2, '2026-11-01T01:00:01.000Z', ?2, 0, ?3, ?4, ?5, ?6,
                         '2026-11-01T01:00:02.000Z')",
                params![
                    request.customs_declaration_request_id,
                    hmac(&request.to_body()),
                    status,
                    if status == "S" { "SUCCESS" } else { "" },
                    if status == "S" { "Success" } else { "" },
                    (status == "S").then_some(&answer),
                ],
            )
            .unwrap();
    }
    // D1's customs outcome, and an inquiry about an ID the ledger never held.
    connection
        .execute_batch(
            "INSERT INTO inquiries(scope_id, request_id, run_id, inquired_at, status,
                 customs_result_code, customs_result_description, returned_time, modified_time)
             VALUES (1, 'D1', 1, '2026-11-02T01:00:00.000Z', 'CUSTOMS_ACCEPT_SUCCESS',
                     'ACCEPTED', 'accepted', '2026-11-02 09:00:00', '2026-11-02 09:00:00'),
                    (1, 'D0', 1, '2026-11-02T01:00:00.000Z', 'NOT_FOUND', '', '', '', '');
             UPDATE declarations SET customs_status = 'CUSTOMS_ACCEPT_SUCCESS',
                 customs_result_code = 'ACCEPTED', customs_result_description = 'accepted',
                 inquired_at = '2026-11-02T01:00:00.000Z'
             WHERE request_id = 'D1';",
        )
        .unwrap();
    drop(connection);
    let ledger = open(dir.path());
    // What it held answers as before.
    let Decision::Known(known) = decide(&ledger, &declared, false) else {
        panic!("the declared body is known");
    };
    assert_eq!(known.psp_payment_id, "2000111");
    assert_eq!(known.customs_code, "ZONGSHU");
    assert_eq!(ledger.raw_answers("D1").unwrap(), vec![Some(answer)]);
    // The order is still declared under D1.
    let other = request("D9", "P1", "100");
    assert!(matches!(
        decide(&ledger, &other, false),
        Decision::Refused(Refusal::OrderDeclared { ref earlier }) if earlier.request_id == "D1"
            && earlier.at == "2026-11-01T01:00:02.000Z" && earlier.run == "night-0"
    ));
    // A changed amount under D1 counts from the last call's time.
    let mut changed = declared.clone();
    changed.declaration_amount.value = "90".into();
    assert!(matches!(
        decide(&ledger, &changed, false),
        Decision::Send {
            retransmission: true
        }
    ));
    assert_eq!(
        decide(&ledger, &unknown, false),
        Decision::Send {
            retransmission: false
        }
    );
    let mut exported = Vec::new();
    ledger
        .export(None, None, None, |row| {
            exported.push(row);
            Ok(())
        })
        .unwrap();
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0].customs_declaration_request_id, "D2");
    assert_eq!(exported[0].last_call_at, "2026-11-01T01:00:01.000Z");
    assert_eq!(exported[1].settled_at, "2026-11-01T01:00:02.000Z");
    assert_eq!(
        (
            exported[1].merchant_customs_name.as_str(),
            exported[1].calls
        ),
        ("Shop", 1)
    );
    assert_eq!(
        (
            exported[1].declaration_request_status.as_str(),
            exported[1].customs_result_code.as_str(),
            exported[1].inquired_at.as_str()
        ),
        (
            "CUSTOMS_ACCEPT_SUCCESS",
            "ACCEPTED",
            "2026-11-02T01:00:00.000Z"
        )
    );
    let runs = ledger.status(None).unwrap();
    assert_eq!((runs[0].success, runs[0].unknown), (1, 1));
    assert_eq!(runs[0].customs_results.get("ACCEPTED"), Some(&1));
    assert_eq!(runs[0].customs_pending, 0);
    // D1 has its customs outcome: only D2 (U) is still open.
    let open = ledger.open_declarations(None, "", 10).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].request_id, "D2");
    let inquiries: (i64, i64) = ledger
        .with(|c| {
            c.query_row(
                "SELECT count(*), count(request_id) FROM inquiries",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
        })
        .unwrap();
    assert_eq!(inquiries, (2, 1), "the unknown ID keeps its request ID");
}

/// Issue 22's measure, as a floor that would catch a regression: 4,000
/// declarations with short answers take at most 400 bytes each.
#[test]
fn a_declaration_with_a_short_answer_takes_under_400_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let writer = ledger.writer().unwrap();
    let declarations = 4000;
    for n in 0..declarations {
        let mut request = request(&format!("DCL{n:020}"), &format!("PAY{n:020}"), "100");
        request.merchant_customs_info.merchant_customs_name = "杭州优选跨境贸易有限公司".into();
        let body = request.to_body();
        writer.call(n + 2, &request, &body, false);
        let result = answered(&request, Status::S, n + 2, &format!("{n:020}"));
        let answer = answer_of(&result);
        writer.outcome(result, &request, &body, &answer, Box::new(|_| {}));
    }
    writer.finish();
    // As a run leaves it: the log copied in, no VACUUM.
    ledger
        .with(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
        .unwrap();
    let size = std::fs::metadata(dir.path().join("l.db")).unwrap().len();
    let each = size / declarations;
    assert!(each <= 400, "{each} bytes per declaration");
    let last = format!("DCL{:020}", declarations - 1);
    assert!(
        ledger.raw_answers(&last).unwrap()[0]
            .as_deref()
            .is_some_and(|a| a.contains("pspPaymentId"))
    );
}

#[test]
fn a_split_order_is_its_reference_and_only_declared_ones_count() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let mut part = request("D1", "P1", "100");
    part.is_split = crate::protocol::IsSplit::Yes;
    part.reference_order_id = Some("ORD1".into());
    declare(&ledger, &part, Status::S, 2);
    // Another part of the same payment, another order: sent.
    let mut second = request("D2", "P1", "50");
    second.is_split = crate::protocol::IsSplit::Yes;
    second.reference_order_id = Some("ORD2".into());
    assert_eq!(
        decide(&ledger, &second, false),
        Decision::Send {
            retransmission: false
        }
    );
    // The payment unsplit is not the order ORD1 either.
    assert_eq!(
        decide(&ledger, &request("D3", "P1", "150"), false),
        Decision::Send {
            retransmission: false
        }
    );
    // ORD1 again under another ID: refused.
    let mut again = part.clone();
    again.customs_declaration_request_id = "D4".into();
    again.payment_request_id = "P2".into();
    assert!(matches!(
        decide(&ledger, &again, false),
        Decision::Refused(Refusal::OrderDeclared { ref earlier }) if earlier.request_id == "D1"
    ));
    // An order only failed (F) or in doubt (U) is no declaration.
    declare(&ledger, &second, Status::F, 3);
    let mut third = second.clone();
    third.customs_declaration_request_id = "D5".into();
    assert_eq!(
        decide(&ledger, &third, false),
        Decision::Send {
            retransmission: false
        }
    );
}

/// A run's writer whose group starts with an answer (a read first) waits
/// for another process's write like any other, instead of failing at once
/// when it needs the write lock.
#[test]
fn a_group_beginning_with_an_answer_waits_for_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let writer = ledger.writer().unwrap();
    let (first, second) = (request("D1", "P1", "100"), request("D2", "P2", "100"));
    let (told, heard) = std::sync::mpsc::channel::<Result<(), String>>();
    for request in [&first, &second] {
        writer.call(2, request, &request.to_body(), false);
    }
    // An S for `request`, told on `told` once written.
    let settle = |request: &DeclareRequest, told: std::sync::mpsc::Sender<_>| {
        writer.outcome(
            result(request, Status::S, 2),
            request,
            &request.to_body(),
            "{}",
            Box::new(move |written| {
                let _ = told.send(written.map_err(|e: &LedgerError| e.to_string()));
            }),
        );
    };
    settle(&first, told.clone());
    let deadline = Duration::from_secs(30);
    heard.recv_timeout(deadline).unwrap().unwrap();
    // Another process writes meanwhile.
    let other = rusqlite::Connection::open(dir.path().join("l.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    settle(&second, told);
    std::thread::sleep(Duration::from_millis(300));
    other
        .execute("INSERT INTO texts(text) VALUES ('another process')", [])
        .unwrap();
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(heard.recv_timeout(deadline).unwrap(), Ok(()));
    writer.finish();
    assert!(matches!(
        decide(&ledger, &second, false),
        Decision::Known(_)
    ));
}

/// An S replayed from a journal whose call never reached the ledger (killed
/// between the two) counts its retransmission wait from when it was settled:
/// a correction is sent once the wait is over, not refused for ever.
#[test]
fn a_replayed_outcome_without_its_call_can_be_corrected_later() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    ledger
        .ensure_outcome(&result(&first, Status::S, 2), &first, &first.to_body())
        .unwrap();
    let mut changed = first.clone();
    changed.declaration_amount.value = "90".into();
    let later = Utc::now() + chrono::Duration::seconds(301);
    assert_eq!(
        ledger
            .decide(&changed, &changed.to_body(), later, WAIT, false)
            .unwrap(),
        Decision::Send {
            retransmission: true
        }
    );
    let mut exported = Vec::new();
    ledger
        .export(None, None, None, |row| {
            exported.push(row);
            Ok(())
        })
        .unwrap();
    assert_eq!(exported[0].calls, 0);
    assert_eq!(exported[0].last_call_at, exported[0].settled_at);
    assert!(!exported[0].first_call_at.is_empty());
}

/// Shapes pile up only when answers differ in more than the known fields;
/// past a thousand, a run's end deletes those no kept answer uses.
#[test]
fn unused_shapes_are_deleted_once_they_pile_up() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path());
    let first = request("D1", "P1", "100");
    let body = first.to_body();
    ledger.record_call(2, &first, &body, false).unwrap();
    let answer = r#"{"result":{"resultStatus":"S"},"traceId":"t-1"}"#;
    ledger
        .record_outcome(&result(&first, Status::S, 2), &first, &body, answer)
        .unwrap();
    let shapes = |ledger: &Ledger| -> i64 {
        ledger
            .with(|c| c.query_row("SELECT count(*) FROM shapes", [], |row| row.get(0)))
            .unwrap()
    };
    ledger
        .with(|c| {
            c.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
                 INSERT INTO shapes(shape) SELECT 'trace ' || i FROM n",
                [],
            )
        })
        .unwrap();
    assert_eq!(shapes(&ledger), 1201);
    ledger
        .finish_run(0, 0, Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(shapes(&ledger), 1, "the one a kept answer uses stays");
    assert_eq!(
        ledger.raw_answers("D1").unwrap(),
        vec![Some(answer.to_owned())]
    );
}
