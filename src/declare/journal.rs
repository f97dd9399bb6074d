//! The run's journal: an append-only file in the out folder that records
//! each attempt before it is sent and each final outcome (S or F) when it
//! arrives. Every line is handed to the operating system as it is written,
//! so a killed process loses nothing, and the file is synced to disk at
//! least once a second. On a rerun of the same run, finals are replayed
//! instead of sent, and attempts are counted across runs. A line cut short
//! by a kill is ignored.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::ResultRow;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Entry {
    /// About to send a request for a row.
    #[serde(rename = "attempt")]
    Attempt { row: u64, id: String },
    /// A final outcome (S or F) for a row.
    #[serde(rename = "final")]
    Final { result: Box<ResultRow> },
}

/// What earlier runs into the same folder journaled. Final outcomes stay
/// in the journal file and are read back one at a time when their row
/// comes by: only where each lies is held in memory (about 32 bytes a row
/// instead of a whole result), so resuming a long run stays small.
#[derive(Debug, Default)]
pub struct Replay {
    /// Where each row's latest final outcome lies: byte offset and length
    /// of its journal line.
    finals: HashMap<u64, (u64, u32)>,
    /// Requests sent by row.
    pub attempts: HashMap<u64, u32>,
    journal: Option<Mutex<File>>,
}

impl Replay {
    /// Rows with a journaled final outcome.
    pub fn finals(&self) -> usize {
        self.finals.len()
    }

    /// The journaled final outcome of `row`, if any.
    pub fn final_result(&self, row: u64) -> io::Result<Option<ResultRow>> {
        let (Some(&(offset, len)), Some(journal)) = (self.finals.get(&row), &self.journal) else {
            return Ok(None);
        };
        let mut line = vec![0; len as usize];
        {
            let mut file = journal.lock().expect("not poisoned");
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut line)?;
        }
        match serde_json::from_slice(&line)? {
            Entry::Final { result } => Ok(Some(*result)),
            Entry::Attempt { .. } => Err(io::Error::other(format!(
                "the journal changed while it was read: byte {offset} is not a final outcome"
            ))),
        }
    }
}

pub struct Journal {
    file: BufWriter<File>,
    last_sync: Instant,
}

const SYNC_EVERY: Duration = Duration::from_secs(1);

impl Journal {
    /// Reads what `path` holds, then opens it for appending.
    pub fn open(path: &Path) -> io::Result<(Journal, Replay)> {
        let mut replay = Replay::default();
        if let Ok(file) = File::open(path) {
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            let mut offset = 0u64;
            loop {
                line.clear();
                let read = reader.read_until(b'\n', &mut line)?;
                if read == 0 {
                    break;
                }
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                // A line cut short by a kill does not parse: it never
                // happened, and what it said is redone.
                match serde_json::from_slice::<Entry>(text) {
                    Ok(Entry::Attempt { row, .. }) => *replay.attempts.entry(row).or_default() += 1,
                    Ok(Entry::Final { result }) => {
                        let len = u32::try_from(text.len()).map_err(io::Error::other)?;
                        replay.finals.insert(result.row, (offset, len));
                    }
                    Err(_) => {}
                }
                offset += read as u64;
            }
            replay.journal = Some(Mutex::new(reader.into_inner()));
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        // Start on a fresh line in case the last one was cut short.
        file.write_all(b"\n")?;
        let journal = Journal {
            file: BufWriter::new(file),
            last_sync: Instant::now(),
        };
        Ok((journal, replay))
    }

    fn append(&mut self, entry: &Entry) -> io::Result<()> {
        serde_json::to_writer(&mut self.file, entry)?;
        self.file.write_all(b"\n")?;
        self.file.flush()?;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Records that a request for `row` is about to be sent.
    pub fn attempt(&mut self, row: u64, request_id: &str) -> io::Result<()> {
        self.append(&Entry::Attempt {
            row,
            id: request_id.to_owned(),
        })
    }

    /// Records a final outcome (S or F).
    pub fn settled(&mut self, result: &ResultRow) -> io::Result<()> {
        self.append(&Entry::Final {
            result: Box::new(result.clone()),
        })
    }

    /// Syncs everything written to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_finals_and_attempts_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (mut journal, replay) = Journal::open(&path).unwrap();
            assert_eq!(replay.finals(), 0);
            assert_eq!(replay.final_result(2).unwrap(), None);
            journal.attempt(2, "D1").unwrap();
            journal.attempt(2, "D1").unwrap();
            journal.attempt(3, "D2").unwrap();
            let result = ResultRow {
                row: 2,
                result_status: "S".into(),
                attempts: 2,
                ..ResultRow::default()
            };
            journal.settled(&result).unwrap();
        }
        // A kill in the middle of a line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"t":"final","result":{"row":3,"#)
            .unwrap();
        drop(file);
        let (mut journal, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.attempts[&2], 2);
        assert_eq!(replay.attempts[&3], 1);
        assert_eq!(replay.finals(), 1);
        let replayed = replay.final_result(2).unwrap().unwrap();
        assert_eq!(
            (
                replayed.row,
                replayed.result_status.as_str(),
                replayed.attempts
            ),
            (2, "S", 2)
        );
        assert_eq!(
            replay.final_result(3).unwrap(),
            None,
            "the torn line never happened"
        );
        // Appending after the torn line still parses.
        journal.attempt(3, "D2").unwrap();
        let failed = ResultRow {
            row: 3,
            result_status: "F".into(),
            result_code: "ORDER_NOT_EXIST".into(),
            result_message: "a message, with \"quotes\"".into(),
            attempts: 2,
            ..ResultRow::default()
        };
        journal.settled(&failed).unwrap();
        drop(journal);
        let (_, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.attempts[&3], 2);
        assert_eq!(replay.final_result(3).unwrap(), Some(failed));
        assert_eq!(replay.final_result(2).unwrap().unwrap().result_status, "S");
    }
}
