//! CSV rows, split here. The text is first made regular: line endings
//! become `\n` and a BOM at its start is dropped (`LineEndings`), and a
//! record that passes a size limit is replaced by a mark (`RecordLimit`),
//! so that only whole records of bounded size are ever held. A record
//! without a quote is then split at its commas where it lies; one with a
//! quote goes through `csv_core`, the `csv` crate's own parser, so that both
//! read every file alike. Each record's start line is counted here, blank
//! lines between records are skipped and counted, and a record goes
//! straight into a `RowBatch`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::EncodingChoice;
use super::decode::{
    EncodingRefusal, Gb18030Reader, TextEncoding, UTF8_BOM, Utf8Scan, choose_encoding,
};
use super::{InputError, OwnedRow, RowBatch, RowRef};

/// The bytes read from the file at a time. The record limiter asks for as
/// many as the file's buffer holds, so that its reads go past that buffer
/// instead of through it.
const READ_CHUNK: usize = 256 * 1024;

pub(super) struct CsvSource {
    records: RecordLimit<LineEndings<Box<dyn Read + Send>>>,
    quoted: QuotedRecords,
    /// `next_row`'s record: a batch of one.
    current: RowBatch,
    /// The line the last record starts on.
    line: u64,
    /// The line the text read so far has reached: where a next record
    /// would start.
    next_line: u64,
    /// Blank lines passed since the last record: skipped lines once a
    /// record follows them (the `csv` crate never counted the blank lines
    /// at the end).
    blank_lines: u64,
    skipped_lines: u64,
}

/// The records that hold a quote, parsed by `csv_core` into buffers that
/// grow to the largest such record.
struct QuotedRecords {
    reader: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl QuotedRecords {
    fn new() -> QuotedRecords {
        let mut reader = csv_core::Reader::new();
        // `csv_core` drops a BOM in the first input it is given; the text's
        // start is dealt with before (`LineEndings`) and this reader's first
        // input may be any record, so it is first given a blank line, which
        // it skips.
        let primed = reader.read_record(b"\n", &mut [0; 1], &mut [0; 1]);
        debug_assert!(matches!(primed.0, csv_core::ReadRecordResult::InputEmpty));
        QuotedRecords {
            reader,
            output: vec![0; 4096],
            ends: vec![0; 64],
        }
    }
}

impl CsvSource {
    pub(super) fn open(
        path: &Path,
        choice: EncodingChoice,
        head: &[u8],
        scan: &Utf8Scan,
    ) -> Result<(CsvSource, TextEncoding), InputError> {
        let (encoding, bom_len) = choose_encoding(choice, head, scan).map_err(|refusal| {
            let message = match refusal {
                EncodingRefusal::Utf16 => "is UTF-16 text (Excel's \"Unicode Text\"); save it as \
                                           \"CSV UTF-8 (Comma delimited)\" instead"
                    .to_owned(),
                EncodingRefusal::MostlyUtf8 {
                    line,
                    bad_sequences,
                } => {
                    return InputError::AtLine {
                        path: path.to_owned(),
                        line,
                        message: format!(
                            "the file is UTF-8 but has {bad_sequences} byte sequence(s) that are \
                             not, the first on this line; the file is damaged: re-export it (if \
                             it really is GBK, set [input] encoding = \"gb18030\")"
                        ),
                    };
                }
            };
            InputError::Unreadable {
                path: path.to_owned(),
                message,
            }
        })?;
        let io_error = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = BufReader::with_capacity(READ_CHUNK, File::open(path).map_err(io_error)?);
        io::copy(&mut (&mut file).take(bom_len as u64), &mut io::sink()).map_err(io_error)?;
        let text: Box<dyn Read + Send> = match encoding {
            TextEncoding::Utf8 => Box::new(file),
            TextEncoding::Gb18030 => Box::new(Gb18030Reader::new(file)),
        };
        Ok((CsvSource::new(text), encoding))
    }

    fn new(text: Box<dyn Read + Send>) -> CsvSource {
        CsvSource {
            records: RecordLimit::new(LineEndings::new(text)),
            quoted: QuotedRecords::new(),
            current: RowBatch::default(),
            line: 0,
            next_line: 1,
            blank_lines: 0,
            skipped_lines: 0,
        }
    }

    pub(super) fn next_row(&mut self, path: &Path) -> Result<Option<RowRef<'_>>, InputError> {
        let mut current = std::mem::take(&mut self.current);
        current.clear();
        let read = self.next_into(path, &mut current);
        self.current = current;
        if !read? {
            return Ok(None);
        }
        Ok(self.current())
    }

