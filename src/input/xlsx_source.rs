//! XLSX rows through calamine's streaming cell reader, which walks the
//! sheet XML cell by cell instead of loading the whole range. The reader
//! borrows the workbook, so a thread owns both and sends rows over a
//! bounded channel: memory stays flat and parsing overlaps validation.
//! Without a sheet named, the thread looks for the header row in each
//! sheet in turn (an instructions sheet often comes first) and streams the
//! first sheet where it finds one, from its header row on. Every cell of a
//! merged range reads as the range's value; the ranges come from a scan
//! beside the reader (see `merges`).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use calamine::{DataRef, Reader, Xlsx, open_workbook};

use super::cell::Cell;
use super::header::{HeaderScan, HeaderSearch, Step, not_found_message};
use super::merges::{self, ScanError, SheetMerges};
use super::{Cells, InputError, RowRef};

const ROWS_PER_BATCH: usize = 256;
/// A batch is also sent once its rows weigh this much (see
/// `SheetRow::weight`), so that very wide rows do not pile up.
const BATCH_WEIGHT: usize = 512 * 1024;
/// Excel's columns: A to XFD.
const MAX_COLUMNS: u32 = 16_384;
/// What one row may hold in memory, its cells and their text: the XML
/// check bounds each cell, but a row gathers every cell addressed to it
/// (wherever the XML puts it) and every copy of a merged value.
const MAX_ROW_BYTES: usize = 4 << 20;

/// The sheet names of the workbooks this tool writes.
pub(super) const TOOL_SHEETS: [&str; 2] = ["rejected", "retry"];
const BATCHES_IN_FLIGHT: usize = 8;

struct SheetRow {
    /// The sheet's own row number (1-based).
    line: u64,
    cells: Vec<Cell>,
}

type Batch = Result<Vec<SheetRow>, InputError>;

pub(super) struct XlsxSource {
    batches: Receiver<Batch>,
    batch: std::vec::IntoIter<SheetRow>,
    current: Option<SheetRow>,
    previous_line: u64,
    skipped_rows: u64,
    finished: bool,
    thread: Option<JoinHandle<()>>,
}

impl XlsxSource {
    /// Opens the workbook and picks the sheet (`sheet` empty: the first
    /// whose header row is found); returns the source, whose rows start at
    /// the header row, the sheet's name and the non-blank rows above the
    /// header.
    pub(super) fn open(
        path: &Path,
        sheet: &str,
        search: &HeaderSearch,
    ) -> Result<(XlsxSource, String, u64), InputError> {
        let (sheet_tx, sheet_rx) = sync_channel::<Result<(String, u64), InputError>>(1);
        let (batch_tx, batches) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let owned_path = path.to_owned();
        let wanted = sheet.to_owned();
        let search = search.clone();
        let thread = std::thread::Builder::new()
            .name("xlsx-reader".into())
            .spawn(move || read_sheet(owned_path, wanted, search, sheet_tx, batch_tx))
            .map_err(|source| InputError::Io {
                path: path.to_owned(),
                source,
            })?;
        let (chosen, above) = sheet_rx.recv().unwrap_or_else(|_| {
            Err(InputError::Unreadable {
                path: path.to_owned(),
                message: "the XLSX reader stopped unexpectedly".into(),
            })
        })?;
        let source = XlsxSource {
            batches,
            batch: Vec::new().into_iter(),
            current: None,
            previous_line: 0,
            skipped_rows: 0,
            finished: false,
            thread: Some(thread),
        };
        Ok((source, chosen, above))
    }

