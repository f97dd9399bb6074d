//! The workbooks a run leaves for people. `rejected.xlsx`: the rejected
//! rows as a workbook a finance clerk fixes
//! in Excel and feeds back. One sheet, header on row 1 (`row`, `errors`,
//! then the input's own headers), frozen, with a filter; every value as
//! the input gave it (text stays text, numbers numbers, dates dates); each
//! bad cell filled red with its message as a note (the first 2,000 notes:
//! see `MAX_NOTES`). Rows stream into the writer's constant-memory mode, so
//! a large file costs little memory. For an XLSX input, `retry.xlsx` and
//! `results.xlsx` too, every ID a text cell. Each holds personal data or
//! business IDs and is created readable by its owner only. What Excel
//! cannot hold (a cell over 32,767 characters, more than 16,384 columns) is
//! cut and marked, never a failed run: the CSV files keep every value.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::fields::Field;
use rust_xlsxwriter::{Color, Format, FormatPattern, Note, Workbook, Worksheet, XlsxError};

use crate::input::{CellView, RowRef};
use crate::validate::Problem;

/// The first column of the input's own cells (after `row` and `errors`).
const FIRST_INPUT_COLUMN: u16 = 2;

/// Notes written at most. The writer keeps every note in memory until it
/// saves (about 14 KB each: 100,000 took 1.4 GB), and Excel slows down with
/// many; past this, bad cells are still red and every message is in the
/// `errors` column.
pub const MAX_NOTES: u32 = 2_000;

/// Excel's limits: characters in a cell, and columns in a sheet.
const MAX_CELL_CHARS: usize = 32_767;
const MAX_COLUMNS: usize = 16_384;
/// Input columns `rejected.xlsx` has room for; past them, the last column
/// says how many were cut.
const MAX_INPUT_COLUMNS: usize = MAX_COLUMNS - FIRST_INPUT_COLUMN as usize;

/// `text` as Excel can hold it: cut to 32,767 characters with a mark that
/// says where the whole value is.
fn excel_text(text: &str) -> Cow<'_, str> {
    const MARK: &str = " …[cut: the CSV file has the whole value]";
    match text.char_indices().nth(MAX_CELL_CHARS) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = MAX_CELL_CHARS - MARK.chars().count();
            let end = text
                .char_indices()
                .nth(keep)
                .map_or(text.len(), |(at, _)| at);
            Cow::Owned(format!("{}{MARK}", &text[..end]))
        }
    }
}

/// How many of `width` columns fit from column `first` on; when some do
/// not, the last that fits is given to a mark instead.
fn columns_that_fit(width: usize, first: usize) -> (usize, Option<String>) {
    let room = MAX_COLUMNS - first;
    if width <= room {
        return (width, None);
    }
    let kept = room - 1;
    (
        kept,
        Some(format!(
            "[{} more columns cut: Excel has 16,384; the CSV file has them all]",
            width - kept
        )),
    )
}

fn io_error(error: XlsxError) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