    pub(super) fn current(&self) -> Option<RowRef<'_>> {
        (!self.current.is_empty()).then(|| self.current.row(0))
    }

    pub(super) fn take_current(&mut self) -> Option<OwnedRow> {
        let row = self.current().map(|row| row.to_owned_row());
        self.current.clear();
        row
    }

    pub(super) fn take_skipped_lines(&mut self) -> u64 {
        std::mem::take(&mut self.skipped_lines)
    }

    /// Reads the next record onto the end of `batch`, numbering its line;
    /// `false` at the end of the input.
    pub(super) fn next_into(
        &mut self,
        path: &Path,
        batch: &mut RowBatch,
    ) -> Result<bool, InputError> {
        loop {
            let ready = match self.records.fill() {
                Ok(ready) => ready,
                Err(error) => return Err(at_line(path, self.next_line, error.to_string())),
            };
            if ready.is_empty() {
                return Ok(false);
            }
            let blank = ready.iter().take_while(|&&byte| byte == b'\n').count();
            if blank > 0 {
                self.records.consume(blank);
                self.next_line += blank as u64;
                self.blank_lines += blank as u64;
                continue;
            }
            self.line = self.next_line;
            self.skipped_lines += std::mem::take(&mut self.blank_lines);
            if let Some((mark, length, line_breaks)) = fault_mark(ready) {
                let kept_beside = self.records.take_mark_breaks(length - 2);
                self.records.consume(length);
                self.next_line += line_breaks + kept_beside;
                batch
                    .push_record(self.line, [mark.as_bytes()])
                    .map_err(|field| self.not_utf8(path, field))?;
                return Ok(true);
            }
            let end = match memchr::memchr2(b'\n', b'"', ready) {
                Some(end) if ready[end] == b'"' => return self.next_quoted_into(path, batch),
                Some(end) => end,
                // Only before the end of the text, which always ends a line.
                None => ready.len(),
            };
            let pushed = batch.push_line(self.line, &ready[..end]);
            let newline = usize::from(end < ready.len());
            self.records.consume(end + newline);
            self.next_line += newline as u64;
            pushed.map_err(|field| self.not_utf8(path, field))?;
            return Ok(true);
        }
    }

    /// Reads a record that holds a quote, from its first byte, with
    /// `csv_core`.
    fn next_quoted_into(&mut self, path: &Path, batch: &mut RowBatch) -> Result<bool, InputError> {
        use csv_core::ReadRecordResult;
        let quoted = &mut self.quoted;
        let (mut output_len, mut ends_len) = (0, 0);
        let mut newlines = 0u64;
        let ran_out = loop {
            let input = match self.records.fill() {
                Ok(input) => input,
                Err(error) => return Err(at_line(path, self.line, error.to_string())),
            };
            let (result, read, written, ended) = quoted.reader.read_record(
                input,
                &mut quoted.output[output_len..],
                &mut quoted.ends[ends_len..],
            );
            newlines += memchr::memchr_iter(b'\n', &input[..read]).count() as u64;
            let ran_out = input.is_empty();
            self.records.consume(read);
            output_len += written;
            ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let grown = quoted.output.len() * 2;
                    quoted.output.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = quoted.ends.len() * 2;
                    quoted.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => break ran_out,
                // The record's quote was read, so there is a record.
                ReadRecordResult::End => break true,
            }
        };
        // The text always ends a line, so a record that the end of the text
        // finished ran into it inside a quoted value.
        if ran_out {
            return Err(at_line(
                path,
                self.line,
                "a double quote opens a quoted value that is never closed, so everything from \
                 here to the end of the file would be one value; remove the stray quote or \
                 close the value with a matching quote (a quote inside a quoted value is \
                 written twice: \"\")"
                    .to_owned(),
            ));
        }
        self.next_line = self.line + newlines;
        let output = &quoted.output[..output_len];
        let ends = &quoted.ends[..ends_len];
        let fields = (0..ends.len()).map(|field| {
            let start = field.checked_sub(1).map_or(0, |before| ends[before]);
            &output[start..ends[field]]
        });
        batch
            .push_record(self.line, fields)
            .map_err(|field| self.not_utf8(path, field))?;
        Ok(true)
    }

    fn not_utf8(&self, path: &Path, field: usize) -> InputError {
        at_line(
            path,
            self.line,
            format!(
                "field {} has bytes that are not valid UTF-8; check the file's encoding \
                 ([input] encoding) or re-export it as CSV UTF-8",
                field + 1
            ),
        )
    }
}

