//! The run's journal: an append-only file in the out folder that records
//! each attempt before it is sent and each final outcome (S or F) when it
//! arrives. Every record is handed to the operating system in one write as
//! it is made, so a killed process loses nothing, and the file is synced to
//! disk at least once a second. On a rerun of the same run, finals are
//! replayed instead of sent, and attempts are counted across runs.
//!
//! Records have their own versioned type, not the `results.csv` row, so
//! that a new results column never makes old records unreadable; records
//! without a version are version 0 (the first journals), read alike. On
//! open, a last record cut short by a kill is cut off before anything is
//! appended; an unreadable record anywhere else is a fatal error naming its
//! line, since skipping it could forget a final answer. After a failed
//! write nothing more is appended: a torn record stays the last one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::outcome::ResultRow;
use serde::{Deserialize, Serialize};

/// The version of the records this code writes.
pub const JOURNAL_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Entry {
    /// About to send a request for a row.
    #[serde(rename = "attempt")]
    Attempt {
        #[serde(default)]
        v: u32,
        row: u64,
        id: String,
    },
    /// A final outcome (S or F) for a row; a provisional one (a
    /// PARAM_ILLEGAL answer that may yet be the request's fault) is not
    /// replayed: its row is in doubt.
    #[serde(rename = "final")]
    Final {
        #[serde(default)]
        v: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        provisional: bool,
        result: Box<FinalRecord>,
    },
}

impl Entry {
    fn version(&self) -> u32 {
        match self {
            Entry::Attempt { v, .. } | Entry::Final { v, .. } => *v,
        }
    }
}

/// A final outcome as the journal keeps it: the result line, and the raw
/// answer it came from. Every field has a default (`ResultRow`'s too), so
/// that a record written before a field existed still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinalRecord {
    #[serde(flatten)]
    pub result: ResultRow,
    /// The answer's body as received (empty in version 0 records).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub answer: String,
}

impl FinalRecord {
    /// The record of a result, with the raw answer it came from.
    pub fn new(result: &ResultRow, answer: &str) -> FinalRecord {
        FinalRecord {
            result: result.clone(),
            answer: answer.to_owned(),
        }
    }

    /// The `results.csv` line this record stands for.
    pub fn to_result(&self) -> ResultRow {
        self.result.clone()
    }
}

/// A journal that cannot be resumed from, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the journal {path} is damaged at line {line} ({reason}); skipping it could forget a \
         final answer and send its row again under another body. Restore the file, or start \
         the run over with --fresh (rows already declared are then sent again with the same \
         bytes, which the API answers from its first answer)"
    )]
    Damaged {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error(
        "the journal {path} was written by a newer declare-batch (record version {version} at \
         line {line}; this one reads up to {JOURNAL_VERSION}); resume the run with that version"
    )]
    Newer {
        path: PathBuf,
        line: u64,
        version: u32,
    },
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
            Entry::Final { result, .. } => Ok(Some(result.to_result())),
            Entry::Attempt { .. } => Err(io::Error::other(format!(
                "the journal changed while it was read: byte {offset} is not a final outcome"
            ))),
        }
    }
}

pub struct Journal {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
    last_sync: Instant,
    /// Set by the first failed write: nothing more is appended after it.
    failed: bool,
}

const SYNC_EVERY: Duration = Duration::from_secs(1);

/// A line of the journal as read back.
enum Line {
    Entry(Entry),
    Blank,
    /// Cut short: valid JSON up to where it ends.
    Torn(serde_json::Error),
    Unreadable(serde_json::Error),
}

fn read_line(text: &[u8]) -> Line {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match serde_json::from_slice::<Entry>(text) {
        Ok(entry) => Line::Entry(entry),
        Err(error) if error.is_eof() => Line::Torn(error),
        Err(error) => Line::Unreadable(error),
    }
}

