//! Admission: every row of the input read and checked on a thread of its
//! own, then decided before anything is sent — totals and rejected rows
//! go to the sink; a valid row is settled from the journal (a resumed run),
//! answered or refused by the ledger (an earlier run declared it), or
//! becomes a job for the sending pool over a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::Local;
use tokio::sync::mpsc;

use super::sink::Sink;
use crate::declare::{Job, Replay};
use crate::fields::Field;
use crate::i18n::{EarlierRun, Language, RowMessage};
use crate::input::RowSource;
use crate::ledger::{Decision, Earlier, Ledger, Refusal};
use crate::outcome::{ResultRow, ResultSource, Status, codes};
use crate::protocol::DeclareRequest;
use crate::validate::{CrossRowIndex, Outcome, Problem, RowRules, Verdict, validate_stream};

/// How long admission waits, at most, for the pool's queue to be half
/// empty before it hands on the next row as soon as there is room.
const QUEUE_REFILL_WAIT: Duration = Duration::from_millis(100);

/// What admission needs besides the input: its rules, what the journal already
/// holds, the ledger, and the command line's choices.
pub struct Admission {
    pub rules: RowRules,
    pub replay: Replay,
    pub ledger: Arc<Ledger>,
    pub retransmit_wait: Duration,
    pub resend_failed: bool,
    /// The language of the messages admission writes into results.
    pub language: Language,
    /// Set once the ledger failed: the rows after it are not asked about.
    pub ledger_broken: AtomicBool,
}