/// The mark `RecordLimit` put in place of a record past a limit, when
/// `text` starts with one: the mark without its line breaks, its length in
/// `text`, and the line breaks it stands for (its record's end included).
fn fault_mark(text: &[u8]) -> Option<(String, usize, u64)> {
    let rest = text
        .strip_prefix(b"\"")?
        .strip_prefix(FAULT_MARK.as_bytes())?;
    let fault = [TOO_LONG, TOO_MANY_FIELDS]
        .into_iter()
        .find(|fault| rest.starts_with(fault.as_bytes()))?;
    let rest = &rest[fault.len()..];
    let line_breaks = rest.iter().take_while(|&&byte| byte == b'\n').count();
    rest[line_breaks..].starts_with(b"\"\n").then(|| {
        let length = 1 + FAULT_MARK.len() + fault.len() + line_breaks + 2;
        (
            format!("{FAULT_MARK}{fault}"),
            length,
            line_breaks as u64 + 1,
        )
    })
}

fn at_line(path: &Path, line: u64, message: String) -> InputError {
    InputError::AtLine {
        path: path.to_owned(),
        line,
        message,
    }
}

/// The longest record read: no export row comes near it, but a file with no
/// line breaks, or a stray quote, would otherwise be one record held whole.
pub(super) const MAX_RECORD_BYTES: u64 = 1 << 20;
/// The most fields a record may have: Excel's 16,384 columns.
pub(super) const MAX_FIELDS: u64 = 16_384;

/// Where the CSV grammar is (the `csv` crate's defaults: `,` between
/// fields, `"` quotes, `""` a quote inside quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvState {
    StartField,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// What stands in for a record that passed a limit: one quoted field that
/// starts with this. The record's line breaks are kept as a count beside
/// the text (`RecordLimit::marks`), never as bytes (a record can hold
/// millions of them), so that the lines after it keep their numbers.
/// `RowRef::fault` reads the mark.
pub(super) const FAULT_MARK: &str = "\u{1}declare-batch:";
pub(super) const TOO_LONG: &str = "record-too-long";
pub(super) const TOO_MANY_FIELDS: &str = "too-many-fields";

/// Follows the CSV grammar over the text the parser reads. A record
/// is handed on only once it ends; one that passes `MAX_RECORD_BYTES` or
/// `MAX_FIELDS` is dropped to its end and replaced by a mark (see
/// `FAULT_MARK`), so that it becomes a rejected row and the rows after it
/// are read. A record that never ends (a stray quote) is an error at the
/// line it starts on.
struct RecordLimit<R> {
    inner: R,
    state: CsvState,
    record_bytes: u64,
    fields: u64,
    /// Line breaks inside the current record (in quoted values).
    newlines: u64,
    /// The current record's bytes so far.
    held: Vec<u8>,
    /// Whole records, ready to hand on from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    /// The marks in `ready`: where each one's line breaks belong (before
    /// its closing quote), and how many there are.
    marks: std::collections::VecDeque<(usize, u64)>,
    /// The current record passed this limit: it is dropped to its end.
    skipping: Option<&'static str>,
    /// The current record came near a limit: followed field by field to
    /// its end, so that the limit is found exactly (and each field is not
    /// scanned to the line's end again).
    near_limit: bool,
    /// Never counts a run at once (the tests' reference).
    field_by_field: bool,
    /// Each record's fields, bytes and line breaks, as counted at its end.
    #[cfg(test)]
    ends: Vec<(u64, u64, u64)>,
    chunk: Vec<u8>,
    eof: bool,
}

impl<R: Read> RecordLimit<R> {
    fn new(inner: R) -> Self {
        RecordLimit {
            inner,
            state: CsvState::StartField,
            record_bytes: 0,
            fields: 1,
            newlines: 0,
            held: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            marks: std::collections::VecDeque::new(),
            skipping: None,
            near_limit: false,
            field_by_field: false,
            #[cfg(test)]
            ends: Vec::new(),
            chunk: vec![0; READ_CHUNK],
            eof: false,
        }
    }

    /// Follows `byte`, which is not inside a run `follow` skips; whether
    /// it ends the record.
    fn step(&mut self, byte: u8) -> bool {
        use CsvState::*;
        if byte == b'\n' && self.state != Quoted {
            return true;
        }
        self.record_bytes += 1;
        if byte == b'\n' {
            self.newlines += 1;
        }
        self.state = match (self.state, byte) {
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') => Quoted,
            (StartField, b'"') => Quoted,
            (_, b',') => {
                self.fields += 1;
                StartField
            }
            _ => Unquoted,
        };
        false
    }

