//! One way to read every input: [`RowSource`] opens a `.csv` or `.xlsx`
//! export, finds its header row, and streams data rows with the row numbers
//! a person sees (CSV: the line a record starts on; XLSX: the sheet's row),
//! skipping and counting blank rows. Nothing holds more than a few batches
//! of rows ([`RowBatch`]).

mod cell;
mod csv_source;
mod decode;
mod edits;
mod header;
mod merges;
mod xlsx_source;
mod xml_guard;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use cell::{Cell, CellDamage, CellView, a1_reference, decimal_15, trimmed};
pub use decode::{TextEncoding, UTF8_BOM};
pub use edits::{CellEdits, EditRefused, MAX_EDIT_CHARS, MAX_EDITED_CELLS};
pub use header::{HEADER_SEARCH_ROWS, HeaderSearch};

/// How CSV bytes are decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum EncodingChoice {
    /// A BOM, else UTF-8 when the file is valid UTF-8, else GB18030.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    #[serde(rename = "gb18030", alias = "GB18030", alias = "gbk", alias = "GBK")]
    Gb18030,
}

/// A fatal problem with the input file as a whole.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    /// No row holds the headers the settings look for: the columns need
    /// mapping (or the header row naming).
    #[error("{path}: {message}")]
    NoHeaderRow { path: PathBuf, message: String },
    #[error("{path}, line {line}: {message}")]
    AtLine {
        path: PathBuf,
        line: u64,
        message: String,
    },
}

/// The file formats the tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    Xlsx,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Csv => "csv",
            InputFormat::Xlsx => "xlsx",
        }
    }
}

/// How to open an input.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    pub encoding: EncodingChoice,
    /// XLSX sheet; when empty, the first sheet whose header row is found.
    pub sheet: String,
    /// What makes a row the header row.
    pub header: HeaderSearch,
    /// Cells corrected on the page, read in place of the file's.
    pub edits: Option<std::sync::Arc<CellEdits>>,
}

/// A limit a CSV row passed (see `RowRef::fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFault {
    /// Longer than 1 MB.
    TooLong,
    /// More than 16,384 fields.
    TooManyFields,
}

/// One data row, borrowed from the source until the next row is read, or
/// from the [`RowBatch`] that holds it.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// The row number a person sees.
    pub line: u64,
    cells: Cells<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Cells<'a> {
    Csv(&'a csv::StringRecord),
    /// A CSV record in a [`RowBatch`].
    Fields(Fields<'a>),
    Xlsx(&'a [Cell]),
}

/// A CSV record's fields: their text, a comma after each but the last,
/// and where each ends.
#[derive(Debug, Clone, Copy)]
struct Fields<'a> {
    text: &'a str,
    ends: &'a [u32],
}

impl<'a> Fields<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    #[inline]
    fn get(&self, field: usize) -> Option<&'a str> {
        let end = *self.ends.get(field)? as usize;
        // One separator byte (a comma) follows every field but the last.
        let start = match field {
            0 => 0,
            _ => self.ends[field - 1] as usize + 1,
        };
        // Every end is a character boundary (`RowBatch::push_line` and
        // `push_record` check the record's UTF-8 with its commas).
        self.text.get(start..end)
    }
}