impl Admission {
    /// Starts admitting rows on a thread of its own; valid rows to send go
    /// to `jobs`. The thread ends when the input does, or at the first
    /// error (reading the input, or a write that failed).
    pub fn spawn(
        self,
        source: RowSource,
        sink: Arc<Sink>,
        jobs: mpsc::Sender<Job>,
    ) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
        std::thread::Builder::new()
            .name("validation".into())
            .spawn(move || self.run(source, &sink, jobs))
            .context("cannot start the validation thread")
    }

    fn run(
        self,
        mut source: RowSource,
        sink: &Sink,
        jobs: mpsc::Sender<Job>,
    ) -> anyhow::Result<()> {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let result = validate_stream(
            &mut source,
            &self.rules,
            &mut CrossRowIndex::default(),
            workers,
            |outcome: Outcome| self.admit(outcome, sink, &jobs),
        );
        drop(jobs);
        // The input is read: the ledger is not read again in this run.
        self.pause_ledger(sink);
        let blank = source.blank_rows();
        sink.progress(|p| p.rows.blank = blank);
        result
    }

    /// The ledger could not be read or written: the run stops (the sink
    /// says so), and the ledger is asked nothing more.
    fn ledger_failed(&self, sink: &Sink, error: &crate::ledger::LedgerError) {
        self.ledger_broken.store(true, Ordering::Relaxed);
        sink.ledger_failed(error);
    }

    /// Ends the ledger's shared read, so that its log can be checkpointed.
    fn pause_ledger(&self, sink: &Sink) {
        if !self.ledger_broken.load(Ordering::Relaxed)
            && let Err(error) = self.ledger.pause_reading()
        {
            self.ledger_failed(sink, &error);
        }
    }

    /// One row's admission.
    fn admit(&self, outcome: Outcome, sink: &Sink, jobs: &mpsc::Sender<Job>) -> anyhow::Result<()> {
        sink.row_read();
        let valid = match outcome.verdict {
            Verdict::Valid(valid) => valid,
            Verdict::Totals => {
                sink.progress(|p| p.rows.add_totals_row(outcome.row.line));
                return Ok(());
            }
            Verdict::Rejected(problems) => return sink.reject(&outcome.row, &problems),
        };
        let line = outcome.row.line;
        // The exact bytes the ledger compares and the request sends.
        let body = valid.request.to_body();
        if let Some(result) = self
            .replay
            .final_result(line)
            .context("cannot read the journal")?
        {
            sink.count_valid(valid.long_term_expiry);
            // A kill may have come between the journal and the ledger.
            let recorded = !self.ledger_broken.load(Ordering::Relaxed)
                && match self.ledger.ensure_outcome(&result, &valid.request, &body) {
                    Ok(()) => true,
                    Err(error) => {
                        self.ledger_failed(sink, &error);
                        false
                    }
                };
            if recorded {
                sink.replayed(&result);
            } else {
                sink.replayed_unrecorded(&result, outcome.row.to_owned_row());
            }
            return Ok(());
        }
        // Once the ledger has failed nothing is asked of it or sent: the row
        // goes to the pool, which has stopped, and is settled not sent (U,
        // in retry.csv), so that every row is still accounted for.
        let decision = if self.ledger_broken.load(Ordering::Relaxed) {
            Decision::Send {
                retransmission: false,
            }
        } else {
            let decided = self.ledger.decide(
                &valid.request,
                &body,
                chrono::Utc::now(),
                self.retransmit_wait,
                self.resend_failed,
            );
            decided.unwrap_or_else(|error| {
                self.ledger_failed(sink, &error);
                Decision::Send {
                    retransmission: false,
                }
            })
        };
        let retransmission = match decision {
            Decision::Send { retransmission } => retransmission,
            Decision::Known(mut result) => {
                sink.count_valid(valid.long_term_expiry);
                result.row = line;
                return sink.known(&result);
            }
            // Only too early: not a rejection but a row to send later.
            Decision::Refused(Refusal::TooEarly {
                earlier,
                allowed_from,
            }) => {
                sink.count_valid(valid.long_term_expiry);
                let message = RowMessage::RetransmissionTooEarly {
                    earlier: earlier_run(earlier),
                    allowed_from: local_time(&crate::ledger::ledger_time(allowed_from)),
                };
                let result = retransmit_later(line, &valid.request, &message, self.language);
                sink.waiting(&result, outcome.row.to_owned_row());
                return Ok(());
            }
            Decision::Refused(refusal) => {
                let problem = ledger_problem(&self.rules, &valid.request, refusal);
                return sink.reject(&outcome.row, &[problem]);
            }
        };
        sink.count_valid(valid.long_term_expiry);
        let mut job = Job::new(valid.request, body, outcome.row.to_owned_row());
        job.sent = self.replay.attempts.get(&line).copied().unwrap_or(0);
        job.retransmission = retransmission;
        // The pool drains every row, even after a stop.
        self.queue(job, sink, jobs)
    }

    /// Hands a job to the pool. When the pool has no room, the ledger's
    /// shared read ends before the wait: held while the row waits (and
    /// ended only after 100 ms), it pinned the ledger's log, and every few
    /// thousand rows the whole run stood still for a tenth of a second
    /// with only this thread awake (`perf sched`; see BENCHMARKS.md). The
    /// wait then lasts until the queue is half empty (or a while has
    /// passed), so that the next read serves many rows, not one.
    fn queue(&self, job: Job, sink: &Sink, jobs: &mpsc::Sender<Job>) -> anyhow::Result<()> {
        send_when_room(jobs, job, QUEUE_REFILL_WAIT, || self.pause_ledger(sink))
            .map_err(|_| anyhow!("the run engine stopped"))
    }
}

/// Sends `item`; when the queue is full, calls `before_wait` and then waits
/// until the queue is half empty (at most `refill_wait`) before the item
/// takes its place. The item comes back when the queue is closed.
fn send_when_room<T>(
    queue: &mpsc::Sender<T>,
    item: T,
    refill_wait: Duration,
    before_wait: impl FnOnce(),
) -> Result<(), T> {
    let item = match queue.try_send(item) {
        Ok(()) => return Ok(()),
        Err(mpsc::error::TrySendError::Closed(item)) => return Err(item),
        Err(mpsc::error::TrySendError::Full(item)) => item,
    };
    before_wait();
    let started = std::time::Instant::now();
    while queue.capacity() < queue.max_capacity() / 2
        && !queue.is_closed()
        && started.elapsed() < refill_wait
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    queue.blocking_send(item).map_err(|error| error.0)
}

