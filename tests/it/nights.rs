//! An unattended night: an endpoint that goes away for a while and comes
//! back, or stays away; the operator's Ctrl-C while the run waits for it.

use crate::common::{DEADLINE, RUN_DEADLINE, config_for, listed_rows, orders, signal, spawn_run};
use crate::common::{SandboxProcess, Workdir, finish_with_deadline, wait_for_journal, wait_until};

fn log_of(work: &Workdir) -> String {
    std::fs::read_to_string(work.path("night.log")).unwrap_or_default()
}

#[test]
fn a_short_outage_is_ridden_out_and_every_row_declared() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 400);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let addr = sandbox.addr().to_owned();
    let config = config_for(
        &work,
        &sandbox,
        &[("rate_per_sec", "100"), ("outage_wait_secs", "120")],
    );
    let mut child = spawn_run(&work, &[&orders, "--config", &config, "--log", "night.log"]);
    wait_until(&mut child, DEADLINE, "the first answers", || {
        std::fs::read_to_string(work.path("out/journal.jsonl"))
            .unwrap_or_default()
            .matches("\"t\":\"final\"")
            .count()
            >= 50
    });
    // The endpoint goes away: connections are refused.
    drop(sandbox);
    wait_until(&mut child, DEADLINE, "the run to notice", || {
        log_of(&work).contains("the endpoint stopped answering")
    });
    wait_until(&mut child, DEADLINE, "a probe to fail", || {
        log_of(&work).contains("still waiting for the endpoint since")
    });
    // And comes back where it was.
    let back = SandboxProcess::start_at(&addr, work.path("keys"), &["--payments", &payments]);
    let (status, stderr) = finish_with_deadline(child, RUN_DEADLINE);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let summary = work.summary();
    assert_eq!(summary["results"]["S"], 400, "{summary}");
    assert_eq!(summary["outages"], 1, "{summary}");
    assert!(
        summary["outage_seconds"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(summary.get("stopped").is_none(), "{summary}");
    let log = log_of(&work);
    assert!(log.contains("Ctrl-C ends the run now (exit 4"), "{log}");
    assert!(log.contains("the endpoint answers again after"), "{log}");
    assert!(log.contains("finished exit=0 S=400 F=0 U=0"), "{log}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert!(runtime.block_on(back.stats()).requests > 0);
}

#[test]
fn an_outage_longer_than_the_wait_stops_the_run_having_sent_only_probes() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 300);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    let config = config_for(&work, &sandbox, &[("concurrency", "4")]);
    // An earlier re-feed took the first folder's name.
    std::fs::create_dir_all(work.path("out-retry-1")).unwrap();
    let run = work.run(&["run", &orders, "--config", &config, "--outage-wait", "3"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("waiting for it at most 3 s"),
        "{}",
        run.stderr
    );
    let summary = work.summary();
    let stopped = summary["stopped"].as_str().unwrap();
    assert!(stopped.contains("no answer for 3 s"), "{summary}");
    assert!(
        stopped.contains("HTTP_500"),
        "names the last cause: {summary}"
    );
    assert_eq!(summary["outages"], 1, "{summary}");
    assert_eq!(summary["results"]["U"], 300, "{summary}");
    // Twenty failures open the breaker; the ones in flight then, and one
    // probe at a time after 1 s and 2 s (and one at the end at most).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent = runtime.block_on(sandbox.stats()).requests;
    assert!(
        sent <= 20 + 4 + 3,
        "{sent} requests: more than probes went out: {}",
        run.stderr
    );
    assert_eq!(summary["requests_sent"], sent, "{summary}");
    assert!(
        run.stderr.contains("--outage-wait 3"),
        "the printed commands keep the wait: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--out out-retry-2 "),
        "the re-feed goes to a folder of its own: {}",
        run.stderr
    );
}

#[test]
fn the_last_rows_of_a_night_also_wait_for_the_endpoint() {
    let work = Workdir::new();
    // Five rows: too few failures for the breaker's count of twenty.
    let (orders, payments) = orders(&work, 5);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config, "--outage-wait", "2"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let summary = work.summary();
    assert_eq!(summary["outages"], 1, "{summary}");
    let stopped = summary["stopped"].as_str().unwrap();
    assert!(stopped.contains("no answer for 2 s"), "{summary}");
    assert!(
        run.stderr.contains("still waiting for the endpoint"),
        "{}",
        run.stderr
    );
}

