//! An unattended night: an endpoint that goes away for a while and comes
//! back, or stays away; the operator's Ctrl-C while the run waits for it.

use crate::common::{DEADLINE, RUN_DEADLINE, config_for, orders, signal, spawn_run};
use crate::common::{SandboxProcess, Workdir, finish_with_deadline, wait_until};

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
