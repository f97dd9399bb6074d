//! The run's journal: an append-only file in the out folder that records
//! each attempt before it is sent and each final outcome (S or F) when it
//! arrives. Every line is handed to the operating system as it is written,
//! so a killed process loses nothing, and the file is synced to disk at
//! least once a second. On a rerun of the same run, finals are replayed
//! instead of sent, and attempts are counted across runs. A line cut short
//! by a kill is ignored.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
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

/// What earlier runs into the same folder journaled.
#[derive(Debug, Default)]
pub struct Replay {
    /// Final outcomes by row.
    pub finals: HashMap<u64, ResultRow>,
    /// Requests sent by row.
    pub attempts: HashMap<u64, u32>,
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
            for line in BufReader::new(file).lines() {
                let line = line?;
                // A line cut short by a kill does not parse: it never
                // happened, and what it said is redone.
                match serde_json::from_str::<Entry>(&line) {
                    Ok(Entry::Attempt { row, .. }) => *replay.attempts.entry(row).or_default() += 1,
                    Ok(Entry::Final { result }) => {
                        replay.finals.insert(result.row, *result);
                    }
                    Err(_) => {}
                }
            }
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
            assert!(replay.finals.is_empty());
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
        assert_eq!(replay.finals.len(), 1);
        assert_eq!(replay.finals[&2].result_status, "S");
        // Appending after the torn line still parses.
        journal.attempt(3, "D2").unwrap();
        drop(journal);
        let (_, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.attempts[&3], 2);
    }
}
