//! One input cell as the validator sees it, whatever the format: CSV cells
//! are text; XLSX cells keep their spreadsheet type so that a long ID stored
//! as a number, a date cell or an error cell can be recognised, turned into
//! the text the declare API wants, or refused with the reason.

use std::borrow::Cow;

use chrono::NaiveDateTime;

use crate::fields::Field;
use crate::i18n::RowMessage;

/// An owned spreadsheet cell (the XLSX reader's row buffer).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
    /// A spreadsheet error value such as `#N/A`.
    Error(String),
    /// A formula whose value was never saved (a file written by a program
    /// that does not calculate formulas).
    NoValue,
}

/// A borrowed view of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellView<'a> {
    Empty,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
    Error(&'a str),
    NoValue,
}

impl Cell {
    /// Roughly the bytes the cell holds, its text included.
    pub fn weight(&self) -> usize {
        let text = match self {
            Cell::Text(text) | Cell::Error(text) => text.len(),
            _ => 0,
        };
        std::mem::size_of::<Cell>() + text
    }

    pub fn view(&self) -> CellView<'_> {
        match self {
            Cell::Empty => CellView::Empty,
            Cell::Text(text) => CellView::Text(text),
            Cell::Int(value) => CellView::Int(*value),
            Cell::Float(value) => CellView::Float(*value),
            Cell::Bool(value) => CellView::Bool(*value),
            Cell::DateTime(value) => CellView::DateTime(*value),
            Cell::Error(text) => CellView::Error(text),
            Cell::NoValue => CellView::NoValue,
        }
    }
}

/// Why a cell's value cannot be trusted for a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellDamage {
    /// An ID stored as a number with this many digits: Excel keeps 15.
    LongNumberId { digits: usize },
    /// An ID written in scientific notation, e.g. `2.02108E+24`.
    ScientificId { text: String },
    /// A spreadsheet error value.
    ErrorValue { text: String },
    /// A formula with no saved value.
    FormulaWithoutValue,
}

impl CellDamage {
    /// The row message for this damage; `cell` is the A1 reference of the
    /// cell, named for a formula without a value.
    pub fn message(&self, cell: Option<String>) -> RowMessage {
        match self {
            CellDamage::LongNumberId { digits } => RowMessage::IdStoredAsNumber { digits: *digits },
            CellDamage::ScientificId { text } => {
                RowMessage::IdInScientificNotation { text: text.clone() }
            }
            CellDamage::ErrorValue { text } => RowMessage::CellError { text: text.clone() },
            CellDamage::FormulaWithoutValue => RowMessage::FormulaWithoutValue { cell },
        }
    }
}

/// `text` without white space at either end, as `str::trim` gives it.
/// Most cells start and end with a byte that no white space character
/// starts or ends with in UTF-8: those are answered without a search.
#[inline]
pub fn trimmed(text: &str) -> &str {
    let bytes = text.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return text;
    };
    // White space outside ASCII: U+0085 and U+00A0 (C2 ..), U+1680
    // (E1 ..), U+2000 to U+205F (E2 ..) and U+3000 (E3 ..); their last
    // bytes are 80 to 8A, 9F, A0, A8, A9 and AF.
    let plain_first = first.is_ascii_graphic() || (first >= 0x80 && !matches!(first, 0xC2..=0xE3));
    let plain_last = last.is_ascii_graphic()
        || matches!(last, 0x8B..=0x9E | 0xA1..=0xA7 | 0xAA..=0xAE | 0xB0..=0xFF);
    if plain_first && plain_last {
        text
    } else {
        text.trim()
    }
}

impl<'a> CellView<'a> {
    /// Whether the cell holds nothing but white space.
    pub fn is_blank(&self) -> bool {
        match self {
            CellView::Empty => true,
            CellView::Text(text) => trimmed(text).is_empty(),
            _ => false,
        }
    }