#[test]
fn ctrl_c_while_waiting_for_the_endpoint_ends_the_run_with_exit_4() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 100);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    // The default wait (600 s): only the interrupt ends it in time.
    let config = config_for(&work, &sandbox, &[("outage_wait_secs", "")]);
    let mut child = spawn_run(&work, &[&orders, "--config", &config, "--log", "night.log"]);
    wait_until(&mut child, DEADLINE, "the wait to begin", || {
        log_of(&work).contains("waiting for it at most 600 s")
    });
    signal(&child, "-INT");
    let (status, stderr) = finish_with_deadline(child, DEADLINE);
    assert_eq!(status.code(), Some(4), "{stderr}");
    let summary = work.summary();
    assert_eq!(summary["stopped"], "interrupted", "{summary}");
    assert_eq!(summary["results"]["U"], 100, "{summary}");
    assert_eq!(work.read_csv_output("out/retry.csv").lines().count(), 101);
}

#[test]
fn a_dry_run_asks_the_ledger_and_sends_nothing() {
    let work = Workdir::new();
    let (first, payments) = orders(&work, 12);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let night_1 = work.run(&["run", &first, "--config", &config, "--out", "night-1"]);
    assert_eq!(night_1.code, 0, "{}", night_1.stderr);
    // Night 2: ten rows again, one corrected amount, one order under a new
    // request ID, and two new orders (whose payments the sandbox knows).
    let text = std::fs::read_to_string(&first).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[11] = lines[11].replace(",100,", ",90,");
    lines[12] = lines[12].replace("D11", "D11-new");
    let night_2 = work.write("night-2.csv", lines.join("\n") + "\n");
    let night_2 = night_2.to_str().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent_before = runtime.block_on(sandbox.stats()).requests;
    let export_before = work.run(&["ledger", "export", "--config", &config]);

    let dry = work.run(&[
        "run",
        night_2,
        "--config",
        &config,
        "--out",
        "plan-2",
        "--dry-run",
    ]);
    assert_eq!(
        dry.code, 3,
        "one row is rejected by the ledger: {}",
        dry.stderr
    );
    assert!(
        dry.stderr.contains(
            "dry run finished exit=3 send=0 retransmit=0 from_ledger=10 too_early=1 rejected=1"
        ),
        "{}",
        dry.stderr
    );
    let plan = crate::common::csv_records(&work, "plan-2/plan.csv");
    let action = |id: &str| {
        plan.iter()
            .find(|row| row["customsDeclarationRequestId"] == id)
            .map(|row| row["action"].clone())
            .unwrap_or_default()
    };
    assert_eq!(plan.len(), 12, "{plan:?}");
    assert_eq!(action("D0"), "from_ledger");
    assert_eq!(action("D10"), "too_early");
    assert_eq!(action("D11-new"), "rejected_by_ledger");
    let rejected = listed_rows(&work, "plan-2/rejected.csv");
    assert_eq!(
        rejected,
        [13],
        "the ledger's refusal is a rejection, as in a run"
    );
    assert_eq!(work.summary_of("plan-2")["plan"]["too_early"], 1);
    // Nothing sent, nothing recorded.
    assert_eq!(runtime.block_on(sandbox.stats()).requests, sent_before);
    let export_after = work.run(&["ledger", "export", "--config", &config]);
    assert_eq!(export_after.stdout, export_before.stdout);
    assert!(!work.path("plan-2/run.json").exists());

    // With the wait over, the correction would go as a retransmission.
    let config = config_for(&work, &sandbox, &[("retransmit_wait_secs", "0")]);
    let dry = work.run(&[
        "run",
        night_2,
        "--config",
        &config,
        "--out",
        "plan-2b",
        "--dry-run",
    ]);
    assert!(dry.stderr.contains("retransmit=1"), "{}", dry.stderr);
    // And a real run into the dry run's folder adopts it.
    let run = work.run(&["run", night_2, "--config", &config, "--out", "plan-2b"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(work.summary_of("plan-2b")["retransmitted"], 1);
}

#[test]
fn metrics_and_the_on_finish_command_tell_the_operator() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 20);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[output]\nmetrics = \"metrics/night.prom\"\n");
    std::fs::create_dir_all(work.path("metrics")).unwrap();
    std::fs::write(&config, text).unwrap();
    let alert = "echo \"summary=$DECLARE_BATCH_SUMMARY exit=$DECLARE_BATCH_EXIT\"; exit 7";
    let run = work.run(&["run", &orders, "--config", &config, "--on-finish", alert]);
    assert_eq!(
        run.code, 0,
        "the command's failure never changes the exit: {}",
        run.stderr
    );
    let summary_path = work.path("out/summary.json");
    assert!(
        run.stderr.contains(&format!(
            "on-finish: summary={} exit=0",
            summary_path.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the --on-finish command failed"),
        "{}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.contains("finished exit=0"),
        "the closing line stays last: {last}"
    );

    let metrics = std::fs::read_to_string(work.path("metrics/night.prom")).unwrap();
    for expected in [
        "declare_batch_rows{status=\"S\"} 20\n",
        "declare_batch_rows{status=\"U\"} 0\n",
        "declare_batch_requests 20\n",
        "declare_batch_exit_code 0\n",
        "declare_batch_outage_seconds 0\n",
        "# TYPE declare_batch_latency_seconds gauge\n",
        "declare_batch_latency_seconds{quantile=\"0.99\"} ",
    ] {
        assert!(metrics.contains(expected), "{expected:?} in {metrics}");
    }
    // Every sample line is NAME{labels} VALUE with a number.
    for line in metrics.lines().filter(|line| !line.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    let left: Vec<_> = std::fs::read_dir(work.path("metrics")).unwrap().collect();
    assert_eq!(left.len(), 1, "written atomically, no temporary left");

    // A run that cannot start still calls it, with exit 1, says so in the
    // metrics, and ends with the closing line.
    let run = work.run(&[
        "run",
        "missing.csv",
        "--config",
        &config,
        "--out",
        "out-2",
        "--on-finish",
        "echo exit=$DECLARE_BATCH_EXIT",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("on-finish: exit=1"), "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap();
    assert!(
        last.contains("declare-batch: finished exit=1 S=0 F=0 U=0"),
        "{}",
        run.stderr
    );
    let metrics = std::fs::read_to_string(work.path("metrics/night.prom")).unwrap();
    assert!(metrics.contains("declare_batch_exit_code 1\n"), "{metrics}");

    // A command that leaves a process holding its output does not hold
    // the run: its lines are logged, and the run ends.
    let sleeper = work.path("sleeper.pid");
    let lingering = format!("sleep 600 & echo $! > {}; echo started", sleeper.display());
    let run = work.run(&[
        "run",
        &orders,
        "--config",
        &config,
        "--out",
        "out-3",
        "--on-finish",
        &lingering,
    ]);
    if let Ok(pid) = std::fs::read_to_string(&sleeper) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("on-finish: started"), "{}", run.stderr);
    assert!(
        run.stderr.contains("left a process holding its output"),
        "{}",
        run.stderr
    );

    // A command that floods its output is read to its end, and only the
    // first 64 KiB of it is logged.
    let flood = "yes xxxxxxxx | head -c 400000";
    let run = work.run(&[
        "run",
        &orders,
        "--config",
        &config,
        "--out",
        "out-5",
        "--on-finish",
        flood,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let logged = run.stderr.matches("on-finish: xxxxxxxx").count();
    assert!(logged > 1000, "{logged} lines logged");
    assert!(
        logged <= 64 * 1024 / 9 + 1,
        "{logged} lines logged: more than 64 KiB"
    );

    // Metrics that cannot be written are said, and change nothing else.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("metrics/night.prom", "missing-folder/night.prom");
    std::fs::write(&config, text).unwrap();
    let run = work.run(&["run", &orders, "--config", &config, "--out", "out-4"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot write the metrics file"),
        "{}",
        run.stderr
    );
    assert_eq!(work.summary_of("out-4")["exit_code"], 0);
}

#[test]
fn ledger_vacuum_waits_for_no_run() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 20);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--slow",
            "1",
            "--latency-ms",
            "200",
        ],
    );
    let config = config_for(&work, &sandbox, &[("concurrency", "1")]);
    let mut child = spawn_run(&work, &[&orders, "--config", &config]);
    wait_for_journal(&mut child, &work, "\"t\":\"final\"");
    let vacuum = work.run(&["ledger", "vacuum", "--config", &config]);
    assert_eq!(vacuum.code, 1, "{}", vacuum.stderr);
    assert!(
        vacuum.stderr.contains("run"),
        "names the holder: {}",
        vacuum.stderr
    );
    let (status, stderr) = finish_with_deadline(child, RUN_DEADLINE);
    assert_eq!(status.code(), Some(0), "{stderr}");
    let vacuum = work.run(&["ledger", "vacuum", "--config", &config]);
    assert_eq!(vacuum.code, 0, "{}", vacuum.stderr);
}

/// `ledger status` counts per night from the ledger: S/F/U, corrections
/// waiting, customs pending and by result code, the oldest open item.
fn ledger_status(work: &Workdir, config: &str) -> String {
    let status = work.run(&["ledger", "status", "--config", config]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    status.stdout
}

/// The cells of the table line that starts with `run`.
fn status_line(stdout: &str, run: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .map(|line| line.split_once(" ").map_or(line, |(_, rest)| rest))
        .find(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|first| first.ends_with(run))
        })
        .unwrap_or_else(|| panic!("no line for {run} in {stdout}"));
    line.split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_ledger_shows_every_night_and_inquires_across_them() {
    let work = Workdir::new();
    let (first, payments) = orders(&work, 30);
    // Some answers are lost after the sandbox recorded the declaration;
    // customs decides 1.5 s after each declaration.
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--fail-u-after",
            "0.2",
            "--customs-delay-ms",
            "1500",
        ],
    );
    let config = config_for(&work, &sandbox, &[("max_attempts", "1")]);
    let lines: Vec<String> = std::fs::read_to_string(&first)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // Night 1: the first 20 orders; night 2: the last 10, and order 0 with
    // a corrected amount (too early to send again).
    let night_1 = work.write("night-1.csv", lines[..21].join("\n") + "\n");
    let mut second: Vec<String> = vec![lines[0].clone()];
    second.extend(lines[21..].iter().cloned());
    second.push(lines[1].replace(",100,", ",90,"));
    let night_2 = work.write("night-2.csv", second.join("\n") + "\n");
    let run_1 = work.run(&[
        "run",
        night_1.to_str().unwrap(),
        "--config",
        &config,
        "--out",
        "n1",
    ]);
    let run_2 = work.run(&[
        "run",
        night_2.to_str().unwrap(),
        "--config",
        &config,
        "--out",
        "n2",
    ]);
    assert_eq!(run_2.code, 4, "{}", run_2.stderr);
    let (s1, u1) = (
        work.summary_of("n1")["results"]["S"].as_u64().unwrap(),
        work.summary_of("n1")["results"]["U"].as_u64().unwrap(),
    );
    assert_eq!(s1 + u1, 20, "{}", run_1.stderr);
    assert!(
        u1 > 0,
        "the faults left some rows unknown: {}",
        run_1.stderr
    );
    let s2 = work.summary_of("n2")["results"]["S"].as_u64().unwrap();
    let u2 = work.summary_of("n2")["results"]["U"].as_u64().unwrap();

    let status = ledger_status(&work, &config);
    let cells = status_line(&status, "n1");
    // run, started (date and time), exit, S, F, U, waiting, pending, results
    assert_eq!(
        cells[3..],
        [
            s1.to_string(),
            "0".into(),
            u1.to_string(),
            "0".into(),
            s1.to_string(),
            "-".into()
        ],
        "{status}"
    );
    let cells = status_line(&status, "n2");
    assert_eq!(cells[6], "1", "the correction waits: {status}");
    // The waiting correction is U in results.csv, not a declaration.
    assert_eq!(cells[5], (u2 - 1).to_string(), "{status}");
    assert!(status.contains("oldest open item: D"), "{status}");
    let pending = work.run(&[
        "ledger",
        "export",
        "--config",
        &config,
        "--customs",
        "pending",
    ]);
    assert_eq!(
        pending.stdout.lines().count() as u64 - 1,
        s1 + s2,
        "{}",
        pending.stdout
    );

    // Ask across the ledger until customs has decided on everything.
    let started = std::time::Instant::now();
    let inquired = loop {
        let inquired = work.run(&["inquire", "--ledger", "--config", &config]);
        if inquired.stderr.contains("customs_pending=0") || started.elapsed() > DEADLINE {
            break inquired;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(
        inquired.code, 0,
        "every unknown is settled: {}",
        inquired.stderr
    );
    assert!(
        inquired
            .stderr
            .contains("still_unknown=0 customs_pending=0 customs: ACCEPTED "),
        "{}",
        inquired.stderr
    );
    let status = ledger_status(&work, &config);
    let cells = status_line(&status, "n1");
    assert_eq!(
        cells[3], "20",
        "the unknown rows are S in the ledger now: {status}"
    );
    assert_eq!(cells[5], "0", "{status}");
    assert_eq!(cells[7], "0", "{status}");
    assert_eq!(cells[8], "ACCEPTED 20", "{status}");
    assert!(status.contains("oldest open item: none"), "{status}");
    let accepted = work.run(&[
        "ledger",
        "export",
        "--config",
        &config,
        "--customs",
        "ACCEPTED",
    ]);
    assert_eq!(accepted.stdout.lines().count() as u64 - 1, 20 + s2 + u2 - 1);
    let pending = work.run(&[
        "ledger",
        "export",
        "--config",
        &config,
        "--customs",
        "pending",
    ]);
    assert_eq!(pending.stdout.lines().count(), 1, "{}", pending.stdout);

    // Nothing open since tomorrow: nothing asked.
    let tomorrow = (chrono::Local::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let none = work.run(&[
        "inquire", "--ledger", "--config", &config, "--since", &tomorrow,
    ]);
    assert!(none.stderr.contains("asked=0 calls=0"), "{}", none.stderr);
    let vacuum = work.run(&["ledger", "vacuum", "--config", &config]);
    assert_eq!(vacuum.code, 0, "{}", vacuum.stderr);
    assert!(vacuum.stderr.contains("compacted"), "{}", vacuum.stderr);
    assert!(ledger_status(&work, &config).contains("ACCEPTED 20"));
    // --since belongs to the ledger's inquiry.
    let wrong = work.run(&["inquire", "n1", "--config", &config, "--since", &tomorrow]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
}