impl<'a> RowRef<'a> {
    /// A row over a CSV record, for unit tests of row consumers.
    #[cfg(test)]
    pub(crate) fn from_record(line: u64, record: &'a csv::StringRecord) -> RowRef<'a> {
        RowRef {
            line,
            cells: Cells::Csv(record),
        }
    }

    /// The limit a row passed, when the reader could not hold it (its
    /// cells are then none: the row is only its line and its fault).
    // Inlined: every cell read asks it first.
    #[inline(always)]
    pub fn fault(&self) -> Option<RowFault> {
        let only = match self.cells {
            Cells::Csv(record) if record.len() == 1 => record.get(0),
            Cells::Fields(fields) if fields.len() == 1 => fields.get(0),
            _ => None,
        };
        let rest = only?.strip_prefix(csv_source::FAULT_MARK)?;
        if rest.starts_with(csv_source::TOO_LONG) {
            Some(RowFault::TooLong)
        } else if rest.starts_with(csv_source::TOO_MANY_FIELDS) {
            Some(RowFault::TooManyFields)
        } else {
            None
        }
    }

    /// Number of cells the row has (CSV: fields on the line).
    #[inline]
    pub fn len(&self) -> usize {
        match self.cells {
            Cells::Csv(_) | Cells::Fields(_) if self.fault().is_some() => 0,
            Cells::Csv(record) => record.len(),
            Cells::Fields(fields) => fields.len(),
            Cells::Xlsx(cells) => cells.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cell in `column` (0-based); empty past the end of the row.
    // Inlined: a cell handed back through memory stalled every read of it.
    #[inline(always)]
    pub fn cell(&self, column: usize) -> CellView<'a> {
        match self.cells {
            Cells::Csv(_) | Cells::Fields(_) if self.fault().is_some() => CellView::Empty,
            Cells::Csv(record) => record.get(column).map_or(CellView::Empty, CellView::Text),
            Cells::Fields(fields) => fields.get(column).map_or(CellView::Empty, CellView::Text),
            Cells::Xlsx(cells) => cells.get(column).map_or(CellView::Empty, Cell::view),
        }
    }

    /// Every cell in order.
    pub fn cells(&self) -> impl Iterator<Item = CellView<'a>> + '_ {
        (0..self.len()).map(|column| self.cell(column))
    }

    /// The row with its cells copied, to keep past its batch.
    pub fn to_owned_row(&self) -> OwnedRow {
        let cells = match self.cells {
            Cells::Csv(record) => OwnedCells::Csv(record.clone()),
            Cells::Fields(fields) => OwnedCells::Csv(
                (0..fields.len())
                    .map(|field| fields.get(field).unwrap_or_default())
                    .collect(),
            ),
            Cells::Xlsx(cells) => OwnedCells::Xlsx(cells.to_vec()),
        };
        OwnedRow {
            line: self.line,
            cells,
        }
    }

    /// Roughly the bytes the row takes in a CSV file.
    pub fn text_len(&self) -> usize {
        match self.cells {
            Cells::Csv(record) => record.as_slice().len() + record.len(),
            Cells::Fields(fields) => fields.text.len() + 1,
            Cells::Xlsx(_) => 0,
        }
    }

    fn is_blank(&self) -> bool {
        self.fault().is_none() && self.cells().all(|cell| cell.is_blank())
    }

    /// The cells as header texts: as given, trimmed, a BOM removed.
    pub fn header_texts(&self) -> Vec<String> {
        self.cells()
            .map(|cell| {
                let text = cell.original_text();
                text.trim_start_matches('\u{feff}').trim().to_owned()
            })
            .collect()
    }
}

/// SHA-256 of a file's bytes.
pub fn sha256_of(path: &Path) -> std::io::Result<[u8; 32]> {
    decode::sha256(File::open(path)?)
}

/// The names of a workbook's sheets, in order, once its parts pass the
/// checks of `xml_guard` (calamine reads the shared strings to list them).
pub fn xlsx_sheet_names(path: &Path) -> Result<Vec<String>, InputError> {
    xlsx_source::sheet_names(path)
}

/// A data row that owns its cells, to hand to another thread.
#[derive(Debug, Clone)]
pub struct OwnedRow {
    /// The row number a person sees.
    pub line: u64,
    cells: OwnedCells,
}

#[derive(Debug, Clone)]
enum OwnedCells {
    Csv(csv::StringRecord),
    Xlsx(Vec<Cell>),
}

impl OwnedRow {
    /// A row of text cells, as a CSV line gives them.
    pub fn from_texts(line: u64, texts: &[&str]) -> OwnedRow {
        OwnedRow {
            line,
            cells: OwnedCells::Csv(csv::StringRecord::from(texts.to_vec())),
        }
    }

    /// Roughly the bytes the row holds in memory.
    pub fn weight(&self) -> usize {
        match &self.cells {
            OwnedCells::Csv(record) => record.as_slice().len() + record.len() * 8,
            OwnedCells::Xlsx(cells) => cells.iter().map(Cell::weight).sum(),
        }
    }

    pub fn as_row(&self) -> RowRef<'_> {
        RowRef {
            line: self.line,
            cells: match &self.cells {
                OwnedCells::Csv(record) => Cells::Csv(record),
                OwnedCells::Xlsx(cells) => Cells::Xlsx(cells),
            },
        }
    }
}

/// Rows read together, to hand to another thread at once: the text of
/// every CSV record end to end in one buffer, so that reading a row
/// allocates nothing, and a batch is reused once its rows are done with.
#[derive(Debug, Default)]
pub struct RowBatch {
    text: String,
    /// Each CSV field's end in `text`, from its record's start.
    ends: Vec<u32>,
    rows: Vec<BatchRow>,
    /// What the owned rows weigh.
    owned_weight: usize,
    /// A quoted record's fields, joined before they are added.
    joined: Vec<u8>,
}

#[derive(Debug)]
enum BatchRow {
    Csv {
        line: u64,
        /// Where the record's text starts, and its first field's end.
        text_at: usize,
        ends_at: usize,
    },
    /// A row that is not a plain CSV record (a sheet's, a corrected one).
    Owned(OwnedRow),
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.rows.clear();
        self.owned_weight = 0;
    }

