//! The files a command leaves behind: `rejected.csv` (UTF-8 with a BOM so
//! that Excel shows Chinese text) and `summary.json`. Each is written under a
//! temporary name and renamed when complete, so a reader never sees half a
//! file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::i18n::Language;
use crate::input::{RowRef, UTF8_BOM};

pub mod html;
mod rejected_xlsx;
mod results;
pub mod spreadsheet_safe;

use crate::validate::Problem;
pub use rejected_xlsx::{RejectedWorkbook, write_results_xlsx, write_retry_xlsx};
pub use results::{RESULT_HEADER, ResultsWriter, result_from_record, write_retry};

/// A file being written under `NAME.tmp`, renamed to `NAME` on commit and
/// removed if dropped uncommitted (a fatal error part-way through).
pub struct AtomicFile {
    path: PathBuf,
    temporary: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        AtomicFile::create_with_mode(path, 0o666)
    }

    /// For a file that holds personal data: readable by its owner only.
    pub fn create_private(path: &Path) -> io::Result<AtomicFile> {
        AtomicFile::create_with_mode(path, 0o600)
    }

    fn create_with_mode(path: &Path, mode: u32) -> io::Result<AtomicFile> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        // A temporary left by a killed run may have other permissions.
        let _ = std::fs::remove_file(&temporary);
        let file = options.open(&temporary)?;
        Ok(AtomicFile {
            path: path.to_owned(),
            temporary,
            writer: Some(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(mut self) -> io::Result<()> {
        let writer = self.writer.take().expect("present until commit");
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temporary, &self.path)
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("present until commit")
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

/// `rejected.csv`: `row`, `field`, `error`, then the row's original columns;
/// all of a row's problems on its one line. Beside it, `rejected.xlsx`.
pub struct RejectedWriter {
    csv: csv::Writer<AtomicFile>,
    workbook: RejectedWorkbook,
    width: usize,
    rows: u64,
    language: Language,
}

impl RejectedWriter {
    /// Writes `path` (`rejected.csv`) and the workbook beside it
    /// (`rejected.xlsx`); `field_columns` says which input column each
    /// field is read from, for the cells to mark.
    pub fn create(
        path: &Path,
        headers: &[String],
        field_columns: Vec<(&'static str, usize)>,
        language: Language,
    ) -> io::Result<RejectedWriter> {
        let workbook =
            RejectedWorkbook::create(&path.with_extension("xlsx"), headers, field_columns)?;
        let mut file = AtomicFile::create_private(path)?;
        file.write_all(UTF8_BOM)?;
        let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(file);
        let mut header: Vec<&str> = vec!["row", "field", "error"];
        header.extend(headers.iter().map(String::as_str));
        spreadsheet_safe::write_record(&mut csv, &header)?;
        Ok(RejectedWriter {
            csv,
            workbook,
            width: headers.len(),
            rows: 0,
            language,
        })
    }

    pub fn write(&mut self, row: &RowRef<'_>, problems: &[Problem]) -> io::Result<()> {
        let texts: Vec<String> = problems.iter().map(|p| p.text(self.language)).collect();
        let separator = self.language.list_separator();
        let line = row.line.to_string();
        let (fields, errors) =
            reason_cells(problems.iter().map(|p| p.field), &texts, self.language);
        let mut record: Vec<std::borrow::Cow<'_, str>> = vec![
            line.as_str().into(),
            fields.as_str().into(),
            errors.as_str().into(),
        ];
        // XLSX rows stop at their last filled cell; pad them to the header.
        let width = row.len().max(self.width);
        record.extend((0..width).map(|column| row.cell(column).original_text()));
        spreadsheet_safe::write_record(&mut self.csv, record.iter().map(|cell| cell.as_bytes()))?;
        self.workbook.write(row, problems, &texts, separator)?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn commit(self) -> io::Result<()> {
        self.csv
            .into_inner()
            .map_err(|e| e.into_error())?
            .commit()?;
        self.workbook.commit()
    }
}

/// Rows of an input, as summaries count them.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RowCounts {
    /// Non-blank data rows: valid + rejected + totals.
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    /// Entirely blank rows skipped.
    pub blank: u64,
    /// Non-blank rows above the header row (titles, export times) skipped.
    pub above_header: u64,
    /// Totals and footer rows (合计, 制表人, Total: …) skipped.
    pub totals: u64,
    /// Their row numbers.
    pub totals_rows: Vec<u64>,
    /// Valid rows whose ID card is long-term (长期): no expiry date sent.
    pub long_term_id_cards: u64,
}

impl RowCounts {
    /// Counts a totals or footer row.
    pub fn add_totals_row(&mut self, line: u64) {
        self.totals += 1;
        self.totals_rows.push(line);
    }
}

impl std::fmt::Display for RowCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows read: {} valid, {} rejected; {} blank rows skipped",
            self.read, self.valid, self.rejected, self.blank
        )?;
        match self.totals_rows.as_slice() {
            [] => Ok(()),
            rows => {
                let rows: Vec<String> = rows.iter().map(u64::to_string).collect();
                write!(f, "; totals rows skipped: {}", rows.join(", "))
            }
        }
    }
}

