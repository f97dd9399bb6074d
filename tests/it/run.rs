//! `declare-batch run`: the real binary against the real sandbox over
//! loopback, judged by the sandbox's own counts and by the output files.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{
    DEADLINE, SandboxProcess, WithoutDeclareEnv, Workdir, config_for, csv_records,
    finish_with_deadline, listed_rows, orders, rows, signal, spawn_run, wait_for_journal,
    wait_until,
};

fn results(work: &Workdir, name: &str) -> Vec<csv::StringRecord> {
    let text = work.read_csv_output(name);
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_samples_run_against_the_embedded_sandbox() {
    let work = Workdir::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = root.join("samples/orders.csv");
    let run = work.run(&["run", input.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("embedded sandbox"), "{}", run.stderr);
    let summary = work.summary();
    assert_eq!(summary["endpoint"], "embedded-sandbox");
    assert_eq!(rows(&summary), (25, 20, 5, 1));
    assert_eq!(summary["results"]["S"], 17);
    assert_eq!(summary["results"]["F"], 3);
    assert_eq!(summary["results"]["U"], 0);
    // Identity checks are counted, with the row that did not pass.
    assert_eq!(summary["identity_checks"]["CHECK_PASSED"], 9);
    assert_eq!(summary["identity_checks"]["CHECK_NOT_PASSED"], 1);
    assert_eq!(summary["identity_not_passed_rows"], serde_json::json!([8]));
    assert!(
        run.stdout
            .contains("identity checks: CHECK_NOT_PASSED 1, CHECK_PASSED 9"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("not passed in rows 8"),
        "{}",
        run.stdout
    );
    // The embedded sandbox's ledger is inside the out folder.
    assert!(work.path("out/declare-batch.db").exists());
    // Every row exactly once across results and rejected.
    let mut all: Vec<u64> = listed_rows(&work, "out/results.csv");
    all.extend(listed_rows(&work, "out/rejected.csv"));
    all.sort();
    let expected: Vec<u64> = (2..=27).filter(|&line| line != 14).collect();
    assert_eq!(all, expected);
    let results = results(&work, "out/results.csv");
    let failed: BTreeSet<(&str, &str)> = results
        .iter()
        .filter(|r| &r[6] == "F")
        .map(|r| (&r[1], &r[7]))
        .collect();
    assert_eq!(
        failed,
        BTreeSet::from([
            ("PAY202611220009", "INVALID_ORDER_STATUS"),
            ("PAY202611220012", "DECLARED_AMOUNT_EXCEED_LIMIT"),
            ("PAY202611220015", "ORDER_NOT_EXIST"),
        ])
    );
    assert_eq!(
        work.read_csv_output("out/retry.csv").lines().count(),
        1,
        "only the header"
    );
    // Buyer certificate numbers are personal data: never printed, never in
    // results, summary or journal (rejected.csv and retry.csv carry rows as
    // given, by design).
    let samples = std::fs::read_to_string(&input).unwrap();
    let certificates: BTreeSet<&str> = samples
        .lines()
        .flat_map(|line| line.split(','))
        .filter(|cell| cell.len() == 18 && cell.chars().take(17).all(|c| c.is_ascii_digit()))
        .collect();
    assert!(certificates.len() >= 8, "{certificates:?}");
    let places = [
        run.stdout.clone(),
        run.stderr.clone(),
        work.read_csv_output("out/results.csv"),
        std::fs::read_to_string(work.path("out/summary.json")).unwrap(),
        std::fs::read_to_string(work.path("out/journal.jsonl")).unwrap(),
        std::fs::read_to_string(work.path("out/report.html")).unwrap(),
    ];
    for certificate in &certificates {
        for place in &places {
            assert!(!place.contains(certificate), "{certificate} leaked");
        }
    }
    // report.html: one self-contained page a person opens.
    let report = std::fs::read_to_string(work.path("out/report.html")).unwrap();
    assert!(
        run.stdout.trim_end().ends_with("out/report.html"),
        "{}",
        run.stdout
    );
    assert!(report.starts_with("<!DOCTYPE html>") && report.contains("<meta charset=\"utf-8\">"));
    for forbidden in ["<script", "http://", "https://", "src=", "@import", "url("] {
        assert!(!report.contains(forbidden), "{forbidden} in report.html");
    }
    for shown in [
        "nothing was declared for real",
        "<b>17</b>S",
        "<b>3</b>F",
        "ORDER_NOT_EXIST",
        "CHECK_NOT_PASSED",
        "AMOUNT_INVALID",
        "<svg",
        "p99",
        // An F row that needs action, with its code and message.
        "PAY202611220015",
        "Failed (F): final answers (3)",
        "Rejected: fix them in rejected.xlsx and feed it back (5)",
    ] {
        assert!(report.contains(shown), "{shown} not in report.html");
    }
}

#[test]
fn faults_end_in_correct_outputs_and_retry_csv_converges() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 120);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--seed",
            "3",
            "--fail-u-before",
            "0.15",
            "--fail-u-after",
            "0.1",
            "--fail-http-500",
            "0.1",
            "--fail-drop",
            "0.05",
            "--slow",
            "0.05",
            "--latency-ms",
            "1500",
        ],
    );
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(
        run.code, 4,
        "some rows stay unknown after 3 attempts: {}",
        run.stderr
    );
    let summary = work.summary();
    let unknown = summary["results"]["U"].as_u64().unwrap();
    assert!(
        unknown > 0 && summary["results"]["S"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert_eq!(listed_rows(&work, "out/results.csv").len(), 120);
    // retry.csv: the U rows of results.csv, with the input's own columns.
    let retry = work.read_csv_output("out/retry.csv");
    assert!(retry.starts_with("paymentRequestId,customsDeclarationRequestId,"));
    assert_eq!(retry.lines().count() as u64 - 1, unknown);
    assert!(retry.contains(",kept "), "other columns are kept");
    // Feed retry.csv back until nothing is left.
    let mut input = work.path("out/retry.csv").display().to_string();
    let mut round = 0;
    loop {
        round += 1;
        assert!(round < 10, "retry.csv does not converge");
        let out = format!("retry-{round}");
        let run = work.run(&["run", &input, "--config", &config, "--out", &out]);
        assert!(run.code == 0 || run.code == 4, "{}", run.stderr);
        if run.code == 0 {
            break;
        }
        input = work.path(&format!("{out}/retry.csv")).display().to_string();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stats = runtime.block_on(sandbox.stats());
    assert_eq!(stats.request_ids_with_distinct_bodies, 0, "one body per ID");
    assert!(!stats.by_code.contains_key("REPEAT_REQ_INCONSISTENT"));
    assert!(!stats.by_code.contains_key("DUPLICATED_DECLARATION"));
    assert_eq!(stats.request_ids, 120);
}

#[test]
fn no_second_carries_more_than_the_rate() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 45);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config, "--rate", "15"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stats = runtime.block_on(sandbox.stats());
    assert_eq!(stats.requests, 45);
    // The sandbox's seconds are not the client's: allow the one token of
    // burst at a window's edge.
    assert!(stats.max_per_second <= 16, "{:?}", stats.per_second);
}

