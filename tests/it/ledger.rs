//! The ledger across runs: overlapping nightly exports, retransmissions
//! allowed, too early and forbidden, an order declared again under another
//! ID, and two runs on one ledger at once — the real binary against the
//! real sandbox, judged by the sandbox's counts and the output files.

use crate::common::{SandboxProcess, Workdir, csv_records};
use crate::common::{config_for, listed_rows};

const HEADER: &str = "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
declarationAmount.value,isSplit\n";

/// Writes an export of `(payment, request ID, amount)` rows.
fn export(
    work: &Workdir,
    name: &str,
    rows: impl IntoIterator<Item = (String, String, u32)>,
) -> String {
    let mut text = String::from(HEADER);
    for (payment, request_id, amount) in rows {
        text.push_str(&format!(
            "{payment},{request_id},ZONGSHU,M1,Shop,{amount},false\n"
        ));
    }
    work.write(name, text).display().to_string()
}

fn nightly(work: &Workdir, name: &str, range: std::ops::Range<usize>) -> String {
    export(
        work,
        name,
        range.map(|n| (format!("P{n}"), format!("D{n}"), 100)),
    )
}

/// Payments P0..P{count} of ¥1.00 each, known to the sandbox.
fn payments(work: &Workdir, count: usize) -> String {
    let mut text = String::from("paymentRequestId,amount,payerCertificateNo,payerName,status\n");
    for n in 0..count {
        text.push_str(&format!("P{n},100,,,OK\n"));
    }
    work.write("payments.csv", text).display().to_string()
}