    /// Roughly the bytes the rows hold in memory.
    pub fn weight(&self) -> usize {
        self.text.len()
            + self.ends.len() * std::mem::size_of::<u32>()
            + self.rows.len() * std::mem::size_of::<BatchRow>()
            + self.owned_weight
    }

    /// Roughly the bytes the batch holds, its owned rows included, were
    /// it kept for reuse.
    pub fn capacity(&self) -> usize {
        self.text.capacity()
            + self.ends.capacity() * std::mem::size_of::<u32>()
            + self.rows.capacity() * std::mem::size_of::<BatchRow>()
            + self.joined.capacity()
            + self.owned_weight
    }

    pub fn row(&self, at: usize) -> RowRef<'_> {
        let (text_at, ends_at, line) = match &self.rows[at] {
            BatchRow::Owned(row) => return row.as_row(),
            BatchRow::Csv {
                line,
                text_at,
                ends_at,
            } => (*text_at, *ends_at, *line),
        };
        let (text_end, ends_end) = self.csv_ends_after(at);
        RowRef {
            line,
            cells: Cells::Fields(Fields {
                text: &self.text[text_at..text_end],
                ends: &self.ends[ends_at..ends_end],
            }),
        }
    }

    /// Where the text and field ends of the CSV row at `at` stop: where
    /// the next CSV row starts (owned rows take no text), or the end.
    fn csv_ends_after(&self, at: usize) -> (usize, usize) {
        self.rows[at + 1..]
            .iter()
            .find_map(|row| match row {
                BatchRow::Csv {
                    text_at, ends_at, ..
                } => Some((*text_at, *ends_at)),
                BatchRow::Owned(_) => None,
            })
            .unwrap_or((self.text.len(), self.ends.len()))
    }

    pub fn rows(&self) -> impl Iterator<Item = RowRef<'_>> {
        (0..self.rows.len()).map(|at| self.row(at))
    }

    pub(crate) fn push_owned(&mut self, row: OwnedRow) {
        self.owned_weight += row.weight();
        self.rows.push(BatchRow::Owned(row));
    }

    /// Adds a CSV record of `fields`; the field (0-based) whose bytes are
    /// not UTF-8 when one is not.
    fn push_record<'f>(
        &mut self,
        line: u64,
        fields: impl IntoIterator<Item = &'f [u8]>,
    ) -> Result<(), usize> {
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        let ends_at = self.ends.len();
        for (field, bytes) in fields.into_iter().enumerate() {
            if field > 0 {
                joined.push(b',');
            }
            joined.extend_from_slice(bytes);
            self.ends.push(end_at(joined.len()));
        }
        let pushed = match simdutf8::basic::from_utf8(&joined) {
            Ok(text) => {
                self.push_text(line, text, ends_at);
                Ok(())
            }
            // The separators are ASCII: a field that ends inside a
            // character makes the whole invalid.
            Err(_) => {
                let mut start = 0;
                let bad = self.ends[ends_at..].iter().position(|&end| {
                    let field = joined.get(start..end as usize).unwrap_or_default();
                    start = end as usize + 1;
                    std::str::from_utf8(field).is_err()
                });
                self.ends.truncate(ends_at);
                Err(bad.unwrap_or(0))
            }
        };
        self.joined = joined;
        pushed
    }

    /// Adds a CSV record that holds no quote, as it is in the file: its
    /// fields are what lies between its commas. The field (0-based) whose
    /// bytes are not UTF-8 when one is not.
    fn push_line(&mut self, line: u64, bytes: &[u8]) -> Result<(), usize> {
        // A comma is never part of a character, so a line that is UTF-8
        // has fields that are.
        let Ok(text) = simdutf8::basic::from_utf8(bytes) else {
            return Err(bytes
                .split(|&byte| byte == b',')
                .position(|field| std::str::from_utf8(field).is_err())
                .unwrap_or(0));
        };
        let ends_at = self.ends.len();
        push_comma_ends(&mut self.ends, bytes);
        self.ends.push(end_at(bytes.len()));
        self.push_text(line, text, ends_at);
        Ok(())
    }

    /// Adds a record's text, whose field ends are pushed from `ends_at`.
    fn push_text(&mut self, line: u64, text: &str, ends_at: usize) {
        let text_at = self.text.len();
        self.text.push_str(text);
        self.rows.push(BatchRow::Csv {
            line,
            text_at,
            ends_at,
        });
    }

    /// Takes back the last row, a CSV one.
    fn pop_record(&mut self) {
        let Some(BatchRow::Csv {
            text_at, ends_at, ..
        }) = self.rows.last()
        else {
            debug_assert!(false, "only a CSV record just pushed is taken back");
            return;
        };
        self.text.truncate(*text_at);
        self.ends.truncate(*ends_at);
        self.rows.pop();
    }
}

