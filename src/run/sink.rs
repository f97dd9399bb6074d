//! The run's one sink: everything a row's journey writes goes through it —
//! the journal, the ledger's writer, `results.csv` and `rejected.csv`, the
//! counts behind `summary.json`, the progress snapshots — and so does the
//! first write that fails, which stops the run. Admission and the sending
//! pool only hand it rows; they never touch a file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Progress;
use super::events::{Events, RunEvent};
use super::outputs::{Outputs, raw_answer, result_row};
use crate::declare::{Job, Journal, Settled, StopReason, Tally};
use crate::input::{OwnedRow, RowRef};
use crate::ledger::{LedgerError, LedgerWriter};
use crate::outcome::{ResultRow, Status, codes};
use crate::validate::Problem;

/// The files the sink writes, for messages.
pub struct SinkPaths {
    pub journal: PathBuf,
    pub results: PathBuf,
    pub rejected: PathBuf,
    pub ledger: PathBuf,
}

/// The first output that could not be written; it stops the run.
pub struct WriteFailures {
    first: Mutex<Option<String>>,
    events: Events,
}

impl WriteFailures {
    pub fn new(events: Events) -> WriteFailures {
        WriteFailures {
            first: Mutex::new(None),
            events,
        }
    }

    /// Records that `file` cannot be written (told once, as an event);
    /// returns the stop reason.
    pub fn record(&self, file: &Path, error: &dyn std::error::Error) -> StopReason {
        let what = format!("{}: {}", file.display(), crate::error_chain(error));
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            (self.events)(RunEvent::WriteFailed { what: what.clone() });
            *first = Some(what.clone());
        }
        StopReason::WriteFailed(first.clone().unwrap_or(what))
    }

    /// Whether any output could not be written.
    pub fn any(&self) -> bool {
        self.first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The part of the sink that the ledger's writer calls back once an
/// answer is committed: the outputs, the failures and the stop signal.
struct Recorder {
    outputs: Mutex<Outputs>,
    failures: WriteFailures,
    stop: watch::Sender<Option<StopReason>>,
    paths: SinkPaths,
    progress: Arc<watch::Sender<Progress>>,
}

impl Recorder {
    /// A write failed: the run stops sending.
    fn fail(&self, file: &Path, error: &dyn std::error::Error) {
        self.stop
            .send_replace(Some(self.failures.record(file, error)));
    }

    /// A row answered (or settled from the journal) whose answer the ledger
    /// could not record: an S must be in the ledger before results.csv
    /// holds it, so the row is written out U `LEDGER_NOT_RECORDED` and kept
    /// for `retry.csv`. Feeding that back sends the same request again,
    /// which Alipay+ answers the same; a resume of this folder settles it
    /// from the journal and records it then.
    fn write_unrecorded(&self, answered: &ResultRow, row: OwnedRow) {
        let unrecorded = ResultRow {
            result_status: Status::U,
            result_code: codes::LEDGER_NOT_RECORDED.to_owned(),
            result_message: format!(
                "answered {} {}, but the ledger could not record it: send it again (the same \
                 request, answered the same), or run the same command again",
                answered.result_status, answered.result_code
            ),
            ..answered.clone()
        };
        self.write_result(&unrecorded, Some(row));
    }

    /// A final result written out (a failed write stops the run).
    fn write_result(&self, result: &ResultRow, retry: Option<OwnedRow>) {
        self.progress
            .send_modify(|p| p.written.add(result.result_status));
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = outputs.record(result);
        // In retry.csv even when results.csv failed: the row is not lost.
        if let Some(row) = retry {
            outputs.retry.push(row);
        }
        drop(outputs);
        if let Err(error) = recorded {
            self.fail(&self.paths.results, &error);
        }
    }
}

/// The one sink of a run.
pub struct Sink {
    journal: Mutex<Journal>,
    ledger: LedgerWriter,
    progress: Arc<watch::Sender<Progress>>,
    recorder: Arc<Recorder>,
}

/// What the sink leaves once every row is through it.
pub struct Drained {
    pub journal: Journal,
    pub outputs: Outputs,
    pub failures: WriteFailures,
}

impl Sink {
    pub fn new(
        journal: Journal,
        ledger: LedgerWriter,
        outputs: Outputs,
        progress: Arc<watch::Sender<Progress>>,
        events: Events,
        paths: SinkPaths,
    ) -> Sink {
        let (stop, _) = watch::channel(None);
        Sink {
            journal: Mutex::new(journal),
            ledger,
            recorder: Arc::new(Recorder {
                outputs: Mutex::new(outputs),
                failures: WriteFailures::new(events),
                stop,
                paths,
                progress: Arc::clone(&progress),
            }),
            progress,
        }
    }

    /// The stop signal the sending pool obeys.
    pub fn stop_signal(&self) -> watch::Receiver<Option<StopReason>> {
        self.recorder.stop.subscribe()
    }

    /// Stops the run for `reason` unless it is stopping already.
    pub fn stop(&self, reason: StopReason) {
        self.recorder.stop.send_if_modified(|stop| {
            stop.get_or_insert(reason);
            true
        });
    }

    pub fn progress(&self, change: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(change);
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A row of the input checked and counted.
    pub fn row_read(&self) {
        self.progress(|p| p.rows.read += 1);
    }

    /// A valid row that will be settled (sent, or answered from the journal
    /// or the ledger).
    pub fn count_valid(&self, long_term_id_card: bool) {
        self.progress(|p| {
            p.rows.valid += 1;
            p.rows.long_term_id_cards += u64::from(long_term_id_card);
        });
    }

    /// A rejected row, with its problems, into `rejected.csv`.
    pub fn reject(&self, row: &RowRef<'_>, problems: &[Problem]) -> anyhow::Result<()> {
        self.progress(|p| p.rows.rejected += 1);
        let mut outputs = self
            .recorder
            .outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        outputs.problems.add(problems);
        if let Err(error) = outputs.rejected.write(row, problems) {
            drop(outputs);
            self.recorder.fail(&self.recorder.paths.rejected, &error);
            let path = self.recorder.paths.rejected.display();
            return Err(anyhow::Error::new(error).context(format!("cannot write {path}")));
        }
        Ok(())
    }

    /// A row whose final answer the journal holds: written out again.
    pub fn replayed(&self, result: &ResultRow) {
        self.progress(|p| p.replayed += 1);
        self.recorder.write_result(result, None);
    }

    /// A row the ledger answers from an earlier run: journaled (so that a
    /// resume gives the same) and written out.
    pub fn known(&self, result: &ResultRow) -> anyhow::Result<()> {
        self.progress(|p| p.from_ledger += 1);
        if let Err(error) = self.journal().settled(result, "") {
            self.recorder.fail(&self.recorder.paths.journal, &error);
            let path = self.recorder.paths.journal.display();
            return Err(anyhow::Error::new(error).context(format!("cannot write {path}")));
        }
        self.recorder.write_result(result, None);
        Ok(())
    }

    /// A correction that waits for its retransmission: written out as U and
    /// kept for `retry.csv`, never journaled (the next run decides again).
    pub fn waiting(&self, result: &ResultRow, row: OwnedRow) {
        self.progress(|p| p.waiting += 1);
        self.recorder.write_result(result, Some(row));
    }

    /// The ledger could not be read or written: the run stops.
    pub fn ledger_failed(&self, error: &LedgerError) {
        self.recorder.fail(&self.recorder.paths.ledger, error);
    }

    /// A row the journal holds as final whose answer the ledger could not
    /// record: written out U, for `retry.csv` (see `write_unrecorded`).
    pub fn replayed_unrecorded(&self, result: &ResultRow, row: OwnedRow) {
        self.progress(|p| p.replayed += 1);
        self.recorder.write_unrecorded(result, row);
    }

    /// Before a request goes on the wire: the journal must hold the
    /// attempt (else it is not sent), then the ledger records it in its
    /// group.
    pub fn before_send(&self, job: &Job) -> bool {
        // After a failed write nothing more goes on the wire, whatever the
        // pool has yet to see of the stop.
        if self.recorder.failures.any() {
            return false;
        }
        let journaled = self
            .journal()
            .attempt(job.row.line, &job.request.customs_declaration_request_id);
        if let Err(error) = journaled {
            self.recorder.fail(&self.recorder.paths.journal, &error);
            return false;
        }
        self.ledger
            .call(job.row.line, &job.request, &job.body, job.retransmission);
        true
    }

    /// A row settled by the sending pool: journaled, then (for an answer)
    /// committed to the ledger, then written out — in that order, so that
    /// a kill at any point loses nothing a resume cannot rebuild.
    pub fn settle(&self, settled: Settled, tally: &Tally) {
        self.progress(|p| p.tally = tally.clone());
        let row = result_row(&settled);
        let answer = raw_answer(settled.outcome.as_ref());
        let mut journal = self.journal();
        if settled.provisional {
            if let Err(error) = journal.provisional(&row, answer) {
                self.recorder.fail(&self.recorder.paths.journal, &error);
            }
            return;
        }
        if row.result_status != Status::U
            && let Err(error) = journal.settled(&row, answer)
        {
            self.recorder.fail(&self.recorder.paths.journal, &error);
        }
        drop(journal);
        let owned_row = settled.job.row;
        if settled.outcome.is_none() {
            self.recorder.write_result(&row, Some(owned_row));
            return;
        }
        let recorder = Arc::clone(&self.recorder);
        let (request, body) = (&settled.job.request, &settled.job.body);
        let written = row.clone();
        self.ledger.outcome(
            row,
            request,
            body,
            answer,
            Box::new(move |committed: Result<(), &LedgerError>| match committed {
                Ok(()) => {
                    let retry = (written.result_status == Status::U).then_some(owned_row);
                    recorder.write_result(&written, retry);
                }
                Err(error) => {
                    recorder.fail(&recorder.paths.ledger, error);
                    // This invocation's count follows what was written.
                    recorder
                        .progress
                        .send_modify(|p| p.unrecorded.add(written.result_status));
                    recorder.write_unrecorded(&written, owned_row);
                }
            }),
        );
    }

    /// Once admission and the pool are done: every queued ledger write
    /// committed and its row written out, and what is left handed over.
    pub fn drain(self) -> anyhow::Result<Drained> {
        let Sink {
            journal,
            ledger,
            recorder,
            ..
        } = self;
        ledger.finish();
        let recorder = Arc::try_unwrap(recorder)
            .map_err(|_| anyhow::anyhow!("the run's outputs are still in use"))?;
        Ok(Drained {
            journal: journal.into_inner().unwrap_or_else(|e| e.into_inner()),
            outputs: recorder
                .outputs
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
            failures: recorder.failures,
        })
    }
}