/// Writes `rejected.xlsx` row by row, and into place on commit.
pub struct RejectedWorkbook {
    workbook: Workbook,
    path: PathBuf,
    /// The next sheet row to write (0-based; row 0 is the header).
    next_row: u32,
    width: usize,
    /// Input columns a row may fill: Excel's room, less a mark's column.
    max_width: usize,
    /// The input column each field is read from.
    field_columns: Vec<(&'static str, usize)>,
    /// Notes written so far.
    notes: u32,
    bad: Format,
    bad_date: Format,
    date: Format,
    /// Input columns of IDs: formatted as text (`@`), so that an ID typed
    /// in Excel while fixing a row stays text, not a rounded number.
    id_columns: Vec<usize>,
    text: Format,
    bad_text: Format,
}

impl RejectedWorkbook {
    pub fn create(
        path: &Path,
        headers: &[String],
        field_columns: Vec<(&'static str, usize)>,
    ) -> std::io::Result<RejectedWorkbook> {
        let mut workbook = Workbook::new();
        let header = Format::new().set_bold();
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(io_error)?;
        sheet.set_name("rejected").map_err(io_error)?;
        // Widths go before the first row in constant-memory mode.
        sheet.set_column_width(0, 8).map_err(io_error)?;
        sheet.set_column_width(1, 60).map_err(io_error)?;
        let (kept, mark) = columns_that_fit(headers.len(), FIRST_INPUT_COLUMN as usize);
        let max_width = if mark.is_some() {
            kept
        } else {
            MAX_INPUT_COLUMNS
        };
        let headers: Vec<&str> = headers[..kept]
            .iter()
            .map(String::as_str)
            .chain(mark.as_deref())
            .collect();
        let id_columns: Vec<usize> = field_columns
            .iter()
            .filter(|(field, _)| Field::from_name(field).is_some_and(Field::is_id))
            .map(|&(_, column)| column)
            .filter(|&column| column < headers.len())
            .collect();
        let text = Format::new().set_num_format("@");
        for (column, name) in headers.iter().enumerate() {
            let width = (name.chars().count() * 2).clamp(12, 40) as f64;
            sheet
                .set_column_width(FIRST_INPUT_COLUMN + column as u16, width)
                .map_err(io_error)?;
            if id_columns.contains(&column) {
                sheet
                    .set_column_format(FIRST_INPUT_COLUMN + column as u16, &text)
                    .map_err(io_error)?;
            }
        }
        sheet
            .write_string_with_format(0, 0, "row", &header)
            .map_err(io_error)?;
        sheet
            .write_string_with_format(0, 1, "errors", &header)
            .map_err(io_error)?;
        for (column, name) in headers.iter().enumerate() {
            sheet
                .write_string_with_format(
                    0,
                    FIRST_INPUT_COLUMN + column as u16,
                    excel_text(name),
                    &header,
                )
                .map_err(io_error)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(io_error)?;
        let red = Color::RGB(0xFFC7CE);
        let bad = Format::new()
            .set_pattern(FormatPattern::Solid)
            .set_background_color(red);
        Ok(RejectedWorkbook {
            workbook,
            path: path.to_owned(),
            next_row: 1,
            width: headers.len(),
            max_width,
            field_columns,
            notes: 0,
            bad_date: bad.clone().set_num_format("yyyy-mm-dd hh:mm:ss"),
            bad_text: bad.clone().set_num_format("@"),
            bad,
            date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            id_columns,
            text,
        })
    }

    fn sheet(&mut self) -> std::io::Result<&mut Worksheet> {
        self.workbook.worksheet_from_index(0).map_err(io_error)
    }

    /// Appends one rejected row with its problems; `texts` are their
    /// messages, in order, as the reader's language writes them.
    pub fn write(
        &mut self,
        row: &RowRef<'_>,
        problems: &[Problem],
        texts: &[String],
        separator: &str,
    ) -> std::io::Result<()> {
        let sheet_row = self.next_row;
        // The messages by input column; problems of the row as a whole
        // (a field count, a field without a column) only in `errors`.
        let mut notes: Vec<(usize, Vec<&str>)> = Vec::new();
        for (problem, text) in problems.iter().zip(texts) {
            if let Some(&(_, column)) = self.field_columns.iter().find(|(f, _)| *f == problem.field)
            {
                match notes.iter_mut().find(|(c, _)| *c == column) {
                    Some((_, messages)) => messages.push(text),
                    None => notes.push((column, vec![text])),
                }
            }
        }
        // Past Excel's last column, a row's cells are left to the CSV file.
        let width = row.len().max(self.width).min(self.max_width);
        let (bad, bad_date, date) = (self.bad.clone(), self.bad_date.clone(), self.date.clone());
        let (text_format, bad_text) = (self.text.clone(), self.bad_text.clone());
        let id_columns = self.id_columns.clone();
        let mut notes_written = self.notes;
        let sheet = self.workbook.worksheet_from_index(0).map_err(io_error)?;
        sheet
            .write_number(sheet_row, 0, row.line as f64)
            .map_err(io_error)?;
        sheet
            .write_string(sheet_row, 1, excel_text(&texts.join(separator)))
            .map_err(io_error)?;
        for column in 0..width {
            let at = FIRST_INPUT_COLUMN + column as u16;
            let is_bad = notes.iter().any(|(c, _)| *c == column);
            let is_id = id_columns.contains(&column);
            let written = match (row.cell(column), is_bad) {
                (CellView::Text(text), false) if is_id => {
                    sheet.write_string_with_format(sheet_row, at, excel_text(text), &text_format)
                }
                (CellView::Text(text), true) if is_id => {
                    sheet.write_string_with_format(sheet_row, at, excel_text(text), &bad_text)
                }
                (CellView::Text(text), false) => {
                    sheet.write_string(sheet_row, at, excel_text(text))
                }
                (CellView::Text(text), true) => {
                    sheet.write_string_with_format(sheet_row, at, excel_text(text), &bad)
                }
                (CellView::Int(value), false) => sheet.write_number(sheet_row, at, value as f64),
                (CellView::Int(value), true) => {
                    sheet.write_number_with_format(sheet_row, at, value as f64, &bad)
                }
                (CellView::Float(value), false) => sheet.write_number(sheet_row, at, value),
                (CellView::Float(value), true) => {
                    sheet.write_number_with_format(sheet_row, at, value, &bad)
                }
                (CellView::Bool(value), false) => sheet.write_boolean(sheet_row, at, value),
                (CellView::Bool(value), true) => {
                    sheet.write_boolean_with_format(sheet_row, at, value, &bad)
                }
                (CellView::DateTime(value), false) => {
                    sheet.write_datetime_with_format(sheet_row, at, value, &date)
                }
                (CellView::DateTime(value), true) => {
                    sheet.write_datetime_with_format(sheet_row, at, value, &bad_date)
                }
                (CellView::Error(text), false) => {
                    sheet.write_string(sheet_row, at, excel_text(text))
                }
                (CellView::Error(text), true) => {
                    sheet.write_string_with_format(sheet_row, at, excel_text(text), &bad)
                }
                (CellView::Empty | CellView::NoValue, true) => {
                    sheet.write_blank(sheet_row, at, &bad)
                }
                (CellView::Empty | CellView::NoValue, false) => Ok(&mut *sheet),
            };
            written.map_err(io_error)?;
        }
        for (column, messages) in &notes {
            if notes_written == MAX_NOTES {
                break;
            }
            if *column >= width {
                continue;
            }
            let note = Note::new(excel_text(&messages.join("\n"))).set_author("declare-batch");
            sheet
                .insert_note(sheet_row, FIRST_INPUT_COLUMN + *column as u16, &note)
                .map_err(io_error)?;
            notes_written += 1;
        }
        self.notes = notes_written;
        self.next_row += 1;
        Ok(())
    }

    /// Adds the filter and saves the workbook into place: under a temporary
    /// name readable by the owner only (it holds rows as given, certificate
    /// numbers included), then renamed.
    pub fn commit(mut self) -> std::io::Result<()> {
        let last_row = self.next_row - 1;
        let last_column = (FIRST_INPUT_COLUMN as usize + self.width.saturating_sub(1))
            .min(MAX_COLUMNS - 1) as u16;
        self.sheet()?
            .autofilter(0, 0, last_row, last_column)
            .map_err(io_error)?;
        save_private(&mut self.workbook, &self.path)
    }
}

/// Saves `workbook` to `path` under a temporary name created readable by
/// the owner only, then renames it into place.
fn save_private(workbook: &mut Workbook, path: &Path) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    drop(options.open(&temporary)?);
    // Saving truncates the file and keeps its permissions.
    workbook.save(&temporary).map_err(io_error)?;
    std::fs::rename(&temporary, path)
}

/// A sheet in constant-memory mode named `name`, its header on row 1 in
/// bold, frozen, with widths that fit the headers.
fn header_sheet<'a>(
    workbook: &'a mut Workbook,
    name: &str,
    headers: &[&str],
) -> std::io::Result<&'a mut Worksheet> {
    let bold = Format::new().set_bold();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(io_error)?;
    sheet.set_name(name).map_err(io_error)?;
    for (column, header) in headers.iter().enumerate() {
        let width = (header.chars().count() * 2).clamp(8, 40) as f64;
        sheet
            .set_column_width(column as u16, width)
            .map_err(io_error)?;
    }
    for (column, header) in headers.iter().enumerate() {
        sheet
            .write_string_with_format(0, column as u16, excel_text(header), &bold)
            .map_err(io_error)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(io_error)?;
    Ok(sheet)
}

/// `retry.xlsx` for an XLSX input: `row`, then the original columns of
/// every row still unknown, each value with its type, so that the file can
/// be fed back as it is.
pub fn write_retry_xlsx(
    path: &Path,
    headers: &[String],
    rows: &[crate::input::OwnedRow],
) -> std::io::Result<()> {
    let mut workbook = Workbook::new();
    let (kept, mark) = columns_that_fit(headers.len(), 1);
    let mut names: Vec<&str> = vec!["row"];
    names.extend(headers[..kept].iter().map(String::as_str));
    names.extend(mark.as_deref());
    let date = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let sheet = header_sheet(&mut workbook, "retry", &names)?;
    let mut sorted: Vec<&crate::input::OwnedRow> = rows.iter().collect();
    sorted.sort_by_key(|row| row.line);
    for (index, row) in sorted.iter().enumerate() {
        let sheet_row = index as u32 + 1;
        let row = row.as_row();
        sheet
            .write_number(sheet_row, 0, row.line as f64)
            .map_err(io_error)?;
        for column in 0..row.len().max(headers.len()).min(kept) {
            let at = column as u16 + 1;
            let written = match row.cell(column) {
                CellView::Text(text) | CellView::Error(text) => {
                    sheet.write_string(sheet_row, at, excel_text(text))
                }
                CellView::Int(value) => sheet.write_number(sheet_row, at, value as f64),
                CellView::Float(value) => sheet.write_number(sheet_row, at, value),
                CellView::Bool(value) => sheet.write_boolean(sheet_row, at, value),
                CellView::DateTime(value) => {
                    sheet.write_datetime_with_format(sheet_row, at, value, &date)
                }
                CellView::Empty | CellView::NoValue => Ok(&mut *sheet),
            };
            written.map_err(io_error)?;
        }
    }
    let last_column = (names.len() - 1) as u16;
    sheet
        .autofilter(0, 0, sorted.len() as u32, last_column)
        .map_err(io_error)?;
    save_private(&mut workbook, path)
}

/// `results.xlsx` for an XLSX input: `results.csv` as a workbook, every
/// ID a text cell (Excel would round an 18-digit number), the row number
/// and attempts as numbers. Read from `results_csv` row by row.
pub fn write_results_xlsx(
    results_csv: &Path,
    path: &Path,
    amounts_in_yuan: bool,
) -> std::io::Result<()> {
    let mut reader = csv::Reader::from_path(results_csv).map_err(std::io::Error::other)?;
    let mut headers: Vec<String> = reader
        .headers()
        .map_err(std::io::Error::other)?
        .iter()
        .map(|header| header.trim_start_matches('\u{feff}').to_owned())
        .collect();
    // For a clerk whose sheet is in yuan: the amount as they wrote it too.
    let fen_column = headers.iter().position(|h| h == "declarationAmount");
    let yuan_column = match (amounts_in_yuan, fen_column) {
        (true, Some(fen)) => {
            headers.push(YUAN_HEADER.to_owned());
            Some((fen, headers.len() - 1))
        }
        _ => None,
    };
    let numeric: Vec<bool> = headers
        .iter()
        .map(|header| header == "row" || header == "attempts")
        .collect();
    let mut workbook = Workbook::new();
    let names: Vec<&str> = headers.iter().map(String::as_str).collect();
    let sheet = header_sheet(&mut workbook, "results", &names)?;
    let mut record = csv::StringRecord::new();
    let mut sheet_row = 0u32;
    while reader
        .read_record(&mut record)
        .map_err(std::io::Error::other)?
    {
        sheet_row += 1;
        for (column, value) in record.iter().enumerate() {
            let at = column as u16;
            let number = numeric
                .get(column)
                .copied()
                .unwrap_or(false)
                .then(|| value.parse::<f64>().ok())
                .flatten();
            let written = match number {
                Some(number) => sheet.write_number(sheet_row, at, number),
                None if value.is_empty() => Ok(&mut *sheet),
                None => sheet.write_string(
                    sheet_row,
                    at,
                    excel_text(super::spreadsheet_safe::unprotected(value)),
                ),
            };
            written.map_err(io_error)?;
        }
        if let Some((fen, yuan)) = yuan_column
            && let Some(amount) = record.get(fen).and_then(|fen| fen.parse::<u64>().ok())
        {
            // Exact: fen are whole, and a yuan amount has two decimals.
            sheet
                .write_number_with_format(
                    sheet_row,
                    yuan as u16,
                    amount as f64 / 100.0,
                    &yuan_format(),
                )
                .map_err(io_error)?;
        }
    }
    sheet
        .autofilter(0, 0, sheet_row, headers.len().saturating_sub(1) as u16)
        .map_err(io_error)?;
    save_private(&mut workbook, path)
}

/// The column `results.xlsx` adds for a profile that reads yuan.
pub const YUAN_HEADER: &str = "declarationAmountYuan";

fn yuan_format() -> rust_xlsxwriter::Format {
    rust_xlsxwriter::Format::new().set_num_format("0.00")
}

#[cfg(test)]
mod tests {
    use calamine::{Data, Reader, Xlsx, open_workbook};