/// A field's end in its record's text. A record is at most a megabyte
/// (`MAX_RECORD_BYTES`), so this never saturates; were it to, the field's
/// bounds would be wrong, never out of bounds (`Fields::get`).
fn end_at(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// Pushes where each comma of `bytes` is, eight bytes at a time: most
/// fields are shorter than a search for the next comma is worth.
fn push_comma_ends(ends: &mut Vec<u32>, bytes: &[u8]) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const COMMAS: u64 = ONES * b',' as u64;
    const LOW_BITS: u64 = ONES * 0x7F;
    let mut words = bytes.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let x = word ^ COMMAS;
        // The high bit of each byte that is zero in `x` (a comma): no
        // carry crosses from one byte to the next.
        let mut commas = !(((x & LOW_BITS) + LOW_BITS) | x) & !LOW_BITS;
        while commas != 0 {
            ends.push(end_at(base + commas.trailing_zeros() as usize / 8));
            commas &= commas - 1;
        }
        base += 8;
    }
    for (at, &byte) in words.remainder().iter().enumerate() {
        if byte == b',' {
            ends.push(end_at(base + at));
        }
    }
}

enum Sha256State {
    Running(DigestThread),
    Done([u8; 32]),
}

/// The thread hashing the input beside the work. A source dropped before
/// it asked for the digest (a probe of the header row, a check that
/// stopped at an error) stops the thread at its next read, instead of
/// leaving it to read the whole file for nothing.
struct DigestThread {
    thread: Option<std::thread::JoinHandle<std::io::Result<[u8; 32]>>>,
    abandoned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DigestThread {
    fn spawn(path: &Path) -> std::io::Result<DigestThread> {
        let abandoned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = Abandonable {
            path: path.to_owned(),
            file: None,
            abandoned: std::sync::Arc::clone(&abandoned),
        };
        let thread = std::thread::Builder::new()
            .name("input-sha256".into())
            .spawn(move || decode::sha256(reader))?;
        Ok(DigestThread {
            thread: Some(thread),
            abandoned,
        })
    }

    fn join(mut self) -> std::io::Result<[u8; 32]> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("the hashing thread does not panic")
    }
}

impl Drop for DigestThread {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.abandoned
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The input file as the hashing thread reads it (opened there), ending
/// in an error once the digest is no longer wanted.
struct Abandonable {
    path: PathBuf,
    file: Option<File>,
    abandoned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Read for Abandonable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.abandoned.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("the digest is no longer wanted"));
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(File::open(&self.path)?),
        };
        file.read(buf)
    }
}

enum Source {
    // Boxed: the reader holds its buffers inline.
    Csv(Box<csv_source::CsvSource>),
    Xlsx(xlsx_source::XlsxSource),
}

/// A streaming reader of data rows from a CSV or XLSX file.
pub struct RowSource {
    source: Source,
    path: PathBuf,
    headers: Vec<String>,
    header_line: u64,
    file_len: u64,
    sha256: Sha256State,
    encoding: Option<TextEncoding>,
    sheet: Option<String>,
    blank_rows: u64,
    /// Non-blank rows above the header row (titles, export times).
    above_header: u64,
    edits: Option<std::sync::Arc<CellEdits>>,
    /// The current row with its corrections, when it has some.
    edited: Option<OwnedRow>,
}

