//! Cells a person corrected on the page, laid over the file as it is read:
//! the export itself is never rewritten, so that row numbers stay the ones
//! the clerk sees and the original stays what was uploaded. Validation and
//! the run read the same corrected rows.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Cell, OwnedCells, OwnedRow};

/// The most corrected cells one upload keeps: a find-and-replace over a
/// few thousand rows fits many times over.
pub const MAX_EDITED_CELLS: usize = 50_000;

/// The longest corrected value: the longest field the API takes is 256
/// characters.
pub const MAX_EDIT_CHARS: usize = 512;

/// Corrected cells: row number → column (0-based) → the new text.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellEdits {
    rows: BTreeMap<u64, BTreeMap<usize, String>>,
    /// Cells in `rows`, counted as they are set.
    #[serde(skip)]
    cells: usize,
}

/// Why a correction was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EditRefused {
    #[error("a corrected value is longer than {MAX_EDIT_CHARS} characters")]
    TooLong,
    #[error("more than {MAX_EDITED_CELLS} cells are corrected")]
    TooMany,
}

impl CellEdits {
    /// The corrections kept in `path`, or none when it does not exist.
    pub fn read(path: &Path) -> std::io::Result<CellEdits> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut edits: CellEdits =
                    serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
                edits.cells = edits.rows.values().map(BTreeMap::len).sum();
                Ok(edits)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(CellEdits::default()),
            Err(error) => Err(error),
        }
    }

    /// Keeps the corrections in `path` (atomically).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        crate::report::write_json(path, self)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Corrected cells in all.
    pub fn len(&self) -> usize {
        self.cells
    }

    /// Sets the cell of `row` in `column` to `value`.
    pub fn set(&mut self, row: u64, column: usize, value: &str) -> Result<(), EditRefused> {
        if value.chars().count() > MAX_EDIT_CHARS {
            return Err(EditRefused::TooLong);
        }
        let known = self
            .rows
            .get(&row)
            .is_some_and(|cells| cells.contains_key(&column));
        if !known && self.len() >= MAX_EDITED_CELLS {
            return Err(EditRefused::TooMany);
        }
        if self
            .rows
            .entry(row)
            .or_default()
            .insert(column, value.to_owned())
            .is_none()
        {
            self.cells += 1;
        }
        Ok(())
    }

    /// The corrected value of one cell, if it was corrected.
    pub fn get(&self, row: u64, column: usize) -> Option<&str> {
        self.rows.get(&row)?.get(&column).map(String::as_str)
    }

    pub(super) fn touches(&self, row: u64) -> bool {
        self.rows.contains_key(&row)
    }

    /// A digest of the corrections, for a run's identity.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let text = serde_json::to_string(self).expect("maps of numbers and text serialise");
        crate::report::hex(&sha2::Sha256::digest(text.as_bytes()))
    }

    /// `row` with its corrections: corrected cells become text, as typed.
    pub(super) fn apply(&self, row: &mut OwnedRow) {
        let Some(cells) = self.rows.get(&row.line) else {
            return;
        };
        match &mut row.cells {
            OwnedCells::Csv(record) => {
                let width = record
                    .len()
                    .max(cells.keys().next_back().map_or(0, |last| last + 1));
                let mut edited = csv::StringRecord::with_capacity(record.as_slice().len(), width);
                for column in 0..width {
                    match cells.get(&column) {
                        Some(value) => edited.push_field(value),
                        None => edited.push_field(record.get(column).unwrap_or_default()),
                    }
                }
                *record = edited;
            }
            OwnedCells::Xlsx(row_cells) => {
                for (&column, value) in cells {
                    if row_cells.len() <= column {
                        row_cells.resize(column + 1, Cell::Empty);
                    }
                    row_cells[column] = if value.is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Text(value.clone())
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::input::{HeaderSearch, InputOptions, RowSource};

    fn options(edits: CellEdits) -> InputOptions {
        InputOptions {
            header: HeaderSearch {
                required: vec!["id".into()],
                fixed_row: None,
            },
            edits: Some(Arc::new(edits)),
            ..InputOptions::default()
        }
    }

    fn texts(source: &mut RowSource) -> Vec<(u64, Vec<String>)> {
        let mut rows = Vec::new();
        while let Some(row) = source.next_owned().unwrap() {
            let cells = row
                .as_row()
                .cells()
                .map(|cell| cell.original_text().into_owned())
                .collect();
            rows.push((row.line, cells));
        }
        rows
    }

    #[test]
    fn a_csv_is_read_with_its_corrections_and_only_those() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("in.csv");
        std::fs::write(&path, "title\nid,code\n1,BAD\n\n2,OK\n").unwrap();
        let mut edits = CellEdits::default();
        edits.set(3, 1, "FIXED").unwrap();
        // A column past the row's end widens it.
        edits.set(5, 2, "extra").unwrap();
        let mut source = RowSource::open(&path, &options(edits)).unwrap();
        assert_eq!(
            texts(&mut source),
            vec![
                (3, vec!["1".to_owned(), "FIXED".to_owned()]),
                (5, vec!["2".to_owned(), "OK".to_owned(), "extra".to_owned()]),
            ]
        );
        // The file itself is unchanged.
        assert!(std::fs::read_to_string(&path).unwrap().contains("BAD"));
    }

    #[test]
    fn a_workbook_cell_corrected_becomes_the_text_typed() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("in.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write(0, 0, "id").unwrap();
        sheet.write(0, 1, "amount").unwrap();
        sheet.write(1, 0, 1).unwrap();
        sheet.write(1, 1, 12.5).unwrap();
        sheet.write(2, 0, 2).unwrap();
        sheet.write(2, 1, 7).unwrap();
        workbook.save(&path).unwrap();
        let mut edits = CellEdits::default();
        edits.set(2, 1, "13.50").unwrap();
        let mut source = RowSource::open(&path, &options(edits)).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = source.next_row().unwrap() {
            rows.push((row.line, format!("{:?}", row.cell(1))));
        }
        assert_eq!(
            rows,
            vec![
                (2, "Text(\"13.50\")".to_owned()),
                (3, "Float(7.0)".to_owned())
            ]
        );
    }

    #[test]
    fn corrections_are_bounded() {
        let mut edits = CellEdits::default();
        assert_eq!(
            edits.set(1, 0, &"x".repeat(MAX_EDIT_CHARS + 1)),
            Err(EditRefused::TooLong)
        );
        for row in 0..MAX_EDITED_CELLS as u64 {
            edits.set(row, 0, "v").unwrap();
        }
        assert_eq!(edits.set(u64::MAX, 0, "v"), Err(EditRefused::TooMany));
        // Changing a corrected cell again is not one more.
        edits.set(0, 0, "w").unwrap();
        assert_eq!(edits.get(0, 0), Some("w"));
    }
}
