//! `results.csv` and `retry.csv` of a run. Results are appended and flushed
//! as answers arrive (to `results.csv.partial`, so a crash keeps what was
//! answered), then sorted by row into `results.csv` through a temporary file
//! and a rename, so that a kill during the rewrite loses nothing.
//! `retry.csv` holds the original columns of every row still unknown, under
//! the input's own headers, so that it can be fed back as it is.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::AtomicFile;
use crate::input::{OwnedRow, UTF8_BOM};
use crate::outcome::ResultRow;

/// Writes `results.csv` as answers arrive and sorts it at the end.
pub struct ResultsWriter {
    partial_path: PathBuf,
    final_path: PathBuf,
    csv: csv::Writer<BufWriter<File>>,
    rows: u64,
}

impl ResultsWriter {
    pub fn create(dir: &Path) -> io::Result<ResultsWriter> {
        let partial_path = dir.join("results.csv.partial");
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&partial_path)?;
        let csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(file));
        Ok(ResultsWriter {
            partial_path,
            final_path: dir.join("results.csv"),
            csv,
            rows: 0,
        })
    }

    /// Appends one result and flushes it to the file.
    pub fn write(&mut self, result: &ResultRow) -> io::Result<()> {
        super::spreadsheet_safe::serialize(&mut self.csv, result)?;
        self.csv.flush()?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Sorts the results by row into `results.csv` (UTF-8 with BOM). Only
    /// each line's row number and place in the partial file are held in
    /// memory (24 bytes a row); the lines are copied as they were written.
    pub fn finish(mut self) -> io::Result<()> {
        self.csv.flush()?;
        let file = self
            .csv
            .into_inner()
            .map_err(|e| e.into_error())?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.sync_all()?;
        let mut places = line_places(&self.partial_path)?;
        places.sort_unstable_by_key(|place| place.row);
        let mut partial = BufReader::with_capacity(1 << 16, File::open(&self.partial_path)?);
        let mut out = BufWriter::with_capacity(1 << 16, AtomicFile::create(&self.final_path)?);
        out.write_all(UTF8_BOM)?;
        out.write_all(RESULT_HEADER.join(",").as_bytes())?;
        out.write_all(b"\n")?;
        // Answers arrive nearly in row order, so most moves are short hops
        // inside the read buffer.
        let mut position = 0u64;
        let mut line = Vec::new();
        for place in &places {
            partial.seek_relative(place.start as i64 - position as i64)?;
            line.resize((place.end - place.start) as usize, 0);
            partial.read_exact(&mut line)?;
            out.write_all(&line)?;
            position = place.end;
        }
        out.into_inner().map_err(|e| e.into_error())?.commit()?;
        std::fs::remove_file(&self.partial_path)
    }
}

/// Where one result line lies in `results.csv.partial`.
struct LinePlace {
    row: u64,
    start: u64,
    end: u64,
}

fn line_places(partial_path: &Path) -> io::Result<Vec<LinePlace>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(partial_path)?;
    let mut places = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut start = reader.position().byte();
    while reader.read_byte_record(&mut record)? {
        let end = reader.position().byte();
        let row = std::str::from_utf8(&record[0])
            .ok()
            .and_then(|row| row.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("a results line at byte {start} has no row"))
            })?;
        places.push(LinePlace { row, start, end });
        start = end;
    }
    Ok(places)
}

/// The header of `results.csv`.
pub const RESULT_HEADER: [&str; 19] = [
    "row",
    "paymentRequestId",
    "customsDeclarationRequestId",
    "referenceOrderId",
    "customsCode",
    "declarationAmount",
    "resultStatus",
    "resultCode",
    "resultMessage",
    "pspPaymentId",
    "pspDeclarationRequestId",
    "pspCustomsCode",
    "clearingChannel",
    "clearingTransactionId",
    "pspOrderAmount",
    "identityCheckResult",
    "attempts",
    "source",
    "retransmission",
];