#[test]
fn unverified_answers_are_warned_about_and_recorded() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config, "--out", "verified"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("not verified"), "{}", run.stderr);
    let summary = |dir: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(work.path(&format!("{dir}/summary.json"))).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(summary("verified")["response_signatures"], "verified");

    // Loopback without a key: not verified, one warning.
    let config = config_for(&work, &sandbox, &[("alipay_public_key", "")]);
    let run = work.run(&["run", &orders, "--config", &config, "--out", "loopback"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("not verified").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        summary("loopback")["response_signatures"],
        "loopback_without_key"
    );

    // Opted out: warned even with a key.
    let config = config_for(&work, &sandbox, &[("verify_responses", "false")]);
    let run = work.run(&["run", &orders, "--config", &config, "--out", "opted-out"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("NOT verified (verify_responses = false)"),
        "{}",
        run.stderr
    );
    assert_eq!(
        summary("opted-out")["response_signatures"],
        "disabled_by_config"
    );
}

#[test]
fn a_wrong_client_key_stops_the_run_with_nothing_final() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 30);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let run = work.run(&["keygen", "other-keys"]);
    assert_eq!(run.code, 0);
    // The sandbox knows another client public key than this private key's.
    let other_key = format!(
        "\"{}\"",
        work.path("other-keys/client_private.pem").display()
    );
    let config = config_for(&work, &sandbox, &[("private_key", &other_key)]);
    let run = work.run(&["run", &orders, "--config", &config]);
    run.expect_fatal(&["INVALID_SIGNATURE", "retry.csv"]);
    let results = results(&work, "out/results.csv");
    assert_eq!(results.len(), 30);
    assert!(results.iter().all(|r| &r[6] == "U"), "nothing final");
    // All 30 rows can be sent again once the key is fixed.
    assert_eq!(work.read_csv_output("out/retry.csv").lines().count(), 31);
    assert_eq!(work.summary()["exit_code"], 1);
}