#[test]
fn overlapping_nightly_exports_declare_each_order_once() {
    let work = Workdir::new();
    let payments = payments(&work, 150);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let night_1 = nightly(&work, "night-1.csv", 0..100);
    let run = work.run(&["run", &night_1, "--config", &config, "--out", "night-1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The "last 3 days" export of the next night overlaps by half.
    let night_2 = nightly(&work, "night-2.csv", 50..150);
    let run = work.run(&["run", &night_2, "--config", &config, "--out", "night-2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.requests, 150, "each order sent once: {stats:?}");
    assert!(stats.requests_per_id.values().all(|&n| n == 1));
    let results = csv_records(&work, "night-2/results.csv");
    assert_eq!(results.len(), 100);
    for result in &results {
        let n: usize = result["customsDeclarationRequestId"][1..].parse().unwrap();
        let (source, attempts) = if n < 100 {
            ("ledger", "0")
        } else {
            ("api", "1")
        };
        assert_eq!(result["source"], source, "{result:?}");
        assert_eq!(result["attempts"], attempts, "{result:?}");
        assert_eq!(result["resultStatus"], "S");
        assert_eq!(result["retransmission"], "false");
        // The earlier answer's fields come with it.
        assert!(!result["pspDeclarationRequestId"].is_empty(), "{result:?}");
    }
    let summary: serde_json::Value = work.summary_of("night-2");
    assert_eq!(summary["from_ledger"], 50);
    assert_eq!(summary["requests_sent"], 50);
    assert!(
        summary["ledger"]
            .as_str()
            .unwrap()
            .ends_with("declare-batch.db"),
        "beside the config: {summary}"
    );
    // Resuming night 2 sends nothing and keeps the sources.
    let run = work.run(&["run", &night_2, "--config", &config, "--out", "night-2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = csv_records(&work, "night-2/results.csv");
    assert_eq!(again.iter().filter(|r| r["source"] == "ledger").count(), 50);
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.requests, 150);
}

#[test]
fn changed_rows_are_retransmitted_after_the_wait_and_refused_otherwise() {
    let work = Workdir::new();
    let payments = payments(&work, 10);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--retransmit-window-ms", "0"],
    );
    let config = config_for(&work, &sandbox, &[]);
    let night_1 = nightly(&work, "night-1.csv", 0..3);
    let run = work.run(&["run", &night_1, "--config", &config, "--out", "night-1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let changed = [
        // The amount: a retransmission, but too early.
        ("P0".to_owned(), "D0".to_owned(), 90),
        // The payment under a declared ID: never.
        ("P9".to_owned(), "D1".to_owned(), 100),
        // A declared order under a new ID: never.
        ("P2".to_owned(), "D7".to_owned(), 100),
        // New: sent.
        ("P3".to_owned(), "D3".to_owned(), 100),
    ];
    let night_2 = export(&work, "night-2.csv", changed.clone());
    let run = work.run(&["run", &night_2, "--config", &config, "--out", "night-2"]);
    // The correction only waits: it is left unknown, to send later (exit 4).
    assert_eq!(run.code, 4, "{}", run.stderr);
    let rejected = csv_records(&work, "night-2/rejected.csv");
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let night_1_folder = std::fs::canonicalize(work.path("night-1")).unwrap();
    let night_1_folder = night_1_folder.display().to_string();
    let error_of = |row: &str| {
        rejected
            .iter()
            .find(|r| r["row"] == row)
            .map(|r| r["error"].clone())
            .unwrap_or_else(|| panic!("row {row} is not rejected: {rejected:?}"))
    };
    let results = csv_records(&work, "night-2/results.csv");
    let waiting = results
        .iter()
        .find(|r| r["row"] == "2")
        .unwrap_or_else(|| panic!("row 2 is not in results.csv: {results:?}"));
    assert_eq!(waiting["resultStatus"], "U", "{waiting:?}");
    assert_eq!(waiting["resultCode"], "RETRANSMIT_LATER", "{waiting:?}");
    let too_early = &waiting["resultMessage"];
    for part in [
        "\"D0\" was declared (S) by the run in",
        night_1_folder.as_str(),
        "(row 2)",
        "may be sent again from",
        "retransmit_wait_secs",
    ] {
        assert!(too_early.contains(part), "{part}: {too_early}");
    }
    let retry = csv_records(&work, "night-2/retry.csv");
    assert_eq!(retry.len(), 1, "{retry:?}");
    assert_eq!(retry[0]["customsDeclarationRequestId"], "D0", "{retry:?}");
    let changed_error = error_of("3");
    assert!(
        changed_error.contains("REPEAT_REQ_INCONSISTENT") && changed_error.contains("(row 3)"),
        "{changed_error}"
    );
    let order_error = error_of("4");
    assert!(
        order_error.starts_with("paymentRequestId: order \"P2\" is already declared at customs ZONGSHU under customsDeclarationRequestId \"D2\""),
        "{order_error}"
    );
    let summary: serde_json::Value = work.summary_of("night-2");
    let codes: Vec<&str> = summary["rejected_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    for code in ["CHANGED_AFTER_DECLARATION", "ORDER_DECLARED_EARLIER"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    assert!(!codes.contains(&"RETRANSMISSION_TOO_EARLY"), "{codes:?}");
    assert_eq!(summary["waiting_for_retransmission"], 1, "{summary}");
    let report = std::fs::read_to_string(work.path("night-2/report.html")).unwrap();
    assert!(
        report.contains("<b>1</b>corrections waiting for their retransmission"),
        "the report counts it too"
    );
    assert_eq!(summary["codes"]["RETRANSMIT_LATER"], 1, "{summary}");
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.requests, 4, "three from night 1, D3 from night 2");

    // Once the wait is over, the changed amount goes out as a retransmission.
    let config = config_for(&work, &sandbox, &[("retransmit_wait_secs", "0")]);
    let night_3 = export(&work, "night-3.csv", changed[..1].to_vec());
    let run = work.run(&["run", &night_3, "--config", &config, "--out", "night-3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = csv_records(&work, "night-3/results.csv");
    assert_eq!(results[0]["retransmission"], "true", "{results:?}");
    assert_eq!(results[0]["resultStatus"], "S");
    assert_eq!(results[0]["declarationAmount"], "90");
    assert_eq!(work.summary_of("night-3")["retransmitted"], 1);
    let report = std::fs::read_to_string(work.path("night-3/report.html")).unwrap();
    assert!(report.contains("<b>1</b>retransmitted (corrections answered)"));
    // The ledger keeps the amount the correction replaced, and when.
    let export = work.run(&["ledger", "export", "--config", &config]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut reader = csv::Reader::from_reader(export.stdout.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let corrected = reader
        .records()
        .map(Result::unwrap)
        .find(|record| &record[0] == "D0")
        .expect("D0 in the export");
    let field = |name: &str| {
        let at = headers.iter().position(|h| h == name).unwrap();
        corrected[at].to_owned()
    };
    assert_eq!(field("declarationAmount"), "90");
    assert_eq!(field("earlierAmount"), "100");
    assert!(!field("amountChangedAt").is_empty());
    // The new body is the declaration now: the same row again is known.
    let run = work.run(&["run", &night_3, "--config", &config, "--out", "night-4"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let results = csv_records(&work, "night-4/results.csv");
    assert_eq!(results[0]["source"], "ledger", "{results:?}");
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.requests, 5);
}

#[test]
fn failed_rows_are_known_until_resend_failed() {
    let work = Workdir::new();
    let payments = payments(&work, 2);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // P5 is no payment the sandbox knows: F ORDER_NOT_EXIST.
    let rows = || {
        vec![
            ("P0".to_owned(), "D0".to_owned(), 100),
            ("P5".to_owned(), "D5".to_owned(), 100),
        ]
    };
    let input = export(&work, "orders.csv", rows());
    let run = work.run(&["run", &input, "--config", &config, "--out", "first"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run = work.run(&["run", &input, "--config", &config, "--out", "second"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let results = csv_records(&work, "second/results.csv");
    assert!(
        results.iter().all(|r| r["source"] == "ledger"),
        "{results:?}"
    );
    assert_eq!(results[1]["resultCode"], "ORDER_NOT_EXIST");
    let run = work.run(&[
        "run",
        &input,
        "--config",
        &config,
        "--out",
        "third",
        "--resend-failed",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let results = csv_records(&work, "third/results.csv");
    assert_eq!(results[0]["source"], "ledger");
    assert_eq!(results[1]["source"], "api");
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.requests_per_id["D0"], 1);
    assert_eq!(stats.requests_per_id["D5"], 2);
}

#[test]
fn two_runs_on_one_ledger_at_once_both_finish() {
    let work = Workdir::new();
    let payments = payments(&work, 600);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let first = nightly(&work, "a.csv", 0..300);
    let second = nightly(&work, "b.csv", 300..600);
    // One run per ledger scope at a time: each waits for the other.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            work.run(&[
                "run", &first, "--config", &config, "--out", "a", "--wait", "240",
            ])
        });
        let b = scope.spawn(|| {
            work.run(&[
                "run", &second, "--config", &config, "--out", "b", "--wait", "240",
            ])
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(listed_rows(&work, "a/results.csv").len(), 300);
    assert_eq!(listed_rows(&work, "b/results.csv").len(), 300);
    // Both are in the ledger: a third run of both sends nothing.
    let both = nightly(&work, "both.csv", 0..600);
    let run = work.run(&["run", &both, "--config", &config, "--out", "c"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.requests, 600);
}

/// The ledger's write-ahead log is checkpointed while the run works: no
/// read transaction pins it, so it stays within a few MB instead of
/// growing with every declaration.
#[test]
fn the_ledger_stays_small_while_the_run_works() {
    let work = Workdir::new();
    let rows = 3000;
    let (orders, payments) = crate::common::orders(&work, rows);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[("concurrency", "16")]);
    let wal = work.path("declare-batch.db-wal");
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (wal, running) = (wal.clone(), std::sync::Arc::clone(&running));
        std::thread::spawn(move || {
            let mut peak = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                peak = peak.max(size);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        })
    };
    let run = work.run(&["run", &orders, "--config", &config]);
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(listed_rows(&work, "out/results.csv").len(), rows);
    // Without checkpoints it reached 22 MB here (7 KB a declaration).
    assert!(peak < 8 << 20, "the -wal file reached {} KB", peak >> 10);
}

/// A second run on the same ledger, endpoint and client ID (a cron start
/// while a manual catch-up runs) does not send the same orders: it stops at
/// once naming the holder, or waits with --wait; a holder killed with
/// `kill -9` loses its lease.
#[test]
fn one_run_per_ledger_scope_at_a_time() {
    use crate::common::{DEADLINE, signal, spawn_run, wait_until};
    let work = Workdir::new();
    let payments = payments(&work, 40);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[("rate_per_sec", "4")]);
    let export = nightly(&work, "night.csv", 0..40);
    // An earlier night, finished, to inquire about later.
    let earlier = nightly(&work, "earlier.csv", 0..1);
    let run = work.run(&["run", &earlier, "--config", &config, "--out", "earlier"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut first = spawn_run(&work, &[&export, "--config", &config, "--out", "manual"]);
    let leased = || {
        std::fs::read_dir(work.path(""))
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".lease"))
            .any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains("manual"))
            })
    };
    wait_until(
        &mut first,
        DEADLINE,
        "the first run holds the ledger",
        leased,
    );
    let run = work.run(&["run", &export, "--config", &config, "--out", "cron"]);
    run.expect_fatal(&[
        "is in use",
        "declare-batch run (process",
        "manual",
        "--wait",
    ]);
    let run = work.run(&[
        "run", &export, "--config", &config, "--out", "cron", "--wait", "1",
    ]);
    run.expect_fatal(&["is in use", "waited 1 s"]);
    // An inquiry on the same scope waits its turn too.
    let run = work.run(&["inquire", "earlier", "--config", &config]);
    run.expect_fatal(&["is in use", "declare-batch run (process", "manual"]);
    // Killed: its lease goes with it, and the same command resumes.
    signal(&first, "-KILL");
    let _ = first.wait();
    let run = work.run(&["run", &export, "--config", &config, "--out", "manual"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.request_ids, 40);
    // Only the manual run sent: a request ID twice at most when the kill
    // left it in flight (the journal knows it).
    assert!(
        stats.requests_per_id.values().all(|&n| n <= 2),
        "{:?}",
        stats.requests_per_id
    );
    assert_eq!(stats.request_ids_with_distinct_bodies, 0);
}
