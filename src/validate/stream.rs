//! Validating a whole input on every core, in row order. One thread reads
//! rows into batches (`RowBatch`: a batch's CSV text in one buffer);
//! worker threads apply the single-row rules (the costly part: normalising
//! and fingerprinting); the calling thread puts the batches back in order,
//! applies the cross-row rules, hands each row on, and returns the batch to
//! the reader to be filled again. Channels are bounded, so memory stays
//! flat however long the input is.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use super::{CrossRowIndex, Fingerprint, KeptRow, RowRules, ValidRow, Verdict};
use crate::input::{InputError, RowBatch, RowRef, RowSource};

/// Each batch costs a few thread wake-ups: at 512 rows a batch they took
/// 6 % more CPU to validate a million rows.
const ROWS_PER_BATCH: usize = 2048;
/// A batch also ends once its rows weigh this much (`RowBatch::weight`):
/// a dozen batches are in flight, as many more wait to be reused, and rows
/// can be 16,384 cells wide.
const BATCH_WEIGHT: usize = 512 * 1024;
/// A done batch goes back to the reader to be filled again, unless one
/// long row left it holding more than this.
const KEPT_BATCH_CAPACITY: usize = 4 * BATCH_WEIGHT;
/// The cross-row index is sized ahead for at most this many rows (its
/// tables then take about 80 MB): the estimate comes from the first rows
/// and the file's size, which a file of blank lines can make as large as it
/// likes. A larger input grows the tables as it goes, which costs a rehash
/// and, for a moment, both tables.
const MAX_RESERVED_ROWS: u64 = 1 << 20;
/// How many rows ahead of its claim a row's slots are fetched.
const PREFETCH_AHEAD: usize = 8;

/// A row and what the rules made of it. The row is borrowed from its batch
/// for the length of the call it is handed to (`RowRef::to_owned_row`
/// keeps it longer).
#[derive(Debug)]
pub struct Outcome<'r, V = Box<ValidRow>> {
    pub row: RowRef<'r>,
    pub verdict: Verdict<V>,
}

type Batch<T> = (u64, Result<T, InputError>);

/// Reads every row of `source`, checks it, and calls `each` with the
/// outcomes in row order, keeping `V` of each valid row. Stops at the first
/// error, from the input or from `each`.
pub fn validate_stream<V: KeptRow, E: From<InputError>>(
    source: &mut RowSource,
    rules: &RowRules,
    index: &mut CrossRowIndex,
    workers: usize,
    mut each: impl FnMut(Outcome<'_, V>) -> Result<(), E>,
) -> Result<(), E> {
    let workers = workers.max(1);
    let (work_tx, work_rx) = sync_channel::<Batch<RowBatch>>(workers * 2);
    // Owned by the workers alone, so that when they stop the reader's sends
    // fail and it stops too.
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = sync_channel::<Batch<(RowBatch, Vec<Verdict<V>>)>>(workers * 2);
    // Batches done with, back to the reader: their buffers are filled
    // again, and freed on the thread that made them.
    let (spare_tx, spare_rx) = sync_channel::<RowBatch>(workers * 4 + 2);
    let text_len = source.text_len();
    std::thread::scope(|scope| {
        scope.spawn(move || read_batches(source, &spare_rx, |batch| work_tx.send(batch).is_ok()));
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            scope
                .spawn(move || check_batches(&work_rx, rules, |batch| done_tx.send(batch).is_ok()));
        }
        drop(work_rx);
        drop(done_tx);
        let mut first = true;
        in_order(done_rx, |(batch, verdicts)| {
            if std::mem::take(&mut first) {
                reserve_for(index, text_len, &batch);
            }
            // The rows a few ahead have their slots fetched while these
            // are claimed: a million keys do not fit in any cache.
            let ahead: Vec<Option<Fingerprint>> = verdicts
                .iter()
                .map(|verdict| match verdict {
                    Verdict::Valid(valid) => Some(*valid.fingerprint()),
                    _ => None,
                })
                .collect();
            for (at, verdict) in verdicts.into_iter().enumerate() {
                if let Some(Some(print)) = ahead.get(at + PREFETCH_AHEAD) {
                    index.prefetch(print);
                }
                let row = batch.row(at);
                let verdict = rules.claim(index, &row, verdict);
                each(Outcome { row, verdict })?;
            }
            give_back(&spare_tx, batch);
            Ok(())
        })
    })
}