/// Writes `retry.csv`: the input's headers, then the original cells of
/// each row given, in row order.
pub fn write_retry(path: &Path, headers: &[String], mut rows: Vec<OwnedRow>) -> io::Result<()> {
    rows.sort_by_key(|row| row.line);
    // Rows as the user gave them, certificate numbers included.
    let mut out = AtomicFile::create_private(path)?;
    out.write_all(UTF8_BOM)?;
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(out);
    super::spreadsheet_safe::write_record(&mut csv, headers)?;
    for row in &rows {
        let row = row.as_row();
        let width = row.len().max(headers.len());
        let cells: Vec<_> = (0..width).map(|c| row.cell(c).original_text()).collect();
        super::spreadsheet_safe::write_record(&mut csv, cells.iter().map(|cell| cell.as_bytes()))?;
    }
    csv.into_inner().map_err(|e| e.into_error())?.commit()
}

/// A line of `results.csv` read back. It must have every column of the
/// contract: a short or long line is a damaged file, never a row whose
/// missing values are made up (`ResultRow`'s defaults are for the journal's
/// older records).
pub fn result_from_record(record: &csv::StringRecord) -> csv::Result<ResultRow> {
    if record.len() != RESULT_HEADER.len() {
        let line = record.position().map_or(0, csv::Position::line);
        return Err(csv::Error::from(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line {line} has {} columns, not the {} of results.csv",
                record.len(),
                RESULT_HEADER.len()
            ),
        )));
    }
    record.deserialize(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_or_long_results_line_is_damage_not_defaults() {
        let full: Vec<String> = (0..RESULT_HEADER.len())
            .map(|i| match RESULT_HEADER[i] {
                "row" | "attempts" => "2".to_owned(),
                "resultStatus" => "S".to_owned(),
                "source" => "api".to_owned(),
                "retransmission" => "false".to_owned(),
                _ => "x".to_owned(),
            })
            .collect();
        let row = result_from_record(&csv::StringRecord::from(full.clone())).unwrap();
        assert_eq!(row.row, 2);
        let short = csv::StringRecord::from(full[..6].to_vec());
        let error = result_from_record(&short).unwrap_err().to_string();
        assert!(error.contains("has 6 columns, not the 19"), "{error}");
        let mut long = full;
        long.push("extra".to_owned());
        assert!(result_from_record(&csv::StringRecord::from(long)).is_err());
    }
    use crate::outcome::Status;

    #[test]
    fn results_are_sorted_by_row_with_the_contract_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ResultsWriter::create(dir.path()).unwrap();
        for row in [12, 3, 7] {
            writer
                .write(&ResultRow {
                    row,
                    result_status: Status::S,
                    attempts: 1,
                    ..ResultRow::default()
                })
                .unwrap();
        }
        writer.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        let text = text.strip_prefix('\u{feff}').unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), RESULT_HEADER.join(","));
        let rows: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(rows, ["3", "7", "12"]);
        assert!(!dir.path().join("results.csv.partial").exists());
    }

    #[test]
    fn lines_with_quotes_and_line_breaks_are_moved_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = ResultsWriter::create(dir.path()).unwrap();
        let written: Vec<ResultRow> = [(40, "a, \"quoted\"\nsecond line"), (2, "plain"), (9, "")]
            .into_iter()
            .map(|(row, message)| ResultRow {
                row,
                result_status: Status::F,
                result_message: message.into(),
                attempts: 2,
                ..ResultRow::default()
            })
            .collect();
        for result in &written {
            writer.write(result).unwrap();
        }
        writer.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("results.csv")).unwrap();
        let read: Vec<ResultRow> =
            csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes())
                .deserialize()
                .collect::<Result<_, _>>()
                .unwrap();
        let mut expected = written;
        expected.sort_by_key(|result| result.row);
        assert_eq!(read, expected);
    }
}