    /// Outside quotes, the bytes up to the next line break or quote hold no
    /// state but the fields they start: counted in one pass instead of
    /// field by field. Returns how far it went; none when the run would
    /// pass a limit, which the field-by-field path then finds exactly.
    fn unquoted_run(&mut self, rest: &[u8]) -> Option<usize> {
        // A blank line or a quote next: nothing to count (and no search
        // per line of a file of blank lines).
        if matches!(rest.first(), None | Some(b'\n' | b'"')) {
            return None;
        }
        let run = memchr::memchr2(b'\n', b'"', rest).unwrap_or(rest.len());
        let commas = memchr::memchr_iter(b',', &rest[..run]).count() as u64;
        if self.record_bytes + run as u64 > MAX_RECORD_BYTES || self.fields + commas > MAX_FIELDS {
            self.near_limit = true;
            return None;
        }
        self.record_bytes += run as u64;
        self.fields += commas;
        // A quote next is a value's first character only right after a comma.
        self.state = if rest[run - 1] == b',' {
            CsvState::StartField
        } else {
            CsvState::Unquoted
        };
        Some(run)
    }

    /// Follows `bytes` into whole records (`ready`) and the record still
    /// open (`held`). Runs inside a field are skipped with `memchr`, so the
    /// cost per byte is small.
    fn follow(&mut self, bytes: &[u8]) {
        let mut at = 0;
        let mut record_start = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            if !self.near_limit
                && !self.field_by_field
                && matches!(self.state, CsvState::Unquoted | CsvState::StartField)
                && let Some(run) = self.unquoted_run(rest)
            {
                at += run;
            }
            let rest = &bytes[at..];
            if rest.is_empty() {
                break;
            }
            let plain = match self.state {
                CsvState::Unquoted => memchr::memchr2(b',', b'\n', rest),
                CsvState::Quoted => memchr::memchr(b'"', rest),
                _ => Some(0),
            }
            .unwrap_or(rest.len());
            if plain > 0 {
                if self.state == CsvState::Quoted {
                    self.newlines += memchr::memchr_iter(b'\n', &rest[..plain]).count() as u64;
                }
                self.record_bytes += plain as u64;
                at += plain;
            } else {
                let ended = self.step(rest[0]);
                at += 1;
                if ended {
                    #[cfg(test)]
                    self.ends
                        .push((self.fields, self.record_bytes, self.newlines));
                    match self.skipping.take() {
                        Some(fault) => {
                            self.ready.push(b'"');
                            self.ready.extend_from_slice(FAULT_MARK.as_bytes());
                            self.ready.extend_from_slice(fault.as_bytes());
                            self.marks.push_back((self.ready.len(), self.newlines));
                            self.ready.extend_from_slice(b"\"\n");
                        }
                        None => {
                            self.ready.append(&mut self.held);
                            self.ready.extend_from_slice(&bytes[record_start..at]);
                        }
                    }
                    record_start = at;
                    self.state = CsvState::StartField;
                    self.near_limit = false;
                    self.record_bytes = 0;
                    self.fields = 1;
                    self.newlines = 0;
                    continue;
                }
            }
            if self.skipping.is_none() {
                let fault = if self.record_bytes > MAX_RECORD_BYTES {
                    Some(TOO_LONG)
                } else if self.fields > MAX_FIELDS {
                    Some(TOO_MANY_FIELDS)
                } else {
                    None
                };
                if fault.is_some() {
                    self.skipping = fault;
                    self.held = Vec::new();
                }
            }
        }
        if self.skipping.is_none() {
            self.held.extend_from_slice(&bytes[record_start..]);
        }
    }
}

impl<R: Read> RecordLimit<R> {
    /// Whole records read ahead, to be parsed where they lie (at the end of
    /// the text, also what is left of a record whose quote never closed);
    /// empty at the end. `consume` says how much was used.
    fn fill(&mut self) -> io::Result<&[u8]> {
        while self.ready_at == self.ready.len() {
            self.ready.clear();
            self.ready_at = 0;
            // Every mark was read with its record; none can point into the
            // next text.
            self.marks.clear();
            // Records near the 1 MB limit can leave the buffer large: not kept.
            if self.ready.capacity() > 4 * READ_CHUNK {
                self.ready.shrink_to(READ_CHUNK);
            }
            if self.eof {
                if self.skipping.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "this record runs to the end of the file and is longer than 1 MB: a \
                         double quote opens a value that is never closed; remove the stray quote \
                         or close the value (a quote inside a quoted value is written twice: \
                         \"\")",
                    ));
                }
                // An open quote at the end: the parser reads it and names it.
                if self.held.is_empty() {
                    break;
                }
                self.ready.append(&mut self.held);
                continue;
            }
            let mut chunk = std::mem::take(&mut self.chunk);
            let read = self.inner.read(&mut chunk);
            let read = match read {
                Ok(read) => read,
                Err(error) => {
                    self.chunk = chunk;
                    return Err(error);
                }
            };
            if read == 0 {
                self.eof = true;
            } else {
                self.follow(&chunk[..read]);
            }
            self.chunk = chunk;
        }
        Ok(&self.ready[self.ready_at..])
    }

    fn consume(&mut self, used: usize) {
        self.ready_at = (self.ready_at + used).min(self.ready.len());
    }

    /// The line breaks of the mark whose closing quote is `at` bytes into
    /// what `fill` gave, taken off the list; 0 when no mark is there.
    fn take_mark_breaks(&mut self, at: usize) -> u64 {
        let at = self.ready_at + at;
        while self.marks.front().is_some_and(|&(mark_at, _)| mark_at < at) {
            self.marks.pop_front();
        }
        match self.marks.front() {
            Some(&(mark_at, breaks)) if mark_at == at => {
                self.marks.pop_front();
                breaks
            }
            _ => 0,
        }
    }
}

