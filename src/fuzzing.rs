//! The harness the fuzz targets (`fuzz/`) and the corpus replay test share:
//! it feeds arbitrary bytes through the same path `validate` takes (open
//! the file, decode, map the columns, check every row) and checks what must
//! hold for any input, so that a bad file can only end in a clear error,
//! never in a panic, a hang or a row that is neither valid nor rejected.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::fields::Field;
use crate::settings::{Overrides, Settings};
use crate::validate::{CrossRowIndex, Outcome, Verdict, validate_stream};

/// What one input came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InputVerdict {
    pub valid: u64,
    pub rejected: u64,
    pub totals: u64,
}

/// Writes `bytes` to a fresh file with the extension `extension` (`csv` or
/// `xlsx`) in `dir`, validates it as `validate` would with the built-in
/// defaults, removes the file, and checks the invariants: every row is
/// valid, rejected with a reason or a totals row, rows come in order, every valid body is
/// JSON whose values are all strings, and a fatal error names the file.
/// Returns the counts, or the fatal error's message. Panics when an
/// invariant fails, which is what a fuzzer reports.
pub fn check_input_bytes(
    dir: &Path,
    extension: &str,
    bytes: &[u8],
) -> Result<InputVerdict, String> {
    static NEXT_FILE: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "fuzz-{}-{}.{extension}",
        std::process::id(),
        NEXT_FILE.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(&name);
    std::fs::write(&path, bytes).expect("the fuzz folder is writable");
    let result = check_file(path.clone());
    let _ = std::fs::remove_file(&path);
    if let Err(message) = &result {
        assert!(
            message.contains(&name),
            "a fatal error must name the file: {message}"
        );
    }
    result
}

/// The CSV file a `csv_input` fuzz input stands for: an odd first byte
/// puts the canonical header row in front of the rest, so that most inputs
/// reach the row rules instead of stopping at a missing column.
pub fn csv_file_from_fuzz_input(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    let mut file = Vec::with_capacity(data.len() + 512);
    if mode % 2 == 1 {
        let header: Vec<&str> = Field::ALL.iter().map(|field| field.name()).collect();
        file.extend_from_slice(header.join(",").as_bytes());
        file.push(b'\n');
    }
    file.extend_from_slice(rest);
    Some(file)
}

fn check_file(input: PathBuf) -> Result<InputVerdict, String> {
    let settings = Settings::resolve(Config::default(), None, Overrides::default());
    let (mut source, rules) =
        crate::run::open_input(&input, &settings.input).map_err(|e| format!("{e:#}"))?;
    let mut verdict = InputVerdict::default();
    let mut last_line = source.header_line();
    validate_stream(
        &mut source,
        &rules,
        &mut CrossRowIndex::default(),
        1,
        |outcome: Outcome| -> anyhow::Result<()> {
            assert!(
                outcome.row.line > last_line,
                "row {} came after row {last_line}",
                outcome.row.line
            );
            last_line = outcome.row.line;
            match outcome.verdict {
                Verdict::Valid(valid) => {
                    assert_body_of_strings(&valid.request.to_body());
                    verdict.valid += 1;
                }
                Verdict::Totals => verdict.totals += 1,
                Verdict::Rejected(problems) => {
                    assert!(!problems.is_empty(), "a rejected row without a reason");
                    for problem in &problems {
                        assert!(
                            !problem.text(crate::i18n::Language::En).is_empty(),
                            "{problem:?} has no message"
                        );
                    }
                    verdict.rejected += 1;
                }
            }
            Ok(())
        },
    )
    .map_err(|e| format!("{e:#}"))?;
    Ok(verdict)
}

/// Every value in a declare body is a JSON string (the API's rule).
pub fn assert_body_of_strings(body: &[u8]) {
    fn walk(value: &serde_json::Value) {
        match value {
            serde_json::Value::Object(fields) => fields.values().for_each(walk),
            serde_json::Value::String(text) => assert!(!text.is_empty(), "an empty value"),
            other => panic!("a body value that is not a string: {other}"),
        }
    }
    let value: serde_json::Value = serde_json::from_slice(body).expect("a body is JSON");
    assert!(value.is_object(), "a body is a JSON object");
    walk(&value);
}