    pub(super) fn next_row(&mut self) -> Result<Option<RowRef<'_>>, InputError> {
        self.current = None;
        let row = loop {
            if let Some(row) = self.batch.next() {
                break row;
            }
            if self.finished {
                return Ok(None);
            }
            match self.batches.recv() {
                Ok(batch) => self.batch = batch?.into_iter(),
                Err(_) => {
                    self.finished = true;
                    if let Some(thread) = self.thread.take() {
                        // A panic in the reader thread is a bug, not bad input.
                        thread.join().expect("xlsx reader thread panicked");
                    }
                }
            }
        };
        // Rows missing from the sheet XML between two rows are blank rows.
        self.skipped_rows += row.line.saturating_sub(self.previous_line + 1);
        self.previous_line = row.line;
        self.current = Some(row);
        Ok(self.current())
    }

    pub(super) fn current(&self) -> Option<RowRef<'_>> {
        self.current.as_ref().map(|row| RowRef {
            line: row.line,
            cells: Cells::Xlsx(&row.cells),
        })
    }

    pub(super) fn take_current(&mut self) -> Option<(u64, Vec<Cell>)> {
        self.current.take().map(|row| (row.line, row.cells))
    }

    pub(super) fn take_skipped_rows(&mut self) -> u64 {
        std::mem::take(&mut self.skipped_rows)
    }
}

/// Sheet rows, assembled from calamine's cells one row at a time, with
/// every cell of a merged range holding the range's value, as a person
/// sees it.
struct SheetRows<'a, R: std::io::Read + std::io::Seek> {
    cells: calamine::XlsxCellReader<'a, R>,
    /// The sheet's merged ranges by first row; the next to start.
    merges: Vec<calamine::Dimensions>,
    next_merge: usize,
    /// Ranges covering the current row, with their top-left value.
    active: Vec<(calamine::Dimensions, Cell)>,
    pending: Option<SheetRow>,
    /// What the pending row's cell values weigh.
    pending_weight: usize,
    last_line: u64,
    /// The cell reader reached the end (asking it again is an error).
    ended: bool,
    path: &'a Path,
}