    /// The cell as the user gave it, for `rejected.csv` and `retry.csv`.
    pub fn original_text(&self) -> Cow<'a, str> {
        match *self {
            CellView::Empty => Cow::Borrowed(""),
            CellView::Text(text) => Cow::Borrowed(text),
            CellView::Int(value) => Cow::Owned(value.to_string()),
            CellView::Float(value) if value.abs() >= 1e15 && value.is_finite() => {
                // What Excel shows for such a number: the digits are gone.
                Cow::Owned(scientific_15(value))
            }
            CellView::Float(value) => Cow::Owned(decimal_15(value)),
            CellView::Bool(value) => Cow::Borrowed(if value { "true" } else { "false" }),
            CellView::DateTime(value) => Cow::Owned(if value.time() == chrono::NaiveTime::MIN {
                value.format("%Y-%m-%d").to_string()
            } else {
                value.format("%Y-%m-%d %H:%M:%S").to_string()
            }),
            CellView::Error(text) => Cow::Borrowed(text),
            CellView::NoValue => Cow::Borrowed(""),
        }
    }

    /// The text a field takes from this cell, untrimmed, or why the cell
    /// cannot be used for that field.
    pub fn field_text(&self, field: Field) -> Result<Cow<'a, str>, CellDamage> {
        match *self {
            CellView::Text(text) => {
                if field.is_id() && is_scientific_notation(trimmed(text)) {
                    return Err(CellDamage::ScientificId {
                        text: trimmed(text).to_owned(),
                    });
                }
                Ok(Cow::Borrowed(text))
            }
            CellView::Int(value) => {
                let digits = value.unsigned_abs().to_string().len();
                if field.is_id() && digits >= 16 {
                    return Err(CellDamage::LongNumberId { digits });
                }
                Ok(Cow::Owned(value.to_string()))
            }
            CellView::Float(value) => {
                if field.is_id() && value.is_finite() && value.abs() >= 1e15 {
                    let digits = format!("{:.0}", value.abs()).len();
                    return Err(CellDamage::LongNumberId { digits });
                }
                Ok(Cow::Owned(decimal_15(value)))
            }
            CellView::DateTime(value) => Ok(Cow::Owned(
                value.format("%Y-%m-%dT%H:%M:%S+08:00").to_string(),
            )),
            CellView::Error(text) => Err(CellDamage::ErrorValue {
                text: text.to_owned(),
            }),
            CellView::NoValue => Err(CellDamage::FormulaWithoutValue),
            CellView::Empty | CellView::Bool(_) => Ok(self.original_text()),
        }
    }
}

/// A cell's A1 reference: column 5 (0-based) of row 7 is `F7`.
pub fn a1_reference(column: usize, line: u64) -> String {
    let mut letters = Vec::new();
    let mut n = column + 1;
    while n > 0 {
        let rest = (n - 1) % 26;
        letters.push(b'A' + rest as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!(
        "{}{line}",
        String::from_utf8(letters).expect("ASCII letters")
    )
}

/// `2.02108E+24`, `1.2e15`: what a CSV saved from Excel holds for a long
/// number, and what no real ID looks like.
fn is_scientific_notation(text: &str) -> bool {
    // One pass that stops at the first byte that cannot continue the form
    // (checked on every ID cell): digits, an optional fraction, `E` or
    // `e`, an optional sign, digits to the end.
    let digits = |bytes: &[u8]| bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let bytes = text.as_bytes();
    let whole = digits(bytes);
    if whole == 0 {
        return false;
    }
    let mut rest = &bytes[whole..];
    if let [b'.', fraction @ ..] = rest {
        rest = &fraction[digits(fraction)..];
    }
    let [b'E' | b'e', exponent @ ..] = rest else {
        return false;
    };
    let exponent = match exponent {
        [b'+' | b'-', unsigned @ ..] => unsigned,
        unsigned => unsigned,
    };
    !exponent.is_empty() && digits(exponent) == exponent.len()
}

/// The shortest decimal with at most 15 significant digits, which is what a
/// spreadsheet shows: a stored 12.300000000000001 is 12.3, 100.0 is 100.
pub fn decimal_15(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{value:.0}");
    }
    let (negative, digits, exponent) = significant_15(value);
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if exponent < 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
        out.push_str(&digits);
    } else {
        let whole_len = exponent as usize + 1;
        if digits.len() <= whole_len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', whole_len - digits.len()));
        } else {
            out.push_str(&digits[..whole_len]);
            out.push('.');
            out.push_str(&digits[whole_len..]);
        }
    }
    out
}

/// `2.0210812E+24`: 15 significant digits in Excel's exponent style.
fn scientific_15(value: f64) -> String {
    let (negative, digits, exponent) = significant_15(value);
    let sign = if negative { "-" } else { "" };
    let (first, rest) = digits.split_at(1);
    let dot = if rest.is_empty() { "" } else { "." };
    let exponent_sign = if exponent < 0 { '-' } else { '+' };
    format!(
        "{sign}{first}{dot}{rest}E{exponent_sign}{:02}",
        exponent.abs()
    )
}

