//! Cells that a spreadsheet would run as formulas (OWASP's CSV-injection
//! rule): in every CSV the tool writes, a cell that begins with `=`, `+`,
//! `-`, `@`, a tab or a carriage return gets a `'` in front, which Excel,
//! LibreOffice and WPS show as text and do not run. The value is otherwise
//! unchanged; XLSX outputs write such values as text cells instead, and
//! `unprotected` takes the mark off when the tool reads its own CSV back.

use std::borrow::Cow;
use std::io;

use serde::Serialize;

fn runs_as_formula(cell: &[u8]) -> bool {
    matches!(
        cell.first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// `cell` as it goes into a CSV file: with a `'` in front when a
/// spreadsheet would run it.
pub fn protected(cell: &[u8]) -> Cow<'_, [u8]> {
    if runs_as_formula(cell) {
        let mut marked = Vec::with_capacity(cell.len() + 1);
        marked.push(b'\'');
        marked.extend_from_slice(cell);
        Cow::Owned(marked)
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell of a CSV file the tool wrote, without the `'` that `protected`
/// put in front.
pub fn unprotected(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if runs_as_formula(rest.as_bytes()) => rest,
        _ => cell,
    }
}

/// Writes one record, each cell protected.
pub fn write_record<W: io::Write, C: AsRef<[u8]>>(
    csv: &mut csv::Writer<W>,
    cells: impl IntoIterator<Item = C>,
) -> csv::Result<()> {
    let cells: Vec<C> = cells.into_iter().collect();
    csv.write_record(cells.iter().map(|cell| protected(cell.as_ref())))
}

/// Serializes `row` as one record, each cell protected (never a header:
/// `csv` must be built without headers and the caller writes them). The row is
/// written to a scratch record first: serde gives its fields in order,
/// and the csv crate turns them into cells as it does for a file.
pub fn serialize<W: io::Write>(csv: &mut csv::Writer<W>, row: &impl Serialize) -> csv::Result<()> {
    let mut scratch = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(512));
    scratch.serialize(row)?;
    let line = scratch
        .into_inner()
        .map_err(|error| csv::Error::from(io::Error::other(error.to_string())))?;
    let mut record = csv::ByteRecord::new();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_slice())
        .read_byte_record(&mut record)?;
    write_record(csv, record.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_a_quote_and_lose_it_when_read_back() {
        for cell in ["=1+1", "+86", "-5", "@SUM(A1)", "\tx", "\rx"] {
            let marked = protected(cell.as_bytes());
            assert_eq!(marked.as_ref(), format!("'{cell}").as_bytes());
            let marked = std::str::from_utf8(&marked).unwrap();
            assert_eq!(unprotected(marked), cell);
        }
        for cell in ["", "PAY1", "a=b", "'quoted", "张三"] {
            assert_eq!(protected(cell.as_bytes()).as_ref(), cell.as_bytes());
            assert_eq!(unprotected(cell), cell);
        }
    }

    #[test]
    fn a_serialized_row_has_its_formula_cells_protected() {
        #[derive(Serialize)]
        struct Row {
            id: &'static str,
            message: &'static str,
            count: i32,
        }
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        serialize(
            &mut csv,
            &Row {
                id: "P1",
                message: "=HYPERLINK(\"x\",\"y\"), \"quoted\"",
                count: -3,
            },
        )
        .unwrap();
        let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "P1,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\"), \"\"quoted\"\"\",'-3\n"
        );
    }
}
