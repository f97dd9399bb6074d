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
/// and the csv crate turns them into cells as it does for a file. The
/// scratch writer and the splitter are kept by the thread between rows:
/// building them was a tenth of a run's CPU besides signing.
pub fn serialize<W: io::Write>(csv: &mut csv::Writer<W>, row: &impl Serialize) -> csv::Result<()> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let scratch = &mut *scratch;
        scratch.line.borrow_mut().clear();
        let written = scratch.writer.serialize(row).and_then(|()| {
            scratch.writer.flush()?;
            Ok(())
        });
        if let Err(error) = written {
            // A row cut short mid-way must not run on into the next one.
            *scratch = Scratch::new();
            return Err(error);
        }
        let line = scratch.line.borrow();
        split_record(
            &mut scratch.splitter,
            &line,
            &mut scratch.cells,
            &mut scratch.ends,
        );
        let cells = &scratch.cells;
        let mut start = 0;
        let fields = scratch.ends.iter().map(|&end| {
            let field = &cells[start..end];
            start = end;
            field
        });
        write_record(csv, fields)
    })
}

/// What `serialize` keeps between rows.
struct Scratch {
    writer: csv::Writer<ScratchLine>,
    /// What the writer wrote: one line, emptied before each row.
    line: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    splitter: csv_core::Reader,
    cells: Vec<u8>,
    ends: Vec<usize>,
}

/// The scratch writer's output, shared with the splitter.
struct ScratchLine(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl io::Write for ScratchLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Scratch {
    fn new() -> Scratch {
        let line = std::rc::Rc::new(std::cell::RefCell::new(Vec::with_capacity(512)));
        Scratch {
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(ScratchLine(std::rc::Rc::clone(&line))),
            line,
            splitter: csv_core::ReaderBuilder::new().build(),
            cells: Vec::with_capacity(512),
            ends: Vec::with_capacity(32),
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new());
}

/// Cuts one CSV line (the writer's, ending in a line break) into its
/// cells: their bytes one after another in `cells`, where each ends in
/// `ends`.
fn split_record(
    splitter: &mut csv_core::Reader,
    line: &[u8],
    cells: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) {
    use csv_core::ReadRecordResult;
    cells.clear();
    cells.resize(line.len().max(1), 0);
    ends.clear();
    ends.resize(32, 0);
    let (mut input, mut written, mut ended) = (line, 0, 0);
    loop {
        let (result, read, wrote, ends_wrote) =
            splitter.read_record(input, &mut cells[written..], &mut ends[ended..]);
        input = &input[read..];
        written += wrote;
        ended += ends_wrote;
        match result {
            ReadRecordResult::OutputFull => cells.resize(cells.len() * 2, 0),
            ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            // A line without its break: the next call, with no input, ends
            // it (and the splitter is then reset for the next line).
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::Record | ReadRecordResult::End => break,
        }
    }
    if !line.ends_with(b"\n") {
        splitter.reset();
    }
    cells.truncate(written);
    ends.truncate(ended);
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

    #[test]
    fn a_row_that_fails_mid_way_leaves_nothing_for_the_next() {
        struct Failing;
        impl Serialize for Failing {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::{Error, SerializeStruct};
                let mut row = serializer.serialize_struct("Failing", 2)?;
                row.serialize_field("id", "HALF")?;
                Err(S::Error::custom("no second field"))
            }
        }
        #[derive(Serialize)]
        struct Row {
            id: &'static str,
            message: &'static str,
        }
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        assert!(serialize(&mut csv, &Failing).is_err());
        serialize(
            &mut csv,
            &Row {
                id: "P1",
                message: "m",
            },
        )
        .unwrap();
        let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
        assert_eq!(text, "P1,m\n");
    }

    #[test]
    fn rows_one_after_another_share_the_scratch_and_keep_their_own_cells() {
        #[derive(Serialize)]
        struct Row<'a> {
            id: &'a str,
            message: &'a str,
        }
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let long = "x".repeat(2_000);
        let rows = [
            Row {
                id: "P1",
                message: "two\nlines, \"quoted\"",
            },
            Row {
                id: "P2",
                message: "",
            },
            Row {
                id: "=P3",
                message: &long,
            },
            Row {
                id: "P4",
                message: "+86",
            },
        ];
        for row in &rows {
            serialize(&mut csv, row).unwrap();
        }
        let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let read: Vec<Vec<String>> = reader
            .records()
            .map(|record| record.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(
            read,
            vec![
                vec!["P1".to_owned(), "two\nlines, \"quoted\"".to_owned()],
                vec!["P2".to_owned(), String::new()],
                vec!["'=P3".to_owned(), long.clone()],
                vec!["P4".to_owned(), "'+86".to_owned()],
            ]
        );
    }
}