// What the tests read the limited text through: a mark's line breaks are
// given as bytes, where they belong.
#[cfg(test)]
impl<R: Read> Read for RecordLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = buf.len().min(self.fill()?.len());
        while let Some(mark) = self.marks.front_mut() {
            if mark.0 > self.ready_at {
                n = n.min(mark.0 - self.ready_at);
                break;
            }
            if mark.1 > 0 {
                let given = buf.len().min(mark.1 as usize);
                buf[..given].fill(b'\n');
                mark.1 -= given as u64;
                return Ok(given);
            }
            self.marks.pop_front();
        }
        buf[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
        self.consume(n);
        Ok(n)
    }
}

/// Turns `\r\n` and lone `\r` (old Mac exports) into `\n` and makes sure the
/// text ends with `\n`, so that every record is terminated the same way.
/// Drops a UTF-8 BOM at the text's start, as `csv_core` does (the file's
/// own BOM is skipped before; this is a second one): dropped here, before
/// `RecordLimit` follows the grammar, so that a quote after it opens a
/// quoted value for the limiter as for the parser.
struct LineEndings<R> {
    inner: R,
    after_cr: bool,
    last_byte: Option<u8>,
    done: bool,
    /// The text's first bytes, read to see whether they are a BOM.
    head: Vec<u8>,
    started: bool,
}

impl<R: Read> LineEndings<R> {
    fn new(inner: R) -> Self {
        LineEndings {
            inner,
            after_cr: false,
            last_byte: None,
            done: false,
            head: Vec::new(),
            started: false,
        }
    }

    /// Reads the text's first three bytes into `head` (kept there if a
    /// read fails, for the next call) and drops them if they are a BOM.
    fn read_head(&mut self) -> io::Result<()> {
        let mut bytes = [0u8; 3];
        while self.head.len() < UTF8_BOM.len() {
            let wanted = UTF8_BOM.len() - self.head.len();
            match self.inner.read(&mut bytes[..wanted])? {
                0 => break,
                read => self.head.extend_from_slice(&bytes[..read]),
            }
        }
        if self.head == UTF8_BOM {
            self.head.clear();
        }
        self.started = true;
        Ok(())
    }
}

