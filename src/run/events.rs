//! What a run tells as it goes, as typed events: the command line renders
//! them on stderr, the page logs them. The library itself never prints.
//! Progress travels apart, as snapshots on a watch channel ([`Progress`]).
//!
//! [`Progress`]: super::Progress

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Local};

use crate::declare::OutageNotice;

/// Something a person following a run should hear as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The folder holds a run that stopped: these rows have a final answer
    /// in its journal and are not sent again.
    Resuming { out: PathBuf, final_rows: usize },
    /// Requests go to the sandbox started in the process.
    EmbeddedSandbox { endpoint: String },
    /// An output could not be written (the file and the cause): the run
    /// sends no more requests.
    WriteFailed { what: String },
    /// `--resolve-unknown`: the rows left unknown are being asked about.
    Inquiring { unknown_rows: u64 },
    /// What the inquiry found about one row.
    Inquiry(String),
    /// The inquiry failed; the rows stay unknown.
    InquiryFailed { cause: String },
    /// `[output] metrics` could not be written (the file and the cause).
    MetricsNotWritten { what: String },
    /// The endpoint stopped answering (or answered again); `since`: when
    /// the wait began, while it lasts.
    Outage {
        notice: OutageNotice,
        since: Option<DateTime<Local>>,
    },
}

impl fmt::Display for RunEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunEvent::Resuming { out, final_rows } => write!(
                f,
                "resuming the run in {}: {final_rows} rows already have a final answer and are \
                 not sent again",
                out.display()
            ),
            RunEvent::EmbeddedSandbox { endpoint } => write!(
                f,
                "declaring to the embedded sandbox at {endpoint} — nothing is declared for real \
                 (give --config to declare to Alipay+)"
            ),
            RunEvent::WriteFailed { what } => {
                write!(f, "cannot write {what}; sending no more requests")
            }
            RunEvent::Inquiring { unknown_rows } => write!(
                f,
                "asking Alipay+ about the {unknown_rows} rows left unknown \
                 (inquireDeclarationRequests)"
            ),
            RunEvent::Inquiry(text) => f.write_str(text),
            RunEvent::InquiryFailed { cause } => write!(
                f,
                "the inquiry failed ({cause}); the unknown rows stay in retry.csv"
            ),
            RunEvent::MetricsNotWritten { what } => write!(
                f,
                "cannot write the metrics file {what}; the run's outputs and exit code stand"
            ),
            RunEvent::Outage { notice, since } => {
                let since = since.map_or_else(String::new, |since| {
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                });
                match notice {
                    OutageNotice::Began { cause, wait } => write!(
                        f,
                        "the endpoint stopped answering (the last: {cause}): sending stopped at \
                         {since}; waiting for it at most {} s (outage_wait_secs, --outage-wait), \
                         probing with one request at a time; Ctrl-C ends the run now (exit 4, \
                         the rows stay in retry.csv)",
                        wait.as_secs()
                    ),
                    OutageNotice::ProbeFailed {
                        waited,
                        next_probe_in,
                        cause,
                    } => write!(
                        f,
                        "still waiting for the endpoint since {since} ({} s): the probe got \
                         {cause}; the next in {} s; Ctrl-C ends the run now (exit 4)",
                        waited.as_secs(),
                        next_probe_in.as_secs()
                    ),
                    OutageNotice::Ended { lasted } => write!(
                        f,
                        "the endpoint answers again after {:.1} s: sending resumes at the run's \
                         rate",
                        lasted.as_secs_f64()
                    ),
                }
            }
        }
    }
}

/// Where a run's events go.
pub type Events = Arc<dyn Fn(RunEvent) + Send + Sync>;