/// A moment as summaries write it: RFC 3339, local offset, milliseconds.
pub fn timestamp(time: chrono::DateTime<chrono::Local>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// A rejected row's fields (each once, in order) and its reasons joined,
/// as `rejected.csv` and the page list them.
pub fn reason_cells<'a>(
    fields: impl IntoIterator<Item = &'a str>,
    texts: &[String],
    language: crate::i18n::Language,
) -> (String, String) {
    let mut named: Vec<&str> = Vec::new();
    for field in fields {
        if !named.contains(&field) {
            named.push(field);
        }
    }
    (named.join("; "), texts.join(language.list_separator()))
}

/// An RFC 3339 time as the local minute a person reads (`2026-12-05
/// 14:20`); the text itself when it is no such time.
pub fn local_minute(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_owned(),
        |time| {
            time.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// Counts of problems by field and code, for summaries.
#[derive(Debug, Default)]
pub struct ProblemTally {
    counts: HashMap<(&'static str, &'static str), u64>,
}

/// One line of the problem tally (read back from a summary too).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProblemCount {
    pub field: std::borrow::Cow<'static, str>,
    pub code: std::borrow::Cow<'static, str>,
    pub count: u64,
}

impl ProblemTally {
    pub fn add(&mut self, problems: &[Problem]) {
        for problem in problems {
            *self
                .counts
                .entry((problem.field, problem.code()))
                .or_default() += 1;
        }
    }

    /// Most frequent first; ties by field and code.
    pub fn sorted(&self) -> Vec<ProblemCount> {
        let mut counts: Vec<ProblemCount> = self
            .counts
            .iter()
            .map(|(&(field, code), &count)| ProblemCount {
                field: field.into(),
                code: code.into(),
                count,
            })
            .collect();
        counts.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.field.cmp(&b.field))
                .then(a.code.cmp(&b.code))
        });
        counts
    }
}

/// Writes the most frequent problems as the end-of-run table shows them:
/// count, field, code and what the code means in `language`.
pub fn write_problem_table(
    out: &mut impl Write,
    counts: &[ProblemCount],
    language: Language,
) -> io::Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let heading = crate::i18n::report::ReportWords::of(language).most_frequent_errors;
    writeln!(out, "{heading}")?;
    for count in counts.iter().take(5) {
        writeln!(
            out,
            "  {:>7}  {:<40} {:<26} {}",
            count.count,
            count.field,
            count.code,
            crate::i18n::describe_code(&count.code, language)
        )?;
    }
    Ok(())
}

/// Writes a value as pretty JSON (no BOM), atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    serde_json::to_writer_pretty(&mut file, value)?;
    file.write_all(b"\n")?;
    file.commit()
}

/// A streaming reader of a CSV file this tool wrote (UTF-8, a BOM first,
/// a header row): `rejected.csv`, `results.csv`, `retry.csv`. Rows may
/// differ in width.
pub fn read_output_csv(path: &Path) -> io::Result<csv::Reader<impl Read + use<>>> {
    let mut file = File::open(path)?;
    let mut head = Vec::with_capacity(UTF8_BOM.len());
    (&mut file)
        .take(UTF8_BOM.len() as u64)
        .read_to_end(&mut head)?;
    if head == UTF8_BOM {
        head.clear();
    }
    Ok(csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(io::Cursor::new(head).chain(file)))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_csv_reads_the_same_with_or_without_its_bom() {
        let folder = tempfile::tempdir().unwrap();
        let text = "row,errors\n2,“bad”\n3\n";
        for (name, bom) in [("with.csv", UTF8_BOM), ("without.csv", &b""[..])] {
            let path = folder.path().join(name);
            std::fs::write(&path, [bom, text.as_bytes()].concat()).unwrap();
            let mut reader = read_output_csv(&path).unwrap();
            assert_eq!(reader.headers().unwrap(), vec!["row", "errors"], "{name}");
            let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            assert_eq!(rows[0], vec!["2", "“bad”"], "{name}");
            assert_eq!(rows[1], vec!["3"], "{name}: rows may be shorter");
        }
        // Shorter than a BOM: read as it is.
        let path = folder.path().join("short.csv");
        std::fs::write(&path, "a\n").unwrap();
        assert_eq!(
            read_output_csv(&path).unwrap().headers().unwrap(),
            vec!["a"]
        );
        let missing = read_output_csv(&folder.path().join("missing.csv"))
            .err()
            .unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