impl<R: Read> Read for LineEndings<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            self.read_head()?;
        }
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let read = if self.head.is_empty() {
                self.inner.read(buf)?
            } else {
                let given = buf.len().min(self.head.len());
                buf[..given].copy_from_slice(&self.head[..given]);
                self.head.drain(..given);
                given
            };
            if read == 0 {
                self.done = true;
                if self.last_byte.is_some_and(|b| b != b'\n') {
                    buf[0] = b'\n';
                    return Ok(1);
                }
                return Ok(0);
            }
            let chunk = &mut buf[..read];
            if !self.after_cr && !chunk.contains(&b'\r') {
                self.last_byte = Some(chunk[read - 1]);
                return Ok(read);
            }
            let mut kept = 0;
            for index in 0..read {
                let byte = chunk[index];
                let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
                if byte == b'\n' && after_cr {
                    continue;
                }
                chunk[kept] = if byte == b'\r' { b'\n' } else { byte };
                kept += 1;
            }
            if kept > 0 {
                self.last_byte = Some(chunk[kept - 1]);
                return Ok(kept);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile lines: past the field or byte limit, counting runs at once
    /// marks the same records as following every field.
    #[test]
    fn runs_mark_the_limits_where_field_by_field_does() {
        let wide = format!("a,b\n{}\nc,d\n", "x,".repeat(MAX_FIELDS as usize + 5));
        let long = format!("a\n{}\nb\n", "y".repeat(MAX_RECORD_BYTES as usize + 10));
        let both = format!("{}\"q\n\"\nz\n", "zz,".repeat(400_000));
        for input in [wide, long, both] {
            let follow = |field_by_field: bool| {
                let mut limit = RecordLimit::new(input.as_bytes());
                limit.field_by_field = field_by_field;
                let mut out = Vec::new();
                let read = limit.read_to_end(&mut out).map_err(|e| e.to_string());
                (read, out, limit.ends)
            };
            let (fast, exact) = (follow(false), follow(true));
            assert!(
                String::from_utf8_lossy(&fast.1).contains(FAULT_MARK),
                "a limit was passed"
            );
            assert!(fast == exact);
        }
    }

    proptest::proptest! {
        /// Counting a run of unquoted fields at once cuts the same
        /// records, with the same marks, as following every field.
        #[test]
        fn runs_are_cut_as_field_by_field(
            input in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', b',', b'"', b'\n', b' ']),
                0..400,
            ),
            chunk in 1usize..64,
        ) {
            let follow = |field_by_field: bool| {
                let mut limit = RecordLimit::new(&input[..]);
                limit.field_by_field = field_by_field;
                limit.chunk = vec![0; chunk];
                let mut out = Vec::new();
                let read = limit.read_to_end(&mut out).map_err(|e| e.to_string());
                (read, out, limit.ends, limit.state, limit.fields, limit.record_bytes)
            };
            proptest::prop_assert_eq!(follow(false), follow(true));
        }
    }

    fn normalise(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        LineEndings::new(Chunked(input, chunk))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_record_past_a_limit_becomes_a_mark_and_the_records_after_it_stay() {
        let read_all = |input: Vec<u8>| {
            let mut out = Vec::new();
            let result = RecordLimit::new(input.as_slice()).read_to_end(&mut out);
            (result.map_err(|e| e.to_string()), out)
        };
        // Many short lines inside quotes are one record: replaced whole,
        // with as many line breaks, and the next record kept.
        let mut quoted = b"h\na,\"".to_vec();
        quoted.extend(b"x\n".repeat(600_000));
        quoted.extend(b"\"\nb,c\n");
        let (result, out) = read_all(quoted);
        result.unwrap();
        let mark = format!("\"{FAULT_MARK}{TOO_LONG}{}\"\n", "\n".repeat(600_000));
        assert_eq!(out, [b"h\n".as_slice(), mark.as_bytes(), b"b,c\n"].concat());
        // Quotes doubled and quotes inside unquoted values are as the csv
        // crate reads them: nothing is held back or cut.
        let mut lines = b"a,\"x\"\"y\",z\n".repeat(200_000);
        lines.extend(b"5\" screen,b\n".repeat(100_000));
        let (result, out) = read_all(lines.clone());
        result.unwrap();
        assert_eq!(out, lines);
        // A long line among others; then too many fields.
        let mut long = b"h\nrow\n".to_vec();
        long.extend(vec![b'A'; 2 << 20]);
        long.extend(b"\nlast\n");
        long.extend(vec![b','; 20_000]);
        long.push(b'\n');
        let (result, out) = read_all(long);
        result.unwrap();
        let expected = format!(
            "h\nrow\n\"{FAULT_MARK}{TOO_LONG}\"\nlast\n\"{FAULT_MARK}{TOO_MANY_FIELDS}\"\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // A quote that never closes, past the limit: an error, after the
        // records before it.
        let mut open = b"h\nrow\n\"".to_vec();
        open.extend(b"x\n".repeat(700_000));
        let (result, out) = read_all(open);
        assert!(result.unwrap_err().contains("never closed"));
        assert_eq!(out, b"h\nrow\n");
    }

    #[test]
    fn a_bom_at_the_start_is_dropped_however_it_arrives() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(normalise(b"\xEF\xBB\xBFa\r\nb", chunk), b"a\nb\n");
            // Only at the start, and only whole.
            assert_eq!(
                normalise(b"\xEF\xBBx\n\xEF\xBB\xBF\n", chunk),
                b"\xEF\xBBx\n\xEF\xBB\xBF\n"
            );
            assert_eq!(normalise(b"\xEF\xBB", chunk), b"\xEF\xBB\n");
            assert_eq!(normalise(b"\xEF\xBB\xBF", chunk), b"");
        }
    }

    #[test]
    fn line_endings_become_newlines_across_chunk_boundaries() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(
                normalise(b"a\r\nb\rc\n\r\nd", chunk),
                b"a\nb\nc\n\nd\n",
                "chunk {chunk}"
            );
        }
        assert_eq!(normalise(b"", 4), b"");
        assert_eq!(normalise(b"x\n", 4), b"x\n");
    }
}

