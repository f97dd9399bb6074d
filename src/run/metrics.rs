//! `[output] metrics`: a run's figures in the Prometheus text format, for
//! node_exporter's textfile collector — counts by status, rejections,
//! rows from the ledger, retransmissions, requests, retries, the achieved
//! rate, latency quantiles, outages and the exit code — written atomically
//! so that the collector never reads half a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::RunSummary;
use crate::report::AtomicFile;
use crate::report::html::Latency;

/// Appends one gauge, its help and type, and its samples.
fn gauge(text: &mut String, name: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(text, "# HELP declare_batch_{name} {help}");
    let _ = writeln!(text, "# TYPE declare_batch_{name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(text, "declare_batch_{name}{labels} {value}");
    }
}

const EXIT_HELP: &str = "The last run's exit code (0 all declared, 3 some failed or rejected, 4 rows unknown, 1 fatal).";
const FINISHED_HELP: &str = "When the last run finished, in seconds since the Unix epoch.";

/// The metrics of a run that could not start (the input, the folder, the
/// ledger's lease): exit code 1 now, so that an alert on it fires.
pub fn render_not_started(exit_code: u8) -> String {
    let mut text = String::new();
    gauge(
        &mut text,
        "rows",
        "Valid rows of the last run by status (S declared, F failed, U unknown).",
        &[
            ("{status=\"S\"}", 0.0),
            ("{status=\"F\"}", 0.0),
            ("{status=\"U\"}", 0.0),
        ],
    );
    gauge(
        &mut text,
        "exit_code",
        EXIT_HELP,
        &[("", f64::from(exit_code))],
    );
    let now = chrono::Utc::now().timestamp() as f64;
    gauge(
        &mut text,
        "last_run_timestamp_seconds",
        FINISHED_HELP,
        &[("", now)],
    );
    text
}

/// The text of the metrics file.
pub fn render(summary: &RunSummary, latency: Option<&Latency>, retries: u64) -> String {
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(&str, f64)]| {
        gauge(&mut text, name, help, samples);
    };
    let results = summary.results;
    gauge(
        "rows",
        "Valid rows of the last run by status (S declared, F failed, U unknown).",
        &[
            ("{status=\"S\"}", results.success as f64),
            ("{status=\"F\"}", results.failed as f64),
            ("{status=\"U\"}", results.unknown as f64),
        ],
    );
    gauge(
        "rejected_rows",
        "Rows of the last run rejected before sending.",
        &[("", summary.rows.rejected as f64)],
    );
    gauge(
        "from_ledger_rows",
        "Rows of the last run answered from the ledger, not sent.",
        &[("", summary.from_ledger as f64)],
    );
    gauge(
        "retransmitted_rows",
        "Corrections of the last run sent again under their declared ID.",
        &[("", summary.retransmitted as f64)],
    );
    gauge(
        "waiting_rows",
        "Corrections of the last run waiting for their retransmission.",
        &[("", summary.waiting_for_retransmission as f64)],
    );
    gauge(
        "requests",
        "Requests the last run sent.",
        &[("", summary.requests_sent as f64)],
    );
    gauge(
        "retries",
        "Rows the last run sent again after an unknown answer.",
        &[("", retries as f64)],
    );
    gauge(
        "rate_per_second",
        "Requests per second the last run achieved.",
        &[("", summary.achieved_rate_per_sec)],
    );
    if let Some(latency) = latency {
        gauge(
            "latency_seconds",
            "Answer latency quantiles of the last run.",
            &[
                ("{quantile=\"0.5\"}", latency.p50 / 1000.0),
                ("{quantile=\"0.9\"}", latency.p90 / 1000.0),
                ("{quantile=\"0.99\"}", latency.p99 / 1000.0),
                ("{quantile=\"1\"}", latency.max / 1000.0),
            ],
        );
    }
    gauge(
        "outages",
        "Times the endpoint stopped answering during the last run.",
        &[("", f64::from(summary.outages))],
    );
    gauge(
        "outage_seconds",
        "Seconds the last run waited for the endpoint.",
        &[("", summary.outage_seconds)],
    );
    gauge(
        "duration_seconds",
        "How long the last run took.",
        &[("", summary.duration_ms as f64 / 1000.0)],
    );
    gauge(
        "exit_code",
        EXIT_HELP,
        &[("", f64::from(summary.exit_code))],
    );
    let finished = chrono::DateTime::parse_from_rfc3339(&summary.finished_at)
        .map_or(0, |time| time.timestamp());
    gauge(
        "last_run_timestamp_seconds",
        FINISHED_HELP,
        &[("", finished as f64)],
    );
    text
}

/// Writes the metrics file atomically.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(text.as_bytes())?;
    file.commit()
}