    use super::*;

    #[test]
    fn results_xlsx_keeps_ids_as_text_and_adds_yuan_for_a_yuan_profile() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("results.csv");
        std::fs::write(
            &csv,
            "\u{feff}row,paymentRequestId,declarationAmount,resultStatus\n\
             2,2026112200000000000000001,53296,S\n",
        )
        .unwrap();
        for (yuan, width) in [(false, 4), (true, 5)] {
            let path = dir.path().join(format!("results-{yuan}.xlsx"));
            write_results_xlsx(&csv, &path, yuan).unwrap();
            let mut book: Xlsx<_> = open_workbook(&path).unwrap();
            let range = book.worksheet_range("results").unwrap();
            let rows: Vec<&[Data]> = range.rows().collect();
            assert_eq!(rows[0].len(), width);
            assert_eq!(
                rows[1][1],
                Data::String("2026112200000000000000001".into()),
                "a 25-digit ID stays text"
            );
            if yuan {
                assert_eq!(rows[0][4], Data::String(YUAN_HEADER.into()));
                assert_eq!(rows[1][4], Data::Float(532.96));
            }
        }
    }

    #[test]
    fn rejected_xlsx_formats_id_columns_as_text_for_fixing_in_excel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejected.xlsx");
        let headers = ["支付单号".to_owned(), "金额".to_owned()];
        let fields = vec![("paymentRequestId", 0), ("declarationAmount.value", 1)];
        let mut book = RejectedWorkbook::create(&path, &headers, fields).unwrap();
        let record = csv::StringRecord::from(vec!["2026112200000000000000001", "x"]);
        book.write(&RowRef::from_record(2, &record), &[], &[], "; ")
            .unwrap();
        book.commit().unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut part = |name: &str| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
            text
        };
        let styles = part("xl/styles.xml");
        let sheet = part("xl/worksheets/sheet1.xml");
        // The text format "@", the cell style that uses it, and the
        // payment ID's column (C, after row and errors) carrying it.
        let id = styles
            .split("<numFmt ")
            .find(|format| format.contains("formatCode=\"@\""))
            .and_then(|format| format.split('"').nth(1))
            .unwrap_or_else(|| panic!("no text format in {styles}"));
        let text_style = styles
            .split("<cellXfs")
            .nth(1)
            .unwrap()
            .split("<xf ")
            .skip(1)
            .position(|xf| xf.contains(&format!("numFmtId=\"{id}\"")))
            .unwrap();
        let column = |n: u32| {
            sheet
                .split("<col ")
                .find(|col| col.starts_with(&format!("min=\"{n}\" max=\"{n}\"")))
                .map(|col| col.split("/>").next().unwrap_or_default().to_owned())
                .unwrap_or_default()
        };
        assert!(
            column(3).contains(&format!("style=\"{text_style}\"")),
            "{sheet}"
        );
        assert!(!column(4).contains("style="), "{sheet}");
    }
}