/// The reader against `csv_core` (the `csv` crate's parser) reading the
/// limited text in one piece, with every line counted from its start.
#[cfg(test)]
mod split_tests {
    use super::*;
    use crate::input::Cells;

    /// What a reading gives: each record's start line and fields, the blank
    /// lines before records, and the error that ends it (its line, and its
    /// kind or the field it names).
    type Reading = (Vec<(u64, Vec<Vec<u8>>)>, u64, Option<(u64, String)>);

    fn newlines(bytes: &[u8]) -> u64 {
        bytes.iter().filter(|&&byte| byte == b'\n').count() as u64
    }

    /// `csv_core` over the text made regular, limited by `RecordLimit` or,
    /// for inputs far below its limits, not: then the limiter's grammar is
    /// checked against `csv_core`'s as well.
    fn reference(input: &[u8], limited: bool) -> Reading {
        use csv_core::ReadRecordResult::{End, InputEmpty, Record};
        let mut text = Vec::new();
        let limit_error = if limited {
            RecordLimit::new(LineEndings::new(input))
                .read_to_end(&mut text)
                .err()
        } else {
            LineEndings::new(input).read_to_end(&mut text).unwrap();
            None
        };
        // As the `csv` crate read the text before; its BOM is now dropped by
        // `LineEndings`, where `csv_core` used to drop it.
        let mut reader = csv_core::Reader::new();
        reader.read_record(b"\n", &mut [0; 1], &mut [0; 1]);
        let mut output = vec![0; text.len() + 1];
        let mut ends = vec![0; text.len() + 2];
        let (mut records, mut skipped, mut at) = (Vec::new(), 0, 0);
        loop {
            let blank = text[at..].iter().take_while(|&&byte| byte == b'\n').count();
            let line = 1 + newlines(&text[..at + blank]);
            let (result, read, mut written, mut ended) =
                reader.read_record(&text[at..], &mut output, &mut ends);
            at += read;
            let ran_out = matches!(result, InputEmpty);
            let result = match result {
                InputEmpty => {
                    let (result, _, more, more_ends) =
                        reader.read_record(&[], &mut output[written..], &mut ends[ended..]);
                    written += more;
                    ended += more_ends;
                    result
                }
                other => other,
            };
            if matches!(result, Record) {
                skipped += blank as u64;
            }
            match result {
                End => break,
                Record if ran_out => return (records, skipped, Some((line, "unclosed".into()))),
                Record => {
                    let mut fields: Vec<Vec<u8>> = (0..ended)
                        .map(|field| {
                            let start = field.checked_sub(1).map_or(0, |before| ends[before]);
                            output[start..ends[field]].to_vec()
                        })
                        .collect();
                    // A fault mark's line breaks are counted, not kept.
                    if let [only] = &mut fields[..]
                        && let Some(fault) = [TOO_LONG, TOO_MANY_FIELDS].into_iter().find(|fault| {
                            only.starts_with(format!("{FAULT_MARK}{fault}").as_bytes())
                        })
                        && only[FAULT_MARK.len() + fault.len()..]
                            .iter()
                            .all(|&b| b == b'\n')
                    {
                        only.truncate(FAULT_MARK.len() + fault.len());
                    }
                    debug_assert!(ends[ended - 1] == written);
                    if let Some(bad) = fields.iter().position(|f| std::str::from_utf8(f).is_err()) {
                        let error = (line, format!("field {}", bad + 1));
                        return (records, skipped, Some(error));
                    }
                    records.push((line, fields));
                }
                other => panic!("{other:?} with room for the whole text"),
            }
        }
        let error = limit_error.map(|_| (1 + newlines(&text), "limit".to_owned()));
        (records, skipped, error)
    }