impl Journal {
    /// Reads what `path` holds, cuts off a last record torn by a kill, then
    /// opens it for appending.
    pub fn open(path: &Path) -> Result<(Journal, Replay), JournalError> {
        let io_error = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let damaged = |line, error: serde_json::Error| JournalError::Damaged {
            path: path.to_owned(),
            line,
            reason: error.to_string(),
        };
        let mut replay = Replay::default();
        // Where the readable journal ends, and whether its last record
        // lacks its newline.
        let mut cut_at = None;
        let mut needs_newline = false;
        match File::open(path) {
            Ok(file) => {
                let mut reader = BufReader::new(file);
                let mut line = Vec::new();
                let mut offset = 0u64;
                let mut number = 0u64;
                let mut versioned = false;
                // A torn record seen before the current line.
                let mut torn: Option<(u64, u64, serde_json::Error)> = None;
                loop {
                    line.clear();
                    let read = reader.read_until(b'\n', &mut line).map_err(io_error)?;
                    if read == 0 {
                        break;
                    }
                    number += 1;
                    if let Some((torn_line, _, error)) = torn.take() {
                        // The first journals began each run on a fresh line,
                        // which left a record torn by a kill in the middle;
                        // these journals cut it off instead.
                        if versioned {
                            return Err(damaged(torn_line, error));
                        }
                    }
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    match read_line(text) {
                        Line::Entry(entry) if entry.version() > JOURNAL_VERSION => {
                            return Err(JournalError::Newer {
                                path: path.to_owned(),
                                line: number,
                                version: entry.version(),
                            });
                        }
                        Line::Entry(entry) => {
                            versioned |= entry.version() > 0;
                            match entry {
                                Entry::Attempt { row, .. } => {
                                    *replay.attempts.entry(row).or_default() += 1;
                                }
                                Entry::Final {
                                    provisional: true, ..
                                } => {}
                                Entry::Final { result, .. } => {
                                    let len = u32::try_from(text.len())
                                        .map_err(io::Error::other)
                                        .map_err(io_error)?;
                                    replay.finals.insert(result.result.row, (offset, len));
                                }
                            }
                            needs_newline = !line.ends_with(b"\n");
                        }
                        Line::Blank => {}
                        Line::Torn(error) => torn = Some((number, offset, error)),
                        Line::Unreadable(error) => return Err(damaged(number, error)),
                    }
                    offset += read as u64;
                }
                // A torn record at the very end never happened.
                if let Some((_, torn_offset, _)) = torn {
                    cut_at = Some(torn_offset);
                    needs_newline = false;
                }
                replay.journal = Some(Mutex::new(reader.into_inner()));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
        let mut file = private_append(path).map_err(io_error)?;
        if let Some(length) = cut_at {
            file.set_len(length).map_err(io_error)?;
        }
        if needs_newline {
            file.write_all(b"\n").map_err(io_error)?;
        }
        let journal = Journal {
            file,
            path: path.to_owned(),
            line: Vec::with_capacity(512),
            last_sync: Instant::now(),
            failed: false,
        };
        Ok((journal, replay))
    }

    fn append(&mut self, entry: &Entry) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(format!(
                "an earlier write to {} failed: nothing more is appended",
                self.path.display()
            )));
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, entry)?;
        self.line.push(b'\n');
        // One write per record: a kill or a full disk tears at most the
        // last one, which the next open cuts off.
        let written = self.file.write_all(&self.line).and_then(|()| {
            if self.last_sync.elapsed() >= SYNC_EVERY {
                self.file.sync_data()?;
                self.last_sync = Instant::now();
            }
            Ok(())
        });
        if written.is_err() {
            self.failed = true;
        }
        written
    }

    /// Records that a request for `row` is about to be sent.
    pub fn attempt(&mut self, row: u64, request_id: &str) -> io::Result<()> {
        self.append(&Entry::Attempt {
            v: JOURNAL_VERSION,
            row,
            id: request_id.to_owned(),
        })
    }

    /// Records a final outcome (S or F) with the raw answer it came from.
    pub fn settled(&mut self, result: &ResultRow, answer: &str) -> io::Result<()> {
        self.append(&Entry::Final {
            v: JOURNAL_VERSION,
            provisional: false,
            result: Box::new(FinalRecord::new(result, answer)),
        })
    }

    /// Records a provisional outcome, which a resume does not replay.
    pub fn provisional(&mut self, result: &ResultRow, answer: &str) -> io::Result<()> {
        self.append(&Entry::Final {
            v: JOURNAL_VERSION,
            provisional: true,
            result: Box::new(FinalRecord::new(result, answer)),
        })
    }

    /// Syncs everything written to disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(format!(
                "an earlier write to {} failed",
                self.path.display()
            )));
        }
        self.file.sync_data()?;
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// Opens `path` for appending, created readable by the owner only: the
/// journal holds the rows' IDs and answers.
fn private_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn result(row: u64, status: &str) -> ResultRow {
        ResultRow {
            row,
            result_status: Status::parse(status).expect("S, F or U"),
            attempts: 2,
            ..ResultRow::default()
        }
    }

    #[test]
    fn replays_finals_and_attempts_and_cuts_off_a_torn_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (mut journal, replay) = Journal::open(&path).unwrap();
            assert_eq!(replay.finals(), 0);
            assert_eq!(replay.final_result(2).unwrap(), None);
            journal.attempt(2, "D1").unwrap();
            journal.attempt(2, "D1").unwrap();
            journal.attempt(3, "D2").unwrap();
            journal
                .settled(&result(2, "S"), r#"{"result":{}}"#)
                .unwrap();
        }
        let whole = std::fs::metadata(&path).unwrap().len();
        // A kill in the middle of a record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"t":"final","v":1,"result":{"row":3,"#)
            .unwrap();
        drop(file);
        let (mut journal, replay) = Journal::open(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            whole,
            "the torn record is cut off before anything is appended"
        );
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
        assert_eq!(replay.final_result(3).unwrap(), None);
        journal.attempt(3, "D2").unwrap();
        let failed = ResultRow {
            result_code: "ORDER_NOT_EXIST".into(),
            result_message: "a message, with \"quotes\"".into(),
            ..result(3, "F")
        };
        journal.settled(&failed, "").unwrap();
        drop(journal);
        let (_, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.attempts[&3], 2);
        assert_eq!(replay.final_result(3).unwrap(), Some(failed));
        assert_eq!(
            replay.final_result(2).unwrap().unwrap().result_status,
            Status::S
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""answer":"{\"result\":{}}""#), "{text}");
        assert!(text.lines().all(|line| line.contains(r#""v":1"#)), "{text}");
    }

    #[test]
    fn journals_of_the_first_version_still_resume() {
        // As the first journals wrote them: a fresh line at each start, the
        // whole results.csv row as the final, and a record torn by a kill
        // followed by the next run's records.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(
            &path,
            concat!(
                "\n",
                r#"{"t":"attempt","row":2,"id":"D1"}"#,
                "\n",
                r#"{"t":"final","result":{"row":2,"paymentRequestId":"P1","customsDeclarationRequestId":"D1","referenceOrderId":"","customsCode":"ZONGSHU","declarationAmount":"100","resultStatus":"S","resultCode":"SUCCESS","resultMessage":"Success","pspPaymentId":"X","pspDeclarationRequestId":"Y","pspCustomsCode":"","clearingChannel":"","clearingTransactionId":"","pspOrderAmount":"","identityCheckResult":"","attempts":1}}"#,
                "\n",
                r#"{"t":"attempt","row":3,"id":"D2"}"#,
                "\n",
                r#"{"t":"final","result":{"row":3,"paymen"#,
                "\n",
                r#"{"t":"attempt","row":3,"id":"D2"}"#,
                "\n",
            ),
        )
        .unwrap();
        let (mut journal, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.finals(), 1);
        assert_eq!(replay.attempts[&3], 2);
        let row = replay.final_result(2).unwrap().unwrap();
        assert_eq!(
            (row.payment_request_id.as_str(), row.psp_payment_id.as_str()),
            ("P1", "X")
        );
        journal.settled(&result(3, "S"), "").unwrap();
        drop(journal);
        let (_, replay) = Journal::open(&path).unwrap();
        assert_eq!(
            replay.finals(),
            2,
            "appending to an old journal keeps it readable"
        );
    }

    #[test]
    fn an_unreadable_record_before_the_end_is_fatal_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (mut journal, _) = Journal::open(&path).unwrap();
            journal.attempt(2, "D1").unwrap();
            journal.settled(&result(2, "S"), "").unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // A damaged record (not cut short: something else) on line 2.
        std::fs::write(&path, text.replacen(r#""t":"final""#, r#""t":"fianl""#, 1)).unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("journal.jsonl"), "{error}");
        // A record cut short after records of these journals, then more
        // records: not the kill of a last write, so damage too.
        std::fs::write(&path, format!("{text}{}\n{text}", &text[..20])).unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(error.contains("line 3"), "{error}");
        // Written by a newer version.
        std::fs::write(&path, text.replace(r#""v":1"#, r#""v":7"#)).unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(
            error.contains("newer") && error.contains("version 7"),
            "{error}"
        );
    }

    #[test]
    fn provisional_outcomes_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        {
            let (mut journal, _) = Journal::open(&path).unwrap();
            journal.attempt(2, "D1").unwrap();
            journal.provisional(&result(2, "F"), "").unwrap();
        }
        let (mut journal, replay) = Journal::open(&path).unwrap();
        assert_eq!(replay.finals(), 0, "the row is in doubt");
        assert_eq!(replay.attempts[&2], 1);
        journal.settled(&result(2, "F"), "").unwrap();
        drop(journal);
        assert_eq!(Journal::open(&path).unwrap().1.finals(), 1);
    }

    #[test]
    fn nothing_is_appended_after_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.attempt(2, "D1").unwrap();
        let before = std::fs::read(&path).unwrap();
        journal.failed = true;
        assert!(journal.attempt(3, "D2").is_err());
        assert!(journal.settled(&result(2, "S"), "").is_err());
        assert!(journal.sync().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[cfg(unix)]
    #[test]
    fn the_journal_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        drop(Journal::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