/// Amount parsing on any text: no panic, and every accepted amount equals
/// what a plain digit-by-digit reading of the text gives (the oracle below
/// never converts through a number wider than the digits), and prints
/// back to the same fen in both units.
pub fn check_amount_text(text: &str) {
    use crate::validate::rules::{parse_fen, parse_yuan};
    if let Ok(fen) = parse_fen(text) {
        assert!(fen >= 1);
        assert_eq!(strip_leading_zeros(text), fen.to_string(), "fen {text:?}");
        assert_eq!(parse_yuan(&yuan_text(fen)), Ok(fen));
    }
    if let Ok(fen) = parse_yuan(text) {
        assert!(fen >= 1);
        let number = text.strip_prefix(['¥', '￥']).map_or(text, str::trim_start);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        assert!(
            fraction.len() <= 2,
            "yuan {text:?} has more than two places"
        );
        let digits = format!("{}{fraction:0<2}", whole.replace(',', ""));
        assert_eq!(
            strip_leading_zeros(&digits),
            fen.to_string(),
            "yuan {text:?}"
        );
        assert_eq!(parse_fen(&fen.to_string()), Ok(fen));
        assert_eq!(parse_yuan(&yuan_text(fen)), Ok(fen));
    }
}

/// `fen` written as yuan with two places, e.g. 1234 → `12.34`.
pub fn yuan_text(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn strip_leading_zeros(digits: &str) -> &str {
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() { "0" } else { stripped }
}

/// The resident ID check on any text: no panic; an accepted ID is the
/// text upper-cased, 17 digits and the check character the weights give;
/// and the first 17 digits of the text, when it has them, completed with
/// their check character, are accepted while every other last character
/// is refused.
pub fn check_resident_id_text(text: &str) {
    use crate::validate::rules::{check_resident_id, id_check_char};
    if let Ok(id) = check_resident_id(text) {
        assert_eq!(id, text.to_ascii_uppercase());
        let bytes = id.as_bytes();
        assert_eq!(bytes.len(), 18);
        let first17: &[u8; 17] = bytes[..17].try_into().expect("18 bytes");
        assert!(first17.iter().all(u8::is_ascii_digit));
        assert_eq!(id_check_char(first17), bytes[17]);
    }
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_digit).take(17).collect();
    if let Ok(first17) = <[u8; 17]>::try_from(digits) {
        let check = id_check_char(&first17);
        for last in b"0123456789X".iter().copied() {
            let mut candidate = first17.to_vec();
            candidate.push(last);
            let candidate = String::from_utf8(candidate).expect("ASCII");
            assert_eq!(
                check_resident_id(&candidate).is_ok(),
                last == check,
                "{candidate}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file kept under `fuzz/<kind>/<target>/`: the seeds, the
    /// minimised corpus, and inputs that once crashed.
    fn kept_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut inputs = Vec::new();
        for kind in ["seeds", "corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                inputs.push((path, bytes));
            }
        }
        inputs.sort();
        inputs
    }

    #[test]
    fn kept_fuzz_inputs_still_pass_the_harness() {
        let dir = tempfile::tempdir().unwrap();
        let csv = kept_inputs("csv_input");
        assert!(csv.len() >= 4, "the CSV seeds are kept");
        let mut valid_rows = 0;
        for (_, data) in &csv {
            if let Some(file) = csv_file_from_fuzz_input(data)
                && let Ok(verdict) = check_input_bytes(dir.path(), "csv", &file)
            {
                valid_rows += verdict.valid;
            }
        }
        // The sample orders among the seeds reach the row rules.
        assert!(valid_rows >= 20, "{valid_rows} valid rows");
        let xlsx = kept_inputs("xlsx_input");
        assert!(!xlsx.is_empty());
        for (_, data) in &xlsx {
            let _ = check_input_bytes(dir.path(), "xlsx", data);
        }
        for (_, data) in kept_inputs("amounts") {
            check_amount_text(&String::from_utf8_lossy(&data));
        }
        for (_, data) in kept_inputs("resident_id") {
            check_resident_id_text(&String::from_utf8_lossy(&data));
        }
    }

    #[test]
    fn the_sample_orders_come_out_as_the_readme_says() {
        let dir = tempfile::tempdir().unwrap();
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let csv = std::fs::read(samples.join("orders.csv")).unwrap();
        let xlsx = std::fs::read(samples.join("orders.xlsx")).unwrap();
        let expected = InputVerdict {
            valid: 20,
            rejected: 5,
            totals: 0,
        };
        assert_eq!(check_input_bytes(dir.path(), "csv", &csv), Ok(expected));
        assert!(check_input_bytes(dir.path(), "xlsx", &xlsx).unwrap().valid > 0);
        let garbage = check_input_bytes(dir.path(), "xlsx", b"not a zip").unwrap_err();
        assert!(garbage.contains("fuzz-"), "{garbage}");
    }
}