/// The result of a correction that waits for its retransmission: U
/// `RETRANSMIT_LATER`, saying from when it may be sent.
fn retransmit_later(
    line: u64,
    request: &DeclareRequest,
    message: &RowMessage,
    language: Language,
) -> ResultRow {
    ResultRow {
        row: line,
        payment_request_id: request.payment_request_id.clone(),
        customs_declaration_request_id: request.customs_declaration_request_id.clone(),
        reference_order_id: request.reference_order_id.clone().unwrap_or_default(),
        customs_code: request.customs.customs_code.clone(),
        declaration_amount: request.declaration_amount.value.clone(),
        result_status: Status::U,
        result_code: codes::RETRANSMIT_LATER.to_owned(),
        result_message: message.text(language),
        source: ResultSource::Ledger,
        ..ResultRow::default()
    }
}

/// An earlier run's declaration as messages name it, its time local.
pub(super) fn earlier_run(earlier: Earlier) -> Box<EarlierRun> {
    Box::new(EarlierRun {
        at: local_time(&earlier.at),
        request_id: earlier.request_id,
        run: earlier.run,
        row: earlier.row,
    })
}

pub(super) fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |time| {
            time.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        },
    )
}

/// The rejection of a row the ledger refuses.
pub(super) fn ledger_problem(
    rules: &RowRules,
    request: &DeclareRequest,
    refusal: Refusal,
) -> Problem {
    match refusal {
        Refusal::TooEarly {
            earlier,
            allowed_from,
        } => rules.problem(
            Field::CustomsDeclarationRequestId,
            RowMessage::RetransmissionTooEarly {
                earlier: earlier_run(earlier),
                allowed_from: local_time(&crate::ledger::ledger_time(allowed_from)),
            },
        ),
        Refusal::Changed { earlier } => rules.problem(
            Field::CustomsDeclarationRequestId,
            RowMessage::ChangedAfterDeclaration {
                earlier: earlier_run(earlier),
            },
        ),
        Refusal::OrderDeclared { earlier } => rules.problem(
            if request.is_split.is_yes() {
                Field::ReferenceOrderId
            } else {
                Field::PaymentRequestId
            },
            RowMessage::OrderDeclaredEarlier {
                earlier: earlier_run(earlier),
                order_id: request.declaration_order_id().to_owned(),
                customs_code: request.customs.customs_code.clone(),
            },
        ),
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Longer than any test runs: a sender that waited before ending its
    /// read would never end it.
    const FOREVER: Duration = Duration::from_secs(3600);

    #[test]
    fn a_full_queue_is_waited_for_only_after_the_read_is_ended() {
        let (queue, mut taken) = mpsc::channel::<u32>(4);
        for n in 0..4 {
            send_when_room(&queue, n, FOREVER, || panic!("there is room")).unwrap();
        }
        let read_ended = Arc::new(AtomicBool::new(false));
        let drain = {
            let read_ended = Arc::clone(&read_ended);
            std::thread::spawn(move || {
                // Nothing is taken until the sender has ended its read.
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !read_ended.load(Ordering::SeqCst) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the sender waits without ending its read"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mut seen = Vec::new();
                while let Some(item) = taken.blocking_recv() {
                    seen.push(item);
                }
                seen
            })
        };
        let ended = Arc::clone(&read_ended);
        let sent = send_when_room(&queue, 4, FOREVER, move || {
            ended.store(true, Ordering::SeqCst);
        });
        // Closed, so that the drain ends even if an item were lost.
        drop(queue);
        assert_eq!(sent, Ok(()));
        assert_eq!(drain.join().unwrap(), [0, 1, 2, 3, 4]);
        // A closed queue hands the item back.
        let (closed, receiver) = mpsc::channel::<u32>(1);
        drop(receiver);
        assert_eq!(send_when_room(&closed, 7, FOREVER, || {}), Err(7));
    }
}