impl<'a, R: std::io::Read + std::io::Seek> SheetRows<'a, R> {
    fn new(
        cells: calamine::XlsxCellReader<'a, R>,
        mut merges: Vec<calamine::Dimensions>,
        path: &'a Path,
    ) -> SheetRows<'a, R> {
        merges.sort_by_key(|range| range.start);
        SheetRows {
            cells,
            merges,
            next_merge: 0,
            active: Vec::new(),
            pending: None,
            pending_weight: 0,
            last_line: 0,
            ended: false,
            path,
        }
    }

    /// The next row the sheet stores, or `None` at its end.
    fn next(&mut self) -> Result<Option<SheetRow>, InputError> {
        let mut row = self.next_stored()?;
        if let Some(row) = row.as_mut()
            && !self.merges.is_empty()
        {
            self.fill_merged(row)?;
        }
        Ok(row)
    }

    fn row_too_large(&self, line: u64, why: &str) -> InputError {
        InputError::AtLine {
            path: self.path.to_owned(),
            line,
            message: format!(
                "the row holds more than {} MB{why}, more than any export row; open the \
                 workbook in Excel, check this row and save it again, or export the orders as CSV",
                MAX_ROW_BYTES >> 20
            ),
        }
    }

    /// Gives the cells of `row` that lie in a merged range the range's
    /// value (the top-left cell's, which is the only one stored).
    fn fill_merged(&mut self, row: &mut SheetRow) -> Result<(), InputError> {
        let index = (row.line - 1) as u32;
        self.active.retain(|(range, _)| range.end.0 >= index);
        while let Some(range) = self.merges.get(self.next_merge) {
            if range.start.0 > index {
                break;
            }
            self.next_merge += 1;
            if range.end.0 < index {
                continue;
            }
            // The top-left value: from this row when the range starts here;
            // a range whose first row is not stored has none.
            let value = if range.start.0 == index {
                row.cells
                    .get(range.start.1 as usize)
                    .cloned()
                    .unwrap_or(Cell::Empty)
            } else {
                Cell::Empty
            };
            self.active.push((*range, value));
        }
        let mut weight = row.weight();
        for (range, value) in &self.active {
            if *value == Cell::Empty {
                continue;
            }
            let last = (range.end.1 as usize).min(MAX_COLUMNS as usize - 1);
            if row.cells.len() <= last {
                row.cells.resize(last + 1, Cell::Empty);
            }
            let first = (range.start.1 as usize).min(last);
            for cell in &mut row.cells[first..=last] {
                if *cell == Cell::Empty {
                    *cell = value.clone();
                    weight += value.weight();
                    if weight > MAX_ROW_BYTES {
                        return Err(
                            self.row_too_large(row.line, " once its merged cells are filled")
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// The next row as the sheet stores it.
    fn next_stored(&mut self) -> Result<Option<SheetRow>, InputError> {
        loop {
            if self.ended {
                return Ok(self.pending.take());
            }
            // With its formula, so that one without a saved value is told
            // from an empty cell.
            let cell = match self.cells.next_cell_with_formula_metadata() {
                Ok(Some(cell)) => cell,
                Ok(None) => {
                    self.ended = true;
                    return Ok(self.pending.take());
                }
                Err(error) => {
                    let line = self
                        .pending
                        .as_ref()
                        .map_or(self.last_line.max(1), |r| r.line);
                    return Err(InputError::AtLine {
                        path: self.path.to_owned(),
                        line,
                        message: format!("the sheet cannot be read past this row: {error}"),
                    });
                }
            };
            let (row_index, column) = cell.pos;
            let line = u64::from(row_index) + 1;
            if column >= MAX_COLUMNS {
                return Err(InputError::AtLine {
                    path: self.path.to_owned(),
                    line,
                    message: format!(
                        "cell {} lies past column XFD, Excel's last ({MAX_COLUMNS} columns); \
                         the workbook is damaged: open it in Excel and save it again",
                        super::a1_reference(column as usize, line)
                    ),
                });
            }
            let value = match (&cell.value, &cell.formula) {
                (DataRef::Empty, Some(_)) => Cell::NoValue,
                (value, _) => owned_cell(value),
            };
            let mut finished = None;
            if self.pending.as_ref().is_none_or(|r| r.line != line) {
                // Excel writes rows in ascending order; a row stored again,
                // or before one already read, would give two results one
                // row number.
                if line <= self.last_line {
                    return Err(InputError::AtLine {
                        path: self.path.to_owned(),
                        line,
                        message: format!(
                            "the sheet stores row {line} after row {}; rows out of order are \
                             not a valid workbook: open the file in Excel or LibreOffice and \
                             save it again as \"Excel Workbook (.xlsx)\"",
                            self.last_line
                        ),
                    });
                }
                self.last_line = line;
                finished = self.pending.replace(SheetRow {
                    line,
                    cells: Vec::new(),
                });
            }
            if finished.is_some() {
                self.pending_weight = 0;
            }
            if value != Cell::Empty {
                self.pending_weight += value.weight();
                let cells = &mut self.pending.as_mut().expect("row was just set").cells;
                let column = column as usize;
                if cells.len() <= column {
                    cells.resize(column + 1, Cell::Empty);
                }
                cells[column] = value;
                let held = self.pending_weight + cells.len() * std::mem::size_of::<Cell>();
                if held > MAX_ROW_BYTES {
                    return Err(self.row_too_large(line, ""));
                }
            }
            if finished.is_some() {
                return Ok(finished);
            }
        }
    }
}

impl SheetRow {
    /// Roughly the bytes the row holds.
    fn weight(&self) -> usize {
        self.cells.iter().map(Cell::weight).sum()
    }
}

/// A sheet row's cells as header texts.
fn header_texts(row: &SheetRow) -> Vec<String> {
    RowRef {
        line: row.line,
        cells: Cells::Xlsx(&row.cells),
    }
    .header_texts()
}

fn is_blank(row: &SheetRow) -> bool {
    row.cells.iter().all(|cell| cell.view().is_blank())
}

/// What a workbook the checks of `xml_guard` refused is told with.
fn refused_workbook(message: &str) -> String {
    format!(
        "{message}; this is more than any export holds, so the workbook is not read: open it in \
         Excel, remove what is not orders and save it again, or export the orders as CSV"
    )
}

fn not_a_workbook(error: &calamine::XlsxError) -> String {
    format!(
        "is not a readable XLSX workbook ({error}); save it from Excel as \"Excel Workbook \
         (.xlsx)\""
    )
}

/// The names of a workbook's sheets, in order, once its parts pass the
/// checks of `xml_guard` (calamine reads the shared strings to list them).
pub(super) fn sheet_names(path: &Path) -> Result<Vec<String>, InputError> {
    let unreadable = |message: String| InputError::Unreadable {
        path: path.to_owned(),
        message,
    };
    merges::check_workbook(path).map_err(|message| unreadable(refused_workbook(&message)))?;
    let workbook: Xlsx<BufReader<File>> =
        open_workbook(path).map_err(|error| unreadable(not_a_workbook(&error)))?;
    Ok(workbook.sheet_names())
}

fn read_sheet(
    path: PathBuf,
    wanted: String,
    search: HeaderSearch,
    sheet_tx: SyncSender<Result<(String, u64), InputError>>,
    batch_tx: SyncSender<Batch>,
) {
    let unreadable = |message: String| InputError::Unreadable {
        path: path.clone(),
        message,
    };
    // The merged ranges are read beside the shared strings' loading, by
    // the thread that first checks the workbook's parts (the gate).
    let (gate_tx, gate_rx) = sync_channel::<Result<(), String>>(1);
    let (merges_tx, merges_rx) = std::sync::mpsc::channel::<SheetMerges>();
    let scan_done = Arc::new(AtomicBool::new(false));
    let (scan_path, scan_flag) = (path.clone(), Arc::clone(&scan_done));
    let spawned = std::thread::Builder::new()
        .name("xlsx-merges".into())
        .spawn(move || merges::scan(&scan_path, gate_tx, merges_tx, scan_flag));
    let gate = match spawned {
        Ok(_) => gate_rx
            .recv()
            .unwrap_or_else(|_| Err("the workbook check stopped unexpectedly".to_owned())),
        Err(error) => Err(format!("the workbook cannot be checked ({error})")),
    };
    if let Err(message) = gate {
        let _ = sheet_tx.send(Err(unreadable(refused_workbook(&message))));
        return;
    }
    let mut merges_by_sheet: HashMap<String, Result<Vec<calamine::Dimensions>, ScanError>> =
        HashMap::new();
    let mut workbook: Xlsx<BufReader<File>> = match open_workbook(&path) {
        Ok(workbook) => workbook,
        Err(error) => {
            let _ = sheet_tx.send(Err(unreadable(not_a_workbook(&error))));
            return;
        }
    };
    let names = workbook.sheet_names();
    // A workbook this tool wrote (rejected.xlsx, retry.xlsx) is read from
    // its one sheet and row 1, whatever `sheet` and `header_row` say.
    let written_here = matches!(names.as_slice(), [only] if TOOL_SHEETS.contains(&only.as_str()));
    let (wanted, search) = if written_here {
        let search = HeaderSearch {
            required: Vec::new(),
            fixed_row: Some(1),
        };
        (names[0].clone(), search)
    } else {
        (wanted, search)
    };
    let candidates: Vec<String> = if wanted.is_empty() {
        names.clone()
    } else {
        names
            .iter()
            .filter(|name| **name == wanted)
            .cloned()
            .collect()
    };
    if candidates.is_empty() {
        let message = if wanted.is_empty() {
            "has no worksheet".to_owned()
        } else {
            format!(
                "has no sheet named \"{wanted}\"; its sheets are: {}",
                names.join(", ")
            )
        };
        let _ = sheet_tx.send(Err(unreadable(message)));
        return;
    }
    let mut misses = Vec::new();
    for sheet in candidates {
        let scanned = loop {
            if let Some(found) = merges_by_sheet.remove(&sheet) {
                break Some(found);
            }
            match merges_rx.recv() {
                Ok((name, found)) => {
                    merges_by_sheet.insert(name, found);
                }
                Err(_) => break None,
            }
        };
        // A sheet is read only once the scan has checked its part.
        let merges = match scanned {
            Some(Ok(merges)) => Ok(merges),
            Some(Err(ScanError::Refused(message))) => {
                let _ = sheet_tx.send(Err(unreadable(format!(
                    "{message}; the workbook is not read further: open it in Excel, check that \
                     place and save it again, or export the orders as CSV"
                ))));
                return;
            }
            Some(Err(ScanError::Unreadable(message))) => Err(message),
            None => Err("its part is not where the workbook's own list says".to_owned()),
        };
        let merges = match merges {
            Ok(merges) => merges,
            Err(error) => {
                misses.push((Some(sheet.clone()), format!("it cannot be read ({error})")));
                continue;
            }
        };
        let cells = match workbook.worksheet_cells_reader(&sheet) {
            Ok(cells) => cells,
            Err(error) => {
                misses.push((Some(sheet.clone()), format!("it cannot be read ({error})")));
                continue;
            }
        };
        let mut rows = SheetRows::new(cells, merges, &path);
        let mut scan = HeaderScan::new(&search);
        let header = loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break None,
                Err(error) => {
                    let _ = sheet_tx.send(Err(error));
                    return;
                }
            };
            if is_blank(&row) {
                continue;
            }
            match scan.step(row.line, &header_texts(&row)) {
                Step::Header => break Some(row),
                Step::Above => {}
                Step::NotFound => break None,
            }
        };
        let Some(header) = header else {
            misses.push((Some(sheet.clone()), scan.failure()));
            continue;
        };
        // No other sheet's ranges are needed.
        scan_done.store(true, Ordering::Relaxed);
        if sheet_tx.send(Ok((sheet, scan.above))).is_err() {
            return;
        }
        stream_rows(header, &mut rows, &batch_tx);
        return;
    }
    let _ = sheet_tx.send(Err(InputError::NoHeaderRow {
        path: path.clone(),
        message: not_found_message(&search, &misses),
    }));
}

/// Sends `first` and every row after it in batches.
fn stream_rows<R: std::io::Read + std::io::Seek>(
    first: SheetRow,
    rows: &mut SheetRows<'_, R>,
    batch_tx: &SyncSender<Batch>,
) {
    let mut batch = Vec::with_capacity(ROWS_PER_BATCH);
    let mut weight = first.weight();
    batch.push(first);
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                weight += row.weight();
                batch.push(row);
                if batch.len() == ROWS_PER_BATCH || weight >= BATCH_WEIGHT {
                    weight = 0;
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(ROWS_PER_BATCH));
                    if batch_tx.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(error) => {
                if !batch.is_empty() {
                    let _ = batch_tx.send(Ok(std::mem::take(&mut batch)));
                }
                let _ = batch_tx.send(Err(error));
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = batch_tx.send(Ok(batch));
    }
}

fn owned_cell(value: &DataRef<'_>) -> Cell {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(text) | DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => {
            Cell::Text(text.clone())
        }
        DataRef::SharedString(text) => Cell::Text((*text).to_owned()),
        DataRef::Int(value) => Cell::Int(*value),
        DataRef::Float(value) => Cell::Float(*value),
        DataRef::Bool(value) => Cell::Bool(*value),
        DataRef::DateTime(value) => match value.as_datetime() {
            Some(datetime) if value.is_datetime() => Cell::DateTime(datetime),
            _ => Cell::Float(value.as_f64()),
        },
        DataRef::Error(error) => Cell::Error(error.to_string()),
    }
}
