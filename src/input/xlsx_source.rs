//! XLSX rows through calamine's streaming cell reader, which walks the
//! sheet XML cell by cell instead of loading the whole range. The reader
//! borrows the workbook, so a thread owns both and sends rows over a
//! bounded channel: memory stays flat and parsing overlaps validation.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use calamine::{DataRef, Reader, Xlsx, open_workbook};

use super::cell::Cell;
use super::{Cells, InputError, RowRef};

const ROWS_PER_BATCH: usize = 256;
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
    /// Opens the workbook and picks the sheet (`sheet` empty: the first).
    pub(super) fn open(path: &Path, sheet: &str) -> Result<(XlsxSource, String), InputError> {
        let (sheet_tx, sheet_rx) = sync_channel::<Result<String, InputError>>(1);
        let (batch_tx, batches) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let owned_path = path.to_owned();
        let wanted = sheet.to_owned();
        let thread = std::thread::Builder::new()
            .name("xlsx-reader".into())
            .spawn(move || read_sheet(owned_path, wanted, sheet_tx, batch_tx))
            .map_err(|source| InputError::Io {
                path: path.to_owned(),
                source,
            })?;
        let chosen = sheet_rx.recv().unwrap_or_else(|_| {
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
        Ok((source, chosen))
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

fn read_sheet(
    path: PathBuf,
    wanted: String,
    sheet_tx: SyncSender<Result<String, InputError>>,
    batch_tx: SyncSender<Batch>,
) {
    let unreadable = |message: String| InputError::Unreadable {
        path: path.clone(),
        message,
    };
    let mut workbook: Xlsx<BufReader<File>> = match open_workbook(&path) {
        Ok(workbook) => workbook,
        Err(error) => {
            let _ = sheet_tx.send(Err(unreadable(format!(
                "is not a readable XLSX workbook ({error}); save it from Excel as \
                 \"Excel Workbook (.xlsx)\""
            ))));
            return;
        }
    };
    let names = workbook.sheet_names();
    let chosen = if wanted.is_empty() {
        names.first().cloned()
    } else {
        names.iter().find(|name| **name == wanted).cloned()
    };
    let Some(chosen) = chosen else {
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
    };
    let mut cells = match workbook.worksheet_cells_reader(&chosen) {
        Ok(cells) => cells,
        Err(error) => {
            let _ = sheet_tx.send(Err(unreadable(format!(
                "cannot read sheet \"{chosen}\": {error}"
            ))));
            return;
        }
    };
    if sheet_tx.send(Ok(chosen)).is_err() {
        return;
    }
    let mut batch = Vec::with_capacity(ROWS_PER_BATCH);
    let mut row: Option<SheetRow> = None;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(error) => {
                let line = row.as_ref().map_or(1, |r| r.line);
                let _ = batch_tx.send(Err(InputError::AtLine {
                    path: path.clone(),
                    line,
                    message: format!("the sheet cannot be read past this row: {error}"),
                }));
                return;
            }
        };
        let (row_index, column) = cell.get_position();
        let line = u64::from(row_index) + 1;
        if row.as_ref().is_none_or(|r| r.line != line) {
            // Excel writes rows in ascending order; a row stored again, or
            // before one already read, would give two results one row number.
            if let Some(previous) = row.as_ref().map(|r| r.line).filter(|&p| line <= p) {
                let _ = batch_tx.send(Err(InputError::AtLine {
                    path: path.clone(),
                    line,
                    message: format!(
                        "the sheet stores row {line} after row {previous}; rows out of order \
                         are not a valid workbook: open the file in Excel or LibreOffice and \
                         save it again as \"Excel Workbook (.xlsx)\""
                    ),
                }));
                return;
            }
            if let Some(done) = row.take() {
                batch.push(done);
                if batch.len() == ROWS_PER_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(ROWS_PER_BATCH));
                    if batch_tx.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            row = Some(SheetRow {
                line,
                cells: Vec::new(),
            });
        }
        let value = owned_cell(cell.get_value());
        if value != Cell::Empty {
            let cells = &mut row.as_mut().expect("row was just set").cells;
            let column = column as usize;
            if cells.len() <= column {
                cells.resize(column + 1, Cell::Empty);
            }
            cells[column] = value;
        }
    }
    batch.extend(row);
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
