//! `declare-batch inquire`, `run --resolve-unknown` and `ledger export`
//! against the real sandbox: unknown rows that Alipay+ recorded are settled
//! from its answer, those it does not know stay unknown, customs outcomes
//! land in `customs.csv`, and nothing is declared again.

use std::collections::HashMap;

use crate::common::{SandboxProcess, Workdir, csv_records};
use crate::common::{config_for, orders};

#[test]
fn inquire_settles_unknown_rows_alipay_recorded_and_leaves_the_others() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 60);
    // A third of the answers are lost after the declaration is recorded, a
    // third before; customs decides at once.
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--fail-u-after",
            "0.33",
            "--fail-u-before",
            "0.33",
            "--seed",
            "7",
            "--customs-delay-ms",
            "0",
        ],
    );
    let config = config_for(&work, &sandbox, &[("max_attempts", "1")]);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let before = csv_records(&work, "out/results.csv");
    let unknown_before: Vec<String> = before
        .iter()
        .filter(|r| r["resultStatus"] == "U")
        .map(|r| r["customsDeclarationRequestId"].clone())
        .collect();
    assert!(unknown_before.len() > 20, "{}", unknown_before.len());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent_before = runtime.block_on(sandbox.stats());

    // A config whose endpoint cannot be used is refused, not ignored.
    let unusable = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&sandbox.endpoint, "http://declare.example.com");
    let unusable = work.write("unusable.toml", unusable);
    let run = work.run(&["inquire", "out", "--config", unusable.to_str().unwrap()]);
    run.expect_fatal(&["http://declare.example.com", "https://"]);

    let run = work.run(&["inquire", "out", "--config", &config]);
    assert_eq!(
        run.code, 4,
        "some stay unknown: {}{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("customs.csv"), "{}", run.stdout);
    // Every customs result code, counted, with what it says.
    assert!(
        run.stdout.contains("customs results: ACCEPTED ")
            && run.stdout.contains("accepted by customs"),
        "{}",
        run.stdout
    );
    // The report drawn again: the customs results, the run's chart kept.
    let report = std::fs::read_to_string(work.path("out/report.html")).unwrap();
    assert!(report.contains("ACCEPTED (海关入库成功"), "{report}");
    assert!(
        report.contains("<svg"),
        "the requests per second are still drawn"
    );
    // And one closing line to grep, the last.
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("declare-batch: inquiry finished exit=4 ")
            && last.contains(" customs: ACCEPTED ")
            && last.ends_with(" out=out"),
        "{}",
        run.stderr
    );
    let after = csv_records(&work, "out/results.csv");
    assert_eq!(after.len(), before.len());
    let settled: Vec<&HashMap<String, String>> =
        after.iter().filter(|r| r["source"] == "inquiry").collect();
    let still: Vec<&HashMap<String, String>> =
        after.iter().filter(|r| r["resultStatus"] == "U").collect();
    assert!(!settled.is_empty() && !still.is_empty());
    assert_eq!(settled.len() + still.len(), unknown_before.len());
    for row in &settled {
        assert_eq!(row["resultStatus"], "S");
        assert!(!row["pspDeclarationRequestId"].is_empty(), "{row:?}");
    }
    // Exactly the rows left U are in retry.csv, under the input's headers.
    let retry = csv_records(&work, "out/retry.csv");
    assert_eq!(retry.len(), still.len());
    for (retried, row) in retry.iter().zip(&still) {
        assert_eq!(
            retried["customsDeclarationRequestId"],
            row["customsDeclarationRequestId"]
        );
        assert!(retried["note"].starts_with("kept "), "{retried:?}");
    }
    // customs.csv: every S row and every U row that was sent (a run that
    // stops early leaves rows never sent: nothing to ask), customs'
    // outcome or NOT_FOUND.
    let customs = csv_records(&work, "out/customs.csv");
    assert_eq!(
        customs.len(),
        before
            .iter()
            .filter(
                |r| r["resultStatus"] == "S" || (r["resultStatus"] == "U" && r["attempts"] != "0")
            )
            .count()
    );
    for line in &customs {
        let id = &line["customsDeclarationRequestId"];
        let is_still = still
            .iter()
            .any(|r| &r["customsDeclarationRequestId"] == id);
        let expected = if is_still {
            "NOT_FOUND"
        } else {
            "CUSTOMS_ACCEPT_SUCCESS"
        };
        assert_eq!(line["declarationRequestStatus"], expected, "{line:?}");
        if !is_still {
            assert_eq!(line["customsResultCode"], "ACCEPTED");
            assert!(!line["customsResultReturnedTime"].is_empty());
        }
        assert!(!line["inquiredAt"].is_empty());
    }
    let summary = work.summary_of("out");
    assert_eq!(summary["results"]["U"], still.len());
    assert_eq!(summary["inquiry"]["settled"], settled.len());
    assert_eq!(summary["exit_code"], 4);
    // Nothing was declared by the inquiry.
    let sent_after = runtime.block_on(sandbox.stats());
    assert_eq!(sent_after.requests_per_id, sent_before.requests_per_id);

    // The same run command resumes: the settled rows are not sent again.
    let run = work.run(&["run", &orders, "--config", &config]);
    assert!(run.code == 0 || run.code == 4, "{}", run.stderr);
    let stats = runtime.block_on(sandbox.stats());
    for row in &settled {
        let id = &row["customsDeclarationRequestId"];
        assert_eq!(
            stats.requests_per_id[id], sent_before.requests_per_id[id],
            "{id} was sent again"
        );
    }
    let resumed = csv_records(&work, "out/results.csv");
    assert_eq!(
        resumed.iter().filter(|r| r["source"] == "inquiry").count(),
        settled.len()
    );

    // The ledger has it all: export, filtered.
    let export = work.run(&["ledger", "export", "--config", &config]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(
        export
            .stdout
            .starts_with("customsDeclarationRequestId,paymentRequestId,")
    );
    let mut reader = csv::Reader::from_reader(export.stdout.as_bytes());
    let ids: Vec<String> = reader
        .records()
        .map(|record| record.unwrap()[0].to_owned())
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (60, 60),
        "every declaration once: {}",
        export.stdout
    );
    assert!(export.stdout.contains("CUSTOMS_ACCEPT_SUCCESS"));
    let only_s = work.run(&["ledger", "export", "--config", &config, "--status", "S"]);
    assert!(
        only_s
            .stdout
            .lines()
            .skip(1)
            .all(|line| line.contains(",S,"))
    );
    let none = work.run(&[
        "ledger",
        "export",
        "--config",
        &config,
        "--since",
        "2999-01-01",
    ]);
    assert_eq!(none.stdout.lines().count(), 1, "only the header");
    let bad = work.run(&["ledger", "export", "--config", &config, "--status", "X"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn run_resolve_unknown_inquires_before_finishing() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 40);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--fail-u-after",
            "0.5",
            "--seed",
            "3",
        ],
    );
    let config = config_for(&work, &sandbox, &[("max_attempts", "1")]);
    let run = work.run(&["run", &orders, "--config", &config, "--resolve-unknown"]);
    // Every lost answer was recorded: all settle.
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = work.summary_of("out");
    assert_eq!(summary["results"]["U"], 0);
    assert!(
        summary["inquiry"]["settled"].as_u64().unwrap() > 5,
        "{summary}"
    );
    // Customs is still working on them (the sandbox's default delay).
    assert!(
        summary["inquiry"]["by_status"]["WAITING_FOR_PROCESSING"]
            .as_u64()
            .unwrap()
            > 0,
        "{summary}"
    );
    assert_eq!(work.read_csv_output("out/retry.csv").lines().count(), 1);
    // Declared once each (the sandbox counts the inquiries too).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stats = runtime.block_on(sandbox.stats());
    assert_eq!(stats.requests_per_id.values().sum::<u32>(), 40);
    // Only the rows sent and left unknown were asked about, ten a call.
    let asked = summary["inquiry"]["asked"].as_u64().unwrap();
    assert_eq!(asked, summary["inquiry"]["settled"].as_u64().unwrap());
    assert!(asked < 40, "not the S rows too: {summary}");
    let calls = asked.div_ceil(10);
    assert_eq!(summary["inquiry"]["calls"], calls);
    assert_eq!(stats.requests, 40 + calls, "{calls} inquiries of ten IDs");
}

/// `inquire` asks about the rows that were declared or sent, never about a
/// row the run stopped before sending.
#[test]
fn inquire_skips_rows_never_sent() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 30);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    let config = config_for(
        &work,
        &sandbox,
        &[("max_attempts", "1"), ("concurrency", "1")],
    );
    // Twenty failures in a row stop the run: ten rows are never sent.
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let summary = work.summary_of("out");
    let not_sent = summary["codes"]["NOT_SENT"].as_u64().unwrap();
    assert!(not_sent > 0, "{summary}");
    let run = work.run(&["inquire", "out", "--config", &config]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    let summary = work.summary_of("out");
    assert_eq!(summary["inquiry"]["asked"], 30 - not_sent, "{summary}");
    let customs = csv_records(&work, "out/customs.csv");
    assert_eq!(customs.len() as u64, 30 - not_sent);
}

#[test]
fn inquire_refuses_what_it_cannot_ask() {
    let work = Workdir::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = root.join("samples/orders.csv");
    let run = work.run(&["run", input.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run = work.run(&["inquire", "out"]);
    run.expect_fatal(&["embedded sandbox", "--resolve-unknown"]);
    let run = work.run(&["inquire", "nowhere"]);
    run.expect_fatal(&["nowhere", "run.json"]);
}