impl RowSource {
    /// Opens `path` by its extension and reads up to the header row.
    pub fn open(path: &Path, options: &InputOptions) -> Result<RowSource, InputError> {
        let format = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => InputFormat::Csv,
            Some("xlsx") => InputFormat::Xlsx,
            _ => {
                return Err(InputError::Unreadable {
                    path: path.to_owned(),
                    message: "is neither a .csv nor a .xlsx file; export the orders as CSV or \
                              Excel workbook (.xlsx)"
                        .into(),
                });
            }
        };
        let io_error = |source| InputError::Io {
            path: path.to_owned(),
            source,
        };
        let file_len = std::fs::metadata(path).map_err(io_error)?.len();
        // The digest is only needed at the end: computed beside the work,
        // unless the bytes are read before it anyway.
        let digest_beside = || {
            DigestThread::spawn(path)
                .map(Sha256State::Running)
                .map_err(io_error)
        };
        let mut row_source = match format {
            InputFormat::Csv => {
                let mut head = [0u8; 4];
                let head_len = read_head(path, &mut head).map_err(io_error)?;
                let (scan, sha256) = if options.encoding == EncodingChoice::Auto {
                    let (scan, digest) = decode::scan_and_hash(|| Ok(Box::new(File::open(path)?)))
                        .map_err(io_error)?;
                    (scan, Sha256State::Done(digest))
                } else {
                    (decode::Utf8Scan::default(), digest_beside()?)
                };
                let (csv, encoding) =
                    csv_source::CsvSource::open(path, options.encoding, &head[..head_len], &scan)?;
                RowSource {
                    source: Source::Csv(Box::new(csv)),
                    path: path.to_owned(),
                    headers: Vec::new(),
                    header_line: 0,
                    file_len,
                    sha256,
                    encoding: Some(encoding),
                    sheet: None,
                    blank_rows: 0,
                    above_header: 0,
                    edits: None,
                    edited: None,
                }
            }
            InputFormat::Xlsx => {
                let (xlsx, sheet, above) =
                    xlsx_source::XlsxSource::open(path, &options.sheet, &options.header)?;
                RowSource {
                    source: Source::Xlsx(xlsx),
                    path: path.to_owned(),
                    headers: Vec::new(),
                    header_line: 0,
                    file_len,
                    sha256: digest_beside()?,
                    encoding: None,
                    sheet: Some(sheet),
                    blank_rows: 0,
                    above_header: above,
                    edits: None,
                    edited: None,
                }
            }
        };
        match row_source.format() {
            InputFormat::Csv => row_source.read_header(&options.header)?,
            // The reader thread found the header row: its rows start there.
            InputFormat::Xlsx => row_source.read_header(&HeaderSearch::default())?,
        }
        // After the header: corrections are made to data rows only.
        row_source.edits = options.edits.clone().filter(|edits| !edits.is_empty());
        Ok(row_source)
    }

    /// Finds the header row (see `header`); rows above it are skipped and
    /// counted, blank ones are not data.
    fn read_header(&mut self, search: &HeaderSearch) -> Result<(), InputError> {
        let mut scan = header::HeaderScan::new(search);
        let mut any = false;
        loop {
            let Some(row) = self.next_raw()? else {
                let path = self.path.clone();
                return Err(if any {
                    InputError::NoHeaderRow {
                        path,
                        message: header::not_found_message(search, &[(None, scan.failure())]),
                    }
                } else {
                    InputError::Unreadable {
                        path,
                        message: "has no header row: the file is empty".to_owned(),
                    }
                });
            };
            if row.is_blank() {
                continue;
            }
            any = true;
            let headers = row.header_texts();
            let line = row.line;
            match scan.step(line, &headers) {
                header::Step::Above => continue,
                header::Step::NotFound => {
                    return Err(InputError::Unreadable {
                        path: self.path.clone(),
                        message: header::not_found_message(search, &[(None, scan.failure())]),
                    });
                }
                header::Step::Header => {
                    self.headers = headers;
                    self.header_line = line;
                    self.above_header += scan.above;
                    // Blank lines above the header are not data rows.
                    self.skipped_lines();
                    return Ok(());
                }
            }
        }
    }

    /// Non-blank rows above the header row, skipped.
    pub fn rows_above_header(&self) -> u64 {
        self.above_header
    }

    fn next_raw(&mut self) -> Result<Option<RowRef<'_>>, InputError> {
        match &mut self.source {
            Source::Csv(csv) => csv.next_row(&self.path),
            Source::Xlsx(xlsx) => xlsx.next_row(),
        }
    }

    /// The next non-blank data row, or `None` at the end of the input.
    pub fn next_row(&mut self) -> Result<Option<RowRef<'_>>, InputError> {
        self.edited = None;
        let found = loop {
            match self.next_raw()? {
                None => break false,
                Some(row) if row.is_blank() => self.blank_rows += 1,
                Some(_) => break true,
            }
        };
        self.blank_rows += self.skipped_lines();
        if !found {
            return Ok(None);
        }
        if let Some(edits) = self.edits.clone()
            && self.current_is_editable(|line| edits.touches(line))
            && let Some(mut row) = self.take_current()
        {
            edits.apply(&mut row);
            self.edited = Some(row);
            return Ok(self.edited.as_ref().map(OwnedRow::as_row));
        }
        // Re-borrowed here: returning the row from inside the loop would
        // hold `self` borrowed across iterations.
        Ok(match &self.source {
            Source::Csv(csv) => csv.current(),
            Source::Xlsx(xlsx) => xlsx.current(),
        })
    }

    /// Whether the current row is one `wanted` says of its line, and one
    /// the reader could hold (a row past a limit is only its fault).
    fn current_is_editable(&self, wanted: impl Fn(u64) -> bool) -> bool {
        let current = match &self.source {
            Source::Csv(csv) => csv.current(),
            Source::Xlsx(xlsx) => xlsx.current(),
        };
        current.is_some_and(|row| wanted(row.line) && row.fault().is_none())
    }

    /// The current row, handed over.
    fn take_current(&mut self) -> Option<OwnedRow> {
        match &mut self.source {
            Source::Csv(csv) => csv.take_current(),
            Source::Xlsx(xlsx) => xlsx.take_current().map(|(line, cells)| OwnedRow {
                line,
                cells: OwnedCells::Xlsx(cells),
            }),
        }
    }

    /// Like [`RowSource::next_row`], but hands the row over.
    pub fn next_owned(&mut self) -> Result<Option<OwnedRow>, InputError> {
        if self.next_row()?.is_none() {
            return Ok(None);
        }
        Ok(self.edited.take().or_else(|| self.take_current()))
    }

    /// Adds the next non-blank data row to `batch`; `false` at the end of
    /// the input. CSV records go into the batch's text as they are read.
    pub fn next_into(&mut self, batch: &mut RowBatch) -> Result<bool, InputError> {
        let Source::Csv(csv) = &mut self.source else {
            return self.next_owned_into(batch);
        };
        if self.edits.is_some() {
            return self.next_owned_into(batch);
        }
        let found = loop {
            if !csv.next_into(&self.path, batch)? {
                break false;
            }
            if batch.row(batch.len() - 1).is_blank() {
                batch.pop_record();
                self.blank_rows += 1;
            } else {
                break true;
            }
        };
        self.blank_rows += self.skipped_lines();
        Ok(found)
    }

    fn next_owned_into(&mut self, batch: &mut RowBatch) -> Result<bool, InputError> {
        match self.next_owned()? {
            Some(row) => {
                batch.push_owned(row);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Blank rows the underlying reader passed over without returning them.
    fn skipped_lines(&mut self) -> u64 {
        match &mut self.source {
            Source::Csv(csv) => csv.take_skipped_lines(),
            Source::Xlsx(xlsx) => xlsx.take_skipped_rows(),
        }
    }

    /// Header cells, trimmed, BOM removed, in column order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The row number of the header row.
    pub fn header_line(&self) -> u64 {
        self.header_line
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> InputFormat {
        match self.source {
            Source::Csv(_) => InputFormat::Csv,
            Source::Xlsx(_) => InputFormat::Xlsx,
        }
    }

    /// Bytes of text the rows come from, when that says how many rows there
    /// are (CSV); XLSX is compressed, so it does not.
    pub fn text_len(&self) -> Option<u64> {
        match self.source {
            Source::Csv(_) => Some(self.file_len),
            Source::Xlsx(_) => None,
        }
    }

    /// CSV rows must have as many fields as the header    /// CSV rows must have as many fields as the header: a different count
    /// means an unquoted comma shifted the columns.
    pub fn expected_width(&self) -> Option<usize> {
        match self.source {
            Source::Csv(_) => Some(self.headers.len()),
            Source::Xlsx(_) => None,
        }
    }

    /// SHA-256 of the input file's bytes (waits for the hashing thread).
    pub fn sha256(&mut self) -> Result<[u8; 32], InputError> {
        if let Sha256State::Running(_) = self.sha256 {
            let Sha256State::Running(thread) =
                std::mem::replace(&mut self.sha256, Sha256State::Done([0; 32]))
            else {
                unreachable!("matched just above")
            };
            let digest = thread.join().map_err(|source| InputError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.sha256 = Sha256State::Done(digest);
        }
        match self.sha256 {
            Sha256State::Done(digest) => Ok(digest),
            Sha256State::Running(_) => unreachable!("joined above"),
        }
    }

    pub fn encoding(&self) -> Option<TextEncoding> {
        self.encoding
    }

    pub fn sheet(&self) -> Option<&str> {
        self.sheet.as_deref()
    }

    /// Entirely blank rows skipped after the header so far.
    pub fn blank_rows(&self) -> u64 {
        self.blank_rows
    }
}

fn read_head(path: &Path, head: &mut [u8]) -> std::io::Result<usize> {
    let mut file = File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod digest_tests {
    use super::*;

    #[test]
    fn the_digest_thread_hashes_the_file_and_an_abandoned_one_stops_reading() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("in.csv");
        std::fs::write(&path, "id\n1\n").unwrap();
        let digest = DigestThread::spawn(&path).unwrap().join().unwrap();
        assert_eq!(digest, decode::sha256(&b"id\n1\n"[..]).unwrap());
        // Dropped before it was asked: its reader refuses the next read.
        let dropped = DigestThread::spawn(&path).unwrap();
        let abandoned = std::sync::Arc::clone(&dropped.abandoned);
        drop(dropped);
        let mut reader = Abandonable {
            path: path.clone(),
            file: None,
            abandoned,
        };
        assert!(reader.read(&mut [0u8; 8]).is_err());
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    fn record(fields: &[&[u8]]) -> csv::ByteRecord {
        fields.iter().copied().collect()
    }

    #[test]
    fn a_batch_holds_records_end_to_end_beside_owned_rows() {
        let mut batch = RowBatch::default();
        batch
            .push_record(3, &record(&[b"P1", "张三".as_bytes(), b""]))
            .unwrap();
        batch.push_owned(OwnedRow::from_texts(4, &["edited", "row"]));
        batch.push_record(6, &record(&[b"", b"x"])).unwrap();
        batch.push_record(7, &record(&[b"only"])).unwrap();
        let rows: Vec<(u64, Vec<String>)> = batch
            .rows()
            .map(|row| {
                let cells = row
                    .cells()
                    .map(|cell| cell.original_text().into_owned())
                    .collect();
                (row.line, cells)
            })
            .collect();
        let texts = |cells: &[&str]| cells.iter().map(|cell| cell.to_string()).collect();
        assert_eq!(
            rows,
            [
                (3, texts(&["P1", "张三", ""])),
                (4, texts(&["edited", "row"])),
                (6, texts(&["", "x"])),
                (7, texts(&["only"])),
            ]
        );
        // Kept past the batch, a row is the same row.
        let owned = batch.row(0).to_owned_row();
        assert_eq!(owned.as_row().cell(1), CellView::Text("张三"));
        // Taking back the last record leaves the others whole.
        batch.pop_record();
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.row(2).cell(1), CellView::Text("x"));
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.weight(), 0);
    }

    #[test]
    fn a_field_that_is_not_utf8_is_named_even_when_the_record_as_a_whole_is() {
        let mut batch = RowBatch::default();
        // 你 is E4 BD A0: split by a comma, each field alone is broken,
        // though the fields' bytes end to end are valid UTF-8.
        assert_eq!(
            batch.push_record(2, &record(&[b"ok", b"\xE4", b"\xBD\xA0"])),
            Err(1)
        );
        assert_eq!(batch.push_record(2, &record(&[b"ok", b"a\xFFb"])), Err(1));
        // Nothing of a refused record stays.
        assert!(batch.is_empty());
        assert_eq!(batch.weight(), 0);
    }
}