/// Sign, significant digits without trailing zeros, and decimal exponent of
/// the first digit, rounded to 15 significant digits.
fn significant_15(value: f64) -> (bool, String, i32) {
    let formatted = format!("{:.14e}", value.abs());
    let (mantissa, exponent) = formatted
        .split_once('e')
        .expect("exponent format always has an e");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (value.is_sign_negative() && value != 0.0, digits, exponent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scientific_notation_is_digits_a_fraction_an_exponent_and_nothing_else() {
        for (text, scientific) in [
            ("2.02108E+24", true),
            ("1E5", true),
            ("1e-5", true),
            ("1.E5", true),
            ("1e+05", true),
            (".5E3", false),
            ("1E", false),
            ("1E+", false),
            ("E5", false),
            ("1E5x", false),
            ("1E+-5", false),
            ("1.2.3E4", false),
            ("P1E5", false),
            ("１E5", false),
            ("12345678901234567890", false),
            ("", false),
        ] {
            assert_eq!(is_scientific_notation(text), scientific, "{text}");
        }
    }

    #[test]
    fn numbers_print_as_a_spreadsheet_shows_them() {
        assert_eq!(decimal_15(100.0), "100");
        // The float just above 12.3 (12.300000000000002), as a sum can leave it.
        let above = f64::from_bits(12.3f64.to_bits() + 1);
        assert_ne!(above, 12.3);
        assert_eq!(decimal_15(above), "12.3");
        assert_eq!(decimal_15(0.1 + 0.2), "0.3");
        assert_eq!(decimal_15(-2.5), "-2.5");
        assert_eq!(decimal_15(0.00125), "0.00125");
        assert_eq!(decimal_15(1e16), "10000000000000000");
        assert_eq!(decimal_15(123456789012.34), "123456789012.34");
    }

    #[test]
    fn long_numbers_in_id_columns_are_refused() {
        let long = CellView::Float(2.021_081_2e24);
        assert_eq!(
            long.field_text(Field::PaymentRequestId),
            Err(CellDamage::LongNumberId { digits: 25 })
        );
        assert_eq!(long.original_text(), "2.0210812E+24");
        let sixteen = CellView::Float(1_234_567_890_123_456.0);
        assert!(sixteen.field_text(Field::CertificateNo).is_err());
        // Fifteen digits survive a spreadsheet intact.
        let fifteen = CellView::Float(123_456_789_012_345.0);
        assert_eq!(
            fifteen.field_text(Field::PaymentRequestId).unwrap(),
            "123456789012345"
        );
        assert!(
            CellView::Int(1_234_567_890_123_456)
                .field_text(Field::ReferenceOrderId)
                .is_err()
        );
        // Outside ID columns the number is just a number.
        assert_eq!(
            CellView::Float(1e16)
                .field_text(Field::AmountValue)
                .unwrap(),
            "10000000000000000"
        );
    }

    #[test]
    fn scientific_text_in_id_columns_is_refused() {
        for text in ["2.02108E+24", "2E+24", "1.5e10", " 2.02108E+24 "] {
            assert!(
                matches!(
                    CellView::Text(text).field_text(Field::CustomsDeclarationRequestId),
                    Err(CellDamage::ScientificId { .. })
                ),
                "{text}"
            );
        }
        for text in ["E2021", "2021E", "ORDER-1E+5X", "20210812E"] {
            assert!(
                CellView::Text(text)
                    .field_text(Field::PaymentRequestId)
                    .is_ok(),
                "{text}"
            );
        }
        assert!(
            CellView::Text("1E+5")
                .field_text(Field::MerchantCustomsName)
                .is_ok()
        );
    }

    #[test]
    fn other_cell_types_become_api_text() {
        assert_eq!(
            CellView::Bool(true).field_text(Field::IsSplit).unwrap(),
            "true"
        );
        let date = chrono::NaiveDate::from_ymd_opt(2019, 11, 27)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(
            CellView::DateTime(date)
                .field_text(Field::EffectiveDate)
                .unwrap(),
            "2019-11-27T00:00:00+08:00"
        );
        assert_eq!(CellView::DateTime(date).original_text(), "2019-11-27");
        let error = CellView::Error("#N/A")
            .field_text(Field::AmountValue)
            .unwrap_err();
        assert_eq!(error.message(None).code(), "CELL_ERROR");
        assert!(
            error
                .message(None)
                .text(crate::i18n::Language::En)
                .contains("#N/A")
        );
    }
}

#[cfg(test)]
mod trim_properties {
    proptest::proptest! {
        /// The quick answer, for ends that cannot be white space, is
        /// `str::trim`'s.
        #[test]
        fn trimmed_is_str_trim(
            text in "[ a-z,\\t\\u{3000}\\u{a0}\\u{85}\\u{1680}\\u{2000}-\\u{200b}\\u{2028}\\u{2029}\\u{202f}\\u{205f}\\u{feff}\\u{80}-\\u{ff}张三伤!~\\u{1}\\u{7f}\\u{10000}-\\u{10010}]{0,8}"
        ) {
            proptest::prop_assert_eq!(super::trimmed(&text), text.trim());
        }
    }
}
