//! CSV rows through the `csv` crate, one reused record at a time. The
//! `csv` crate skips blank lines and numbers lines loosely around them, so
//! line endings are first normalised to `\n` and every record's real start
//! line is derived from where it ends and the newlines inside its fields;
//! the gaps between records are the skipped blank lines. A record is
//! capped in bytes and fields while it streams (`RecordLimit`), since the
//! `csv` crate grows its record to whatever a line holds.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::EncodingChoice;
use super::decode::{EncodingRefusal, Gb18030Reader, TextEncoding, Utf8Scan, choose_encoding};
use super::{Cells, InputError, RowBatch, RowRef};

pub(super) struct CsvSource {
    reader: csv::Reader<RecordLimit<LineEndings<Box<dyn Read + Send>>>>,
    bytes: csv::ByteRecord,
    record: Option<csv::StringRecord>,
    line: u64,
    /// The line after the previous record: where a next record would start.
    next_line: u64,
    skipped_lines: u64,
    /// Bytes and fields of the last record, to size the next buffer.
    last_size: (usize, usize),
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
        let mut file = BufReader::with_capacity(256 * 1024, File::open(path).map_err(io_error)?);
        io::copy(&mut (&mut file).take(bom_len as u64), &mut io::sink()).map_err(io_error)?;
        let text: Box<dyn Read + Send> = match encoding {
            TextEncoding::Utf8 => Box::new(file),
            TextEncoding::Gb18030 => Box::new(Gb18030Reader::new(file)),
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(RecordLimit::new(LineEndings::new(text)));
        let source = CsvSource {
            reader,
            bytes: csv::ByteRecord::new(),
            record: None,
            line: 0,
            next_line: 1,
            skipped_lines: 0,
            last_size: (256, 32),
        };
        Ok((source, encoding))
    }

    pub(super) fn next_row(&mut self, path: &Path) -> Result<Option<RowRef<'_>>, InputError> {
        if !self.next_record(path)? {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.bytes);
        match csv::StringRecord::from_byte_record(bytes) {
            Ok(record) => self.record = Some(record),
            Err(error) => return Err(self.not_utf8(path, error.utf8_error().field())),
        }
        Ok(self.current())
    }

    /// Reads the next record onto the end of `batch`, without keeping it
    /// here; `false` at the end of the input.
    pub(super) fn next_into(
        &mut self,
        path: &Path,
        batch: &mut RowBatch,
    ) -> Result<bool, InputError> {
        if !self.next_record(path)? {
            return Ok(false);
        }
        batch
            .push_record(self.line, &self.bytes)
            .map_err(|field| self.not_utf8(path, field))?;
        Ok(true)
    }

    fn not_utf8(&self, path: &Path, field: usize) -> InputError {
        InputError::AtLine {
            path: path.to_owned(),
            line: self.line,
            message: format!(
                "field {} has bytes that are not valid UTF-8; check the file's encoding \
                 ([input] encoding) or re-export it as CSV UTF-8",
                field + 1
            ),
        }
    }

    /// Reads the next record's bytes into `bytes` and numbers its line;
    /// `false` at the end of the input.
    fn next_record(&mut self, path: &Path) -> Result<bool, InputError> {
        if let Some(previous) = self.record.take() {
            self.bytes = previous.into_byte_record();
        } else if self.bytes.as_slice().is_empty() && self.bytes.is_empty() {
            // The last record was handed over: start the next one at the
            // size of that one instead of growing it byte by byte.
            self.bytes = csv::ByteRecord::with_capacity(self.last_size.0, self.last_size.1);
        }
        let more = self
            .reader
            .read_byte_record(&mut self.bytes)
            .map_err(|error| {
                let message = match error.into_kind() {
                    csv::ErrorKind::Io(io) => io.to_string(),
                    other => format!("{other:?}"),
                };
                // The records before have been read, so the trouble is at or
                // after the line following them.
                InputError::AtLine {
                    path: path.to_owned(),
                    line: self.next_line,
                    message,
                }
            })?;
        if !more {
            return Ok(false);
        }
        // The fields' bytes lie end to end: one pass over them all.
        let inner_newlines = memchr::memchr_iter(b'\n', self.bytes.as_slice()).count() as u64;
        let after = self.reader.position().line();
        // A record normally ends with the newline after its last line, so it
        // started `inner_newlines` lines before that. One that started
        // earlier than that ran into the end of the file inside a
        // quoted value: a stray quote made the rest of the file one value.
        let start = (after - 1)
            .checked_sub(inner_newlines)
            .filter(|&start| start >= self.next_line);
        let Some(start) = start else {
            return Err(InputError::AtLine {
                path: path.to_owned(),
                line: after.saturating_sub(inner_newlines).max(self.next_line),
                message: "a double quote opens a quoted value that is never closed, so \
                          everything from here to the end of the file would be one value; \
                          remove the stray quote or close the value with a matching quote \
                          (a quote inside a quoted value is written twice: \"\")"
                    .to_owned(),
            });
        };
        self.line = start;
        self.skipped_lines += self.line - self.next_line;
        self.next_line = after;
        self.last_size = (self.bytes.as_slice().len() + 64, self.bytes.len() + 4);
        Ok(true)
    }

    pub(super) fn current(&self) -> Option<RowRef<'_>> {
        self.record.as_ref().map(|record| RowRef {
            line: self.line,
            cells: Cells::Csv(record),
        })
    }

    pub(super) fn take_current(&mut self) -> Option<(u64, csv::StringRecord)> {
        self.record.take().map(|record| (self.line, record))
    }

    pub(super) fn take_skipped_lines(&mut self) -> u64 {
        std::mem::take(&mut self.skipped_lines)
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
/// starts with this and holds as many line breaks as the record did, so
/// that the lines after it keep their numbers. `RowRef::fault` reads it.
pub(super) const FAULT_MARK: &str = "\u{1}declare-batch:";
pub(super) const TOO_LONG: &str = "record-too-long";
pub(super) const TOO_MANY_FIELDS: &str = "too-many-fields";

/// Follows the CSV grammar over the text the `csv` crate reads. A record
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
            skipping: None,
            near_limit: false,
            field_by_field: false,
            #[cfg(test)]
            ends: Vec::new(),
            chunk: vec![0; 1 << 16],
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
        let commas = rest[..run].iter().filter(|&&b| b == b',').count() as u64;
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
                            self.ready
                                .extend(std::iter::repeat_n(b'\n', self.newlines as usize));
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

impl<R: Read> Read for RecordLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.ready_at < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.ready_at);
                buf[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
                self.ready_at += n;
                if self.ready_at == self.ready.len() {
                    self.ready.clear();
                    self.ready_at = 0;
                }
                return Ok(n);
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
                // An open quote at the end: the csv crate reads it and the
                // caller names it.
                if self.held.is_empty() {
                    return Ok(0);
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
    }
}

/// Turns `\r\n` and lone `\r` (old Mac exports) into `\n` and makes sure the
/// text ends with `\n`, so that every record is terminated the same way.
struct LineEndings<R> {
    inner: R,
    after_cr: bool,
    last_byte: Option<u8>,
    done: bool,
}

impl<R: Read> LineEndings<R> {
    fn new(inner: R) -> Self {
        LineEndings {
            inner,
            after_cr: false,
            last_byte: None,
            done: false,
        }
    }
}

impl<R: Read> Read for LineEndings<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let read = self.inner.read(buf)?;
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