    /// Reads `input` through `CsvSource`, `chunk` bytes at a time, taking
    /// every third record through `next_row` and the others into a batch.
    fn read(input: &[u8], chunk: usize) -> Reading {
        let mut source = CsvSource::new(Box::new(io::Cursor::new(input.to_vec())));
        source.records.chunk = vec![0; chunk];
        let path = Path::new("in.csv");
        let (mut records, mut skipped) = (Vec::new(), 0);
        let mut batch = RowBatch::default();
        let fields = |row: RowRef<'_>| -> (u64, Vec<Vec<u8>>) {
            let Cells::Fields(fields) = row.cells else {
                panic!("a CSV record is read as fields")
            };
            let texts = (0..fields.len())
                .map(|field| fields.get(field).unwrap().as_bytes().to_vec())
                .collect();
            (row.line, texts)
        };
        loop {
            let read = if records.len() % 3 == 0 {
                source.next_row(path).map(|row| row.map(&fields))
            } else {
                batch.clear();
                source
                    .next_into(path, &mut batch)
                    .map(|more| more.then(|| fields(batch.row(0))))
            };
            skipped += source.take_skipped_lines();
            match read {
                Ok(Some(record)) => records.push(record),
                Ok(None) => return (records, skipped, None),
                Err(InputError::AtLine { line, message, .. }) => {
                    let kind = if message.contains("longer than 1 MB") {
                        "limit".to_owned()
                    } else if message.contains("never closed") {
                        "unclosed".to_owned()
                    } else {
                        message.split(" has bytes").next().unwrap().to_owned()
                    };
                    return (records, skipped, Some((line, kind)));
                }
                Err(other) => panic!("{other}"),
            }
        }
    }

    proptest::proptest! {
        /// Records, fields, lines, skipped blank lines and errors are what
        /// `csv_core` reads, however the text arrives.
        #[test]
        fn records_are_read_as_csv_core_reads_them(
            input in proptest::collection::vec(
                proptest::sample::select(vec![
                    b'a', b',', b'"', b'\n', b'\r', b' ', 0xE4, 0xB8, 0xAD, 0xEF, 0xBB, 0xBF,
                ]),
                0..300,
            ),
            chunk in 1usize..64,
            bom in proptest::bool::ANY,
        ) {
            let input = [if bom { UTF8_BOM } else { b"" }, &input].concat();
            proptest::prop_assert_eq!(read(&input, chunk), reference(&input, false));
        }
    }

    #[test]
    fn a_mark_keeps_its_line_breaks_as_a_count_not_as_bytes() {
        let breaks = 3 << 20;
        let mut input = b"h\n\"".to_vec();
        input.extend(vec![b'\n'; breaks]);
        input.extend(b"\"\nnext\n");
        let mut source = CsvSource::new(Box::new(io::Cursor::new(input)));
        let (path, mut batch) = (Path::new("in.csv"), RowBatch::default());
        for _ in 0..3 {
            assert!(source.next_into(path, &mut batch).unwrap());
        }
        assert_eq!(batch.row(1).fault(), Some(crate::input::RowFault::TooLong));
        assert_eq!(
            (batch.row(1).line, batch.row(2).line),
            (2, 3 + breaks as u64)
        );
        // Nothing held the three million line breaks.
        assert!(source.records.ready.capacity() <= 2 * READ_CHUNK);
        assert!(batch.weight() < 1024);
    }

    #[test]
    fn hostile_and_odd_records_are_read_as_csv_core_reads_them() {
        let mut past_limits = b"h\n\n\"a\nb\",\"c\"\"d\"\n".to_vec();
        past_limits.extend(b"x,".repeat(MAX_FIELDS as usize + 2));
        past_limits.extend(b"\n\n\"");
        past_limits.extend(b"y\n".repeat(MAX_RECORD_BYTES as usize / 2 + 1));
        past_limits.extend(b"\"\nlast,row\n\n");
        // A BOM (a second one, the file's own being skipped on opening)
        // before a quote that opens a value past the limit.
        let mut bom_then_quote = [UTF8_BOM, b"\"a\n"].concat();
        bom_then_quote.extend(b"y\n".repeat(600_000));
        bom_then_quote.extend(b"\"\ntail\n");
        let mut unclosed_past_limit = b"h\nok\n\n\"".to_vec();
        unclosed_past_limit.extend(vec![b'z'; MAX_RECORD_BYTES as usize + 1]);
        let inputs: [&[u8]; 10] = [
            &past_limits,
            &bom_then_quote,
            &unclosed_past_limit,
            // Two BOMs: the first is the text's, the second a character.
            b"\xEF\xBB\xBF\xEF\xBB\xBF\"q\",r\n",
            b"\xEF\xBB\xBF\n\na,b\n",
            // A quote that never closes, after blank lines.
            b"h\n\n\n\"open,x\ny\n",
            b"h\r\n\"a\r\nb\",c\r\n\r\nd\r",
            b"5\" screen,\"x\"y,z\n",
            "名,值\n张三,\"你,好\"\n".as_bytes(),
            b"ok,\xE4,\xBD\xA0\n",
        ];
        for input in inputs {
            let expected = reference(input, true);
            for chunk in [1, 7, 1 << 16] {
                assert_eq!(read(input, chunk), expected, "chunk {chunk}");
            }
        }
        // The quote that never closes is named at its own line.
        assert_eq!(
            read(b"h\n\n\n\"open,x\ny\n", 5).2,
            Some((4, "unclosed".to_owned()))
        );
        assert_eq!(read(&past_limits, 64).1, 2);
        assert_eq!(
            read(&bom_then_quote, 64).0[1].0,
            600_003,
            "the row after the mark"
        );
    }
}