/// A config whose customs list has a code the sandbox does not know: rows
/// with it pass local validation and are answered PARAM_ILLEGAL.
fn xiamen_config(work: &Workdir, sandbox: &SandboxProcess) -> String {
    let config = config_for(work, sandbox, &[("concurrency", "1")]);
    let text = std::fs::read_to_string(&config).unwrap()
        + "[validate]\ncustoms_codes = [\"ZONGSHU\", \"XIAMEN\"]\n";
    work.write("xiamen.toml", text).display().to_string()
}

#[test]
fn a_batch_whose_first_answers_are_all_param_illegal_stops_with_rows_unknown() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 30);
    let text = std::fs::read_to_string(&orders)
        .unwrap()
        .replace("ZONGSHU", "XIAMEN");
    work.write("orders.csv", text);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = xiamen_config(&work, &sandbox);
    let run = work.run(&["run", &orders, "--config", &config, "--quiet"]);
    run.expect_fatal(&["first 20 answers were all PARAM_ILLEGAL", "retry.csv"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The 20th answer stops it; a request already on the wire is awaited.
    let sent = runtime.block_on(sandbox.stats()).requests;
    assert!((20..=21).contains(&sent), "{sent} requests");
    let results = results(&work, "out/results.csv");
    assert_eq!(results.len(), 30);
    assert!(results.iter().all(|r| &r[6] == "U"), "nothing final");
    assert_eq!(work.read_csv_output("out/retry.csv").lines().count(), 31);
    // The answers were journaled only as provisional: a rerun sends again.
    let journal = std::fs::read_to_string(work.path("out/journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"provisional\":true").count(), 20);
    assert_eq!(journal.matches("\"t\":\"final\"").count(), 20);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(work.summary()["exit_code"], 1);
}

#[test]
fn param_illegal_answers_among_others_are_the_rows_own() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 30);
    let text: String = std::fs::read_to_string(&orders)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(n, line)| match n {
            1..=5 => line.replace("ZONGSHU", "XIAMEN") + "\n",
            _ => format!("{line}\n"),
        })
        .collect();
    work.write("orders.csv", text);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = xiamen_config(&work, &sandbox);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let summary = work.summary();
    assert_eq!(summary["codes"]["PARAM_ILLEGAL"], 5);
    assert_eq!(summary["results"]["F"], 5);
    assert_eq!(summary["results"]["S"], 25);
    // Final now: a rerun sends nothing.
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(work.summary()["requests_sent"], 0);
}

#[test]
fn an_endpoint_that_keeps_failing_stops_the_run() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 200);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let summary = work.summary();
    let stopped = summary["stopped"].as_str().unwrap();
    assert!(stopped.contains("endpoint failing"), "{summary}");
    assert!(
        stopped.contains("HTTP_500"),
        "names the last cause: {summary}"
    );
    assert!(
        summary["codes"]["NOT_SENT"].as_u64().unwrap() > 100,
        "{summary}"
    );
    assert_eq!(work.read_csv_output("out/retry.csv").lines().count(), 201);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent = runtime.block_on(sandbox.stats()).requests;
    assert!(
        sent < 100,
        "the breaker stopped burning rows: {sent} requests"
    );
}