/// Returns a done batch to the reader, unless it is too big to keep or
/// the reader has enough (or has stopped).
fn give_back(spare: &SyncSender<RowBatch>, batch: RowBatch) {
    if batch.capacity() <= KEPT_BATCH_CAPACITY {
        let _ = spare.try_send(batch);
    }
}

fn read_batches(
    source: &mut RowSource,
    spare: &Receiver<RowBatch>,
    mut send: impl FnMut(Batch<RowBatch>) -> bool,
) {
    let mut sequence = 0;
    loop {
        let mut batch = spare.try_recv().unwrap_or_default();
        batch.clear();
        let outcome = loop {
            match source.next_into(&mut batch) {
                Ok(true) => {
                    if batch.len() == ROWS_PER_BATCH || batch.weight() >= BATCH_WEIGHT {
                        break Ok(true);
                    }
                }
                Ok(false) => break Ok(false),
                Err(error) => break Err(error),
            }
        };
        if !batch.is_empty() {
            if !send((sequence, Ok(batch))) {
                return;
            }
            sequence += 1;
        }
        match outcome {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                send((sequence, Err(error)));
                return;
            }
        }
    }
}

fn check_batches<V: KeptRow>(
    work: &Mutex<Receiver<Batch<RowBatch>>>,
    rules: &RowRules,
    mut send: impl FnMut(Batch<(RowBatch, Vec<Verdict<V>>)>) -> bool,
) {
    loop {
        // The lock is held only to take one batch.
        let received = work.lock().expect("no worker panics holding it").recv();
        let Ok((sequence, batch)) = received else {
            return;
        };
        let checked = batch.map(|batch| {
            let verdicts = batch.rows().map(|row| rules.check_keeping(&row)).collect();
            (batch, verdicts)
        });
        if !send((sequence, checked)) {
            return;
        }
    }
}

/// Sizes the cross-row index from the first batch's average row length and
/// the input's size, so that the tables do not regrow on a large input.
fn reserve_for(index: &mut CrossRowIndex, text_len: Option<u64>, first: &RowBatch) {
    let Some(text_len) = text_len else {
        return;
    };
    let sampled: usize = first.rows().map(|row| row.text_len()).sum();
    if first.is_empty() || sampled == 0 {
        return;
    }
    let average = (sampled / first.len()).max(1) as u64;
    let rows = (text_len / average).min(MAX_RESERVED_ROWS);
    index.reserve(usize::try_from(rows).unwrap_or(usize::MAX));
}

/// Hands the batches on in the order they were read.
fn in_order<T, E: From<InputError>>(
    done: Receiver<Batch<T>>,
    mut each_batch: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    for (sequence, batch) in done {
        waiting.insert(sequence, batch);
        while let Some(batch) = waiting.remove(&next) {
            next += 1;
            each_batch(batch?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::OwnedRow;

    #[test]
    fn the_index_is_sized_ahead_for_at_most_a_million_rows() {
        let mut first = RowBatch::default();
        for line in 0..512 {
            first.push_owned(OwnedRow::from_texts(line, &["P1", "D1", "ZONGSHU"]));
        }
        // A terabyte of blank lines after 512 short rows.
        let mut index = CrossRowIndex::default();
        reserve_for(&mut index, Some(1 << 40), &first);
        assert!(index.capacity() >= 1 << 20, "{}", index.capacity());
        assert!(index.capacity() < 1 << 22, "{}", index.capacity());
        // A small file: what it can hold.
        let mut index = CrossRowIndex::default();
        reserve_for(&mut index, Some(16 * 10_000), &first);
        assert!(
            (10_000..1 << 16).contains(&index.capacity()),
            "{}",
            index.capacity()
        );
    }
}