#[test]
fn a_run_whose_requests_had_other_bytes_is_never_resumed() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path("out/run.json")).unwrap()).unwrap();
    assert_eq!(record["body_format"], 1);
    // Recorded before the format was kept: version 1's bytes, resumed.
    let mut old = record.clone();
    old.as_object_mut().unwrap().remove("body_format");
    work.write("out/run.json", old.to_string());
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime.block_on(sandbox.stats()).requests,
        3,
        "nothing re-sent"
    );
    // Made by a version that built other bytes: refused.
    let mut other = record;
    other["body_format"] = 2.into();
    work.write("out/run.json", other.to_string());
    let run = work.run(&["run", &orders, "--config", &config]);
    run.expect_fatal(&["request format 2", "--fresh"]);
}

#[test]
fn validate_keeps_out_of_a_run_folder_and_run_adopts_a_validate_folder() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // run adopts a folder that holds only validate outputs.
    let run = work.run(&["validate", &orders, "--out", "out"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = work.run(&["run", &orders, "--config", &config, "--out", "out"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(work.summary()["command"], "run");
    // validate refuses the run's folder and leaves its files alone.
    let before = std::fs::read(work.path("out/summary.json")).unwrap();
    let run = work.run(&["validate", &orders, "--out", "out"]);
    run.expect_fatal(&["holds a run", "another --out folder"]);
    assert_eq!(
        std::fs::read(work.path("out/summary.json")).unwrap(),
        before
    );
    // ...and a folder locked by a live process.
    std::fs::create_dir_all(work.path("busy")).unwrap();
    work.write("busy/.lock", format!("{}\nrun\n", std::process::id()));
    let run = work.run(&["validate", &orders, "--out", "busy"]);
    run.expect_fatal(&["in use by another declare-batch run"]);
    assert!(!work.path("busy/summary.json").exists());
}

#[test]
fn the_out_folder_is_guarded() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // INPUT inside --out.
    std::fs::create_dir_all(work.path("inside")).unwrap();
    let inside = work.write("inside/orders.csv", std::fs::read(&orders).unwrap());
    let run = work.run(&[
        "run",
        inside.to_str().unwrap(),
        "--config",
        &config,
        "--out",
        "inside",
    ]);
    run.expect_fatal(&["contains the input"]);
    // A folder locked by a live process.
    std::fs::create_dir_all(work.path("locked")).unwrap();
    work.write("locked/.lock", format!("{}\n", std::process::id()));
    let run = work.run(&["run", &orders, "--config", &config, "--out", "locked"]);
    run.expect_fatal(&["in use by another declare-batch run"]);
    // A stale lock is taken over.
    work.write("locked/.lock", "999999999\n");
    let run = work.run(&["run", &orders, "--config", &config, "--out", "locked"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!work.path("locked/.lock").exists(), "the lock is released");
    // Another run's folder: refused, unless --fresh.
    let (other, _) = {
        let text = std::fs::read_to_string(&orders)
            .unwrap()
            .replace("Shop", "Shop 2");
        (work.write("other.csv", text), ())
    };
    let run = work.run(&[
        "run",
        other.to_str().unwrap(),
        "--config",
        &config,
        "--out",
        "locked",
    ]);
    run.expect_fatal(&["holds another run", "--fresh"]);
    let run = work.run(&[
        "run",
        other.to_str().unwrap(),
        "--config",
        &config,
        "--out",
        "locked",
        "--fresh",
    ]);
    // Shop 2 changes the merchant's name under declared IDs: corrections
    // that wait for their retransmission (U RETRANSMIT_LATER, exit 4).
    assert_eq!(
        run.code, 4,
        "Shop 2 changes the bodies of known IDs: {}",
        run.stderr
    );
    let aside: Vec<_> = std::fs::read_dir(work.path("locked"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".previous-"))
        .collect();
    assert_eq!(aside.len(), 1, "the old outputs moved aside");
    assert!(
        work.path(&format!("locked/{}/results.csv", aside[0]))
            .exists()
    );
}

/// IDs whose final S is in the journal.
pub fn journaled_successes(work: &Workdir) -> BTreeSet<String> {
    let text = std::fs::read_to_string(work.path("out/journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["t"] == "final" && entry["result"]["resultStatus"] == "S")
        .map(|entry| {
            entry["result"]["customsDeclarationRequestId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn kill_9_at_any_moment_then_a_rerun_sends_no_journaled_success_again() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 150);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--fail-u-after",
            "0.1",
            "--seed",
            "9",
        ],
    );
    let config = config_for(
        &work,
        &sandbox,
        &[("rate_per_sec", "60"), ("max_attempts", "10")],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Each run resumes the one killed before it.
    let mut journaled = BTreeSet::new();
    let mut counts_then = std::collections::BTreeMap::new();
    let check = |journaled: &BTreeSet<String>, then: &std::collections::BTreeMap<String, u32>| {
        let now = runtime.block_on(sandbox.stats()).requests_per_id;
        for id in journaled {
            assert_eq!(now[id], then[id], "{id} was journaled S and sent again");
        }
        now
    };
    for kill_after in [10, 55, 100] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_declare-batch"))
            .args(["run", &orders, "--config", &config, "--quiet"])
            .current_dir(work.path(""))
            .without_declare_env()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill once the journal holds this many successes.
        wait_until(&mut child, DEADLINE, "the successes to kill at", || {
            journaled_successes(&work).len() >= kill_after
        });
        child.kill().unwrap(); // SIGKILL
        crate::common::wait_with_deadline(&mut child, DEADLINE);
        counts_then = check(&journaled, &counts_then);
        journaled = journaled_successes(&work);
    }
    let run = work.run(&["run", &orders, "--config", &config, "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    check(&journaled, &counts_then);
    assert!(work.summary()["replayed_from_journal"].as_u64().unwrap() >= 100);
    // Once more: everything is journaled now, nothing is sent.
    let run = work.run(&["run", &orders, "--config", &config, "--quiet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        work.summary()["requests_sent"],
        0,
        "everything was journaled"
    );
    // Every row exactly once.
    let mut listed = listed_rows(&work, "out/results.csv");
    listed.sort();
    assert_eq!(listed, (2..152).collect::<Vec<u64>>());
    assert!(
        results(&work, "out/results.csv")
            .iter()
            .all(|r| &r[6] == "S")
    );
    let stats = runtime.block_on(sandbox.stats());
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
    assert!(!stats.by_code.contains_key("REPEAT_REQ_INCONSISTENT"));
    assert!(!stats.by_code.contains_key("DUPLICATED_DECLARATION"));
    assert!(!work.path("out/.lock").exists());
    // The ledger survived the kills too: every declaration once, all S,
    // and another folder with the same export sends nothing.
    let export = work.run(&["ledger", "export", "--config", &config, "--status", "S"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut reader = csv::Reader::from_reader(export.stdout.as_bytes());
    let ids: BTreeSet<String> = reader
        .records()
        .map(|record| record.unwrap()[0].to_owned())
        .collect();
    assert_eq!(ids.len(), 150);
    let before = runtime.block_on(sandbox.stats()).requests_per_id;
    let run = work.run(&["run", &orders, "--config", &config, "--out", "again"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(runtime.block_on(sandbox.stats()).requests_per_id, before);
}

/// The first run's write failures cost no declared row: the rerun sends
/// again no row whose answer the journal holds, only rows that were in
/// flight (their attempt journaled, their answer not).
fn assert_resumed_after_failure(
    work: &Workdir,
    sandbox: &SandboxProcess,
    orders: &str,
    config: &str,
    rows: usize,
    first: &std::collections::BTreeMap<String, u32>,
) {
    let journaled = journaled_successes(work);
    let journal = std::fs::read_to_string(work.path("out/journal.jsonl")).unwrap_or_default();
    let run = work.run(&["run", orders, "--config", config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stats = runtime.block_on(sandbox.stats());
    for (id, count) in first {
        if stats.requests_per_id[id] > *count {
            assert!(
                !journaled.contains(id),
                "{id} was journaled S and sent again"
            );
            assert!(
                journal.contains(&format!("\"id\":\"{id}\"")),
                "{id} was sent again but was never in flight"
            );
        }
    }
    assert_eq!(stats.request_ids, rows);
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
    let mut listed = listed_rows(work, "out/results.csv");
    listed.sort();
    assert_eq!(listed, (2..rows as u64 + 2).collect::<Vec<u64>>());
}

#[test]
fn a_ledger_that_cannot_be_written_stops_the_run() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 300);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // The ledger's write-ahead log (a few pages a row) outgrows 256 KiB
    // long before the journal (about 600 bytes a row) or results.csv do;
    // a write that fails on a full disk fails alike.
    let run = work.run_with_file_limit(256, &["run", &orders, "--config", &config]);
    run.expect_fatal(&[
        "declare-batch.db",
        "disk I/O error",
        "run the same command again",
    ]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("cannot write").count(),
        2,
        "said once as it happened and once at the end: {}",
        run.stderr
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime.block_on(sandbox.stats());
    assert!(
        first.requests < 200,
        "it stopped sending: {}",
        first.requests
    );
    let summary = work.summary();
    assert_eq!(summary["exit_code"], 1);
    assert!(
        summary["stopped"]
            .as_str()
            .unwrap()
            .contains("declare-batch.db"),
        "{summary}"
    );
    assert_resumed_after_failure(
        &work,
        &sandbox,
        &orders,
        &config,
        300,
        &first.requests_per_id,
    );
}

/// A failed ledger write leaves every valid row once in results.csv, the
/// unsettled ones in retry.csv, and a summary that agrees with itself:
/// feeding retry.csv back is enough.
#[cfg(target_os = "linux")]
#[test]
fn after_a_failed_ledger_write_retry_csv_is_enough() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 300);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run_with_file_limit(256, &["run", &orders, "--config", &config]);
    run.expect_fatal(&["declare-batch.db"]);
    let mut listed = listed_rows(&work, "out/results.csv");
    listed.sort();
    assert_eq!(listed, (2..302).collect::<Vec<u64>>(), "every row once");
    let results = csv_records(&work, "out/results.csv");
    let unknown: Vec<&str> = results
        .iter()
        .filter(|r| r["resultStatus"] == "U")
        .map(|r| r["customsDeclarationRequestId"].as_str())
        .collect();
    assert!(!unknown.is_empty());
    let retry = csv_records(&work, "out/retry.csv");
    let retried: Vec<&str> = retry
        .iter()
        .map(|r| r["customsDeclarationRequestId"].as_str())
        .collect();
    assert_eq!(retried, unknown, "retry.csv holds the U rows");
    let summary = work.summary();
    assert_eq!(summary["results"], summary["this_invocation"], "{summary}");
    assert_eq!(summary["results"]["U"], unknown.len(), "{summary}");
    // Fed back, with the ledger room again: everything is declared.
    let run = work.run(&[
        "run",
        "out/retry.csv",
        "--config",
        &config,
        "--out",
        "refed",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let declared: std::collections::BTreeSet<String> = results
        .iter()
        .chain(&csv_records(&work, "refed/results.csv"))
        .filter(|r| r["resultStatus"] == "S")
        .map(|r| r["customsDeclarationRequestId"].clone())
        .collect();
    assert_eq!(declared.len(), 300);
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.request_ids, 300);
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn results_that_cannot_be_written_stop_the_run() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 60);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[("rate_per_sec", "100")]);
    // Every write to results.csv.partial fails with ENOSPC.
    std::fs::create_dir_all(work.path("out")).unwrap();
    std::os::unix::fs::symlink("/dev/full", work.path("out/results.csv.partial")).unwrap();
    let run = work.run(&["run", &orders, "--config", &config]);
    run.expect_fatal(&["results.csv.partial", "No space left on device"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime.block_on(sandbox.stats());
    assert!(
        first.requests < 60,
        "it stopped sending: {}",
        first.requests
    );
    assert_eq!(work.summary()["exit_code"], 1);
    std::fs::remove_file(work.path("out/results.csv.partial")).unwrap();
    assert_resumed_after_failure(
        &work,
        &sandbox,
        &orders,
        &config,
        60,
        &first.requests_per_id,
    );
}

#[test]
fn a_final_rewrite_that_fails_is_fatal_and_a_rerun_completes_it() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 20);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // results.csv cannot replace a folder that is in its way.
    std::fs::create_dir_all(work.path("out/results.csv/in-the-way")).unwrap();
    let run = work.run(&["run", &orders, "--config", &config]);
    run.expect_fatal(&["results.csv"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // What could still be written was.
    assert_eq!(work.summary()["exit_code"], 1);
    assert!(work.path("out/retry.csv").is_file());
    std::fs::remove_dir_all(work.path("out/results.csv")).unwrap();
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        work.summary()["requests_sent"],
        0,
        "every answer was journaled"
    );
    assert_eq!(listed_rows(&work, "out/results.csv").len(), 20);
}

#[test]
fn a_ledger_removed_during_the_run_stops_it() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 100);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let ledger = work.path("ledger/night.db");
    let mut child = spawn_run(
        &work,
        &[
            &orders,
            "--config",
            &config,
            "--rate",
            "10",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    );
    let partial = work.path("out/results.csv.partial");
    wait_until(&mut child, DEADLINE, "the first answers", || {
        std::fs::read_to_string(&partial).is_ok_and(|text| text.lines().count() >= 3)
    });
    // Moved away (an operator's clean-up, a sync tool): SQLite would go on
    // writing to the moved file, which no later run reads.
    std::fs::rename(&ledger, work.path("ledger/moved.db")).unwrap();
    let (status, stderr) = finish_with_deadline(child, DEADLINE);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("removed or replaced"), "{stderr}");
    let sent = listed_rows(&work, "out/results.csv").len()
        + work
            .read_csv_output("out/retry.csv")
            .lines()
            .count()
            .saturating_sub(1);
    assert!(sent >= 100, "every row is in results.csv or retry.csv");
}

#[test]
fn a_closed_stderr_and_stdout_never_panic() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 5);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // Both pipes are closed by the reader before the run writes to them:
    // every write fails with EPIPE.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_declare-batch"))
        .args(["run", &orders, "--config", &config, "--rate", "5"])
        .current_dir(work.path(""))
        .without_declare_env()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = crate::common::wait_with_deadline(&mut child, DEADLINE);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(listed_rows(&work, "out/results.csv").len(), 5);
}

#[test]
fn sigint_stops_new_requests_and_writes_every_output() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 100);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let mut child = spawn_run(&work, &[&orders, "--config", &config, "--rate", "10"]);
    wait_until(&mut child, DEADLINE, "5 successes", || {
        journaled_successes(&work).len() >= 5
    });
    signal(&child, "-INT");
    let (status, stderr) = finish_with_deadline(child, DEADLINE);
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let summary = work.summary();
    assert_eq!(summary["stopped"], "interrupted");
    let not_sent = summary["codes"]["NOT_SENT"].as_u64().unwrap();
    assert!(not_sent > 50, "{summary}");
    // Every row once; the unsent ones are in retry.csv.
    let mut listed = listed_rows(&work, "out/results.csv");
    listed.sort();
    assert_eq!(listed, (2..102).collect::<Vec<u64>>());
    let unknown = summary["results"]["U"].as_u64().unwrap();
    assert_eq!(
        work.read_csv_output("out/retry.csv").lines().count() as u64,
        unknown + 1
    );
    // The same command resumes and finishes.
    let run = work.run(&["run", &orders, "--config", &config, "--rate", "0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(
        runtime
            .block_on(sandbox.stats())
            .request_ids_with_distinct_bodies,
        0
    );
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 16);
    // Every answer takes 3 s, so the first interrupt has requests to wait for.
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--slow",
            "1",
            "--latency-ms",
            "3000",
        ],
    );
    let config = config_for(&work, &sandbox, &[("timeout_ms", "10000")]);
    let mut child = spawn_run(&work, &[&orders, "--config", &config]);
    wait_for_journal(&mut child, &work, "attempt");
    // The second signal goes once the run says it took the first.
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    signal(&child, "-INT");
    let mut seen = String::new();
    while !seen.contains("interrupted: no new requests") {
        match lines_rx.recv_timeout(DEADLINE) {
            Ok(line) => seen.push_str(&(line + "\n")),
            Err(error) => {
                let _ = child.kill();
                panic!("no word of the first interrupt ({error}): {seen}");
            }
        }
    }
    signal(&child, "-INT");
    let status = crate::common::wait_with_deadline(&mut child, DEADLINE);
    reader.join().unwrap();
    let stderr = seen + &lines_rx.try_iter().collect::<Vec<_>>().join("\n");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("resume"), "{stderr}");
    // The journal is still usable: the same command resumes and finishes.
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn traffic_limits_slow_the_run_without_using_up_attempts() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 30);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--rate-limit", "10"],
    );
    // One attempt per row: only an answer that does not count lets every
    // row through a server that refuses most of the first burst.
    let config = config_for(&work, &sandbox, &[("max_attempts", "1")]);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(work.summary()["results"]["S"], 30);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stats = runtime.block_on(sandbox.stats());
    assert!(
        stats.by_code["REQUEST_TRAFFIC_EXCEED_LIMIT"] > 0,
        "{:?}",
        stats.by_code
    );
    assert_eq!(stats.by_code["SUCCESS"], 30);
}

#[test]
fn endpoint_sandbox_uses_the_configured_payments() {
    let work = Workdir::new();
    let (orders, _) = orders(&work, 4);
    // Only two of the four payments exist in this sandbox.
    work.write(
        "my-payments.csv",
        "paymentRequestId,amount,payerCertificateNo,payerName,status\nP0,100,,,OK\nP1,100,,,OK\n",
    );
    work.write(
        "sandbox.toml",
        "[api]\nendpoint = \"sandbox\"\n[run]\nrate_per_sec = 0\n[sandbox]\npayments = \"my-payments.csv\"\n",
    );
    let run = work.run(&["run", &orders, "--config", "sandbox.toml"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing is declared for real"),
        "{}",
        run.stderr
    );
    let summary = work.summary();
    assert_eq!(summary["endpoint"], "embedded-sandbox");
    assert_eq!(summary["results"]["S"], 2);
    assert_eq!(summary["codes"]["ORDER_NOT_EXIST"], 2);
    // Without [sandbox] payments, one's own orders are taken as paid.
    work.write(
        "own.toml",
        "[api]\nendpoint = \"sandbox\"\n[run]\nrate_per_sec = 0\n",
    );
    let run = work.run(&["run", &orders, "--config", "own.toml", "--out", "own"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_xlsx_input_leaves_results_and_retry_workbooks_that_feed_back() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let work = Workdir::new();
    let (_, payments) = orders(&work, 5);
    // The same orders as a workbook, with 21-digit IDs as text.
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let headers = [
        "paymentRequestId",
        "customsDeclarationRequestId",
        "customs.customsCode",
        "merchantCustomsInfo.merchantCustomsCode",
        "merchantCustomsInfo.merchantCustomsName",
        "declarationAmount.value",
        "isSplit",
    ];
    crate::common::write_header(sheet, 0, headers);
    for n in 0..5u32 {
        let row = n + 1;
        sheet.write_string(row, 0, format!("P{n}")).unwrap();
        sheet
            .write_string(row, 1, format!("20261124000000000000{n}"))
            .unwrap();
        sheet.write_string(row, 2, "ZONGSHU").unwrap();
        sheet.write_string(row, 3, "M1").unwrap();
        sheet.write_string(row, 4, "Shop").unwrap();
        sheet.write_number(row, 5, 100.0).unwrap();
        sheet.write_boolean(row, 6, false).unwrap();
    }
    workbook.save(work.path("orders.xlsx")).unwrap();
    let failing = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    let config = config_for(&work, &failing, &[("max_attempts", "1")]);
    let run = work.run(&["run", "orders.xlsx", "--config", &config]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let mut retry: Xlsx<_> = open_workbook(work.path("out/retry.xlsx")).unwrap();
    let range = retry.worksheet_range("retry").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 6, "the header and every unknown row");
    assert_eq!(rows[0][0], Data::String("row".into()));
    assert_eq!(
        rows[1][2],
        Data::String("202611240000000000000".into()),
        "IDs stay text"
    );
    assert_eq!(rows[1][6], Data::Float(100.0), "numbers stay numbers");
    // Fed back as it is to an endpoint that works: every row declared.
    drop(failing);
    let healthy = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &healthy, &[]);
    let run = work.run(&[
        "run",
        "out/retry.xlsx",
        "--config",
        &config,
        "--out",
        "retry-1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut results: Xlsx<_> = open_workbook(work.path("retry-1/results.xlsx")).unwrap();
    let range = results.worksheet_range("results").unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0][0], Data::String("row".into()));
    assert_eq!(rows[1][0], Data::Float(2.0), "the row of retry.xlsx");
    assert_eq!(
        rows[1][2],
        Data::String("202611240000000000000".into()),
        "IDs as text"
    );
    assert_eq!(rows[1][6], Data::String("S".into()));
}
