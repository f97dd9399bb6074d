//! The messages about rows, in English and Simplified Chinese
//! (`[output] language`), and what each rejection code means. Validation records what is wrong as a
//! [`RowMessage`] with its parameters; the text is made only where a person
//! reads it — `rejected.csv`, `rejected.xlsx`, the end-of-run table — in the
//! language asked for. Codes stay as they are spelled, in every language.

use std::fmt::Write;

mod codes;
mod other_rows;
mod reading;
mod value;

use super::Language;

pub use codes::{REJECTION_CODES, describe_code};

/// The first character of a value that starts like a formula, as a
/// message names it (a tab or carriage return has no visible form).
fn formula_character(first: char, language: Language) -> String {
    match first {
        '\t' => language.pick("a tab", "制表符").to_owned(),
        '\r' => language.pick("a carriage return", "回车符").to_owned(),
        other => match language {
            Language::En => format!("\"{other}\""),
            Language::ZhCn => format!("“{other}”"),
        },
    }
}

/// What is wrong with a row or one of its fields, with what the text needs.
/// Messages never carry a certificate number: it is personal data, so a
/// message may be kept (serialised) and said later in another language.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RowMessage {
    /// A CSV row over 1 MB or 16,384 fields: not read, so no value of it
    /// is known.
    RowTooLarge {
        too_many_fields: bool,
    },
    FieldCount {
        fields: usize,
        header: usize,
    },
    /// `column_missing`: the input has no column for the field at all.
    Required {
        column_missing: bool,
    },
    TooLong {
        length: usize,
        max: usize,
    },
    RegionNotCn {
        value: String,
    },
    CurrencyNotCny {
        value: String,
    },
    CustomsCodeNotAccepted {
        code: String,
        accepted: String,
    },
    AmountNotFen {
        text: String,
        looks_like_yuan: bool,
    },
    AmountNotYuan {
        text: String,
    },
    AmountTooManyDecimals {
        text: String,
    },
    AmountTooLarge {
        text: String,
    },
    AmountZero {
        yuan: bool,
    },
    IsSplitInvalid {
        value: String,
    },
    RequiredWhenSplit,
    CertificateTypeInvalid {
        value: String,
    },
    CertificateNoShape {
        characters: usize,
    },
    CertificateNoCheckCharacter,
    FullNameRequired,
    DateInvalid {
        value: String,
    },
    IdStoredAsNumber {
        digits: usize,
    },
    IdInScientificNotation {
        text: String,
    },
    CellError {
        text: String,
    },
    /// `cell`: its A1 reference, when known.
    FormulaWithoutValue {
        cell: Option<String>,
    },
    /// An ID or name that begins with `=`, `+`, `-`, `@`, a tab or a
    /// carriage return (or `'` and one of them): a spreadsheet would run it.
    StartsLikeFormula {
        first: char,
    },
    DuplicateRow {
        first_row: u64,
        request_id: String,
    },
    RequestIdReused {
        first_row: u64,
        request_id: String,
    },
    OrderAlreadyDeclared {
        first_row: u64,
        order_id: String,
        customs_code: String,
    },
    /// The ledger holds an S for this ID with a body that differs only in
    /// what a retransmission may change, and the window has not passed.
    RetransmissionTooEarly {
        earlier: Box<EarlierRun>,
        allowed_from: String,
    },
    /// The ledger holds an S for this ID with another difference.
    ChangedAfterDeclaration {
        earlier: Box<EarlierRun>,
    },
    /// The ledger holds an S for this order at this customs under
    /// another ID.
    OrderDeclaredEarlier {
        earlier: Box<EarlierRun>,
        order_id: String,
        customs_code: String,
    },
}

/// A declaration of an earlier run, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EarlierRun {
    pub request_id: String,
    /// The run's out folder.
    pub run: String,
    pub row: u64,
    /// When, as a person reads it.
    pub at: String,
}

impl RowMessage {
    /// The stable code, one of [`REJECTION_CODES`].
    pub fn code(&self) -> &'static str {
        use RowMessage::*;
        match self {
            RowTooLarge { .. } => "ROW_TOO_LARGE",
            FieldCount { .. } => "FIELD_COUNT",
            Required { .. } => "REQUIRED",
            TooLong { .. } => "TOO_LONG",
            RegionNotCn { .. } => "REGION_NOT_CN",
            CurrencyNotCny { .. } => "CURRENCY_NOT_CNY",
            CustomsCodeNotAccepted { .. } => "CUSTOMS_CODE_NOT_ACCEPTED",
            AmountNotFen { .. }
            | AmountNotYuan { .. }
            | AmountTooManyDecimals { .. }
            | AmountTooLarge { .. }
            | AmountZero { .. } => "AMOUNT_INVALID",
            IsSplitInvalid { .. } => "IS_SPLIT_INVALID",
            RequiredWhenSplit => "REQUIRED_WHEN_SPLIT",
            CertificateTypeInvalid { .. } => "CERTIFICATE_TYPE_INVALID",
            CertificateNoShape { .. } | CertificateNoCheckCharacter => "CERTIFICATE_NO_INVALID",
            FullNameRequired => "FULL_NAME_REQUIRED",
            DateInvalid { .. } => "DATE_INVALID",
            IdStoredAsNumber { .. } => "ID_STORED_AS_NUMBER",
            IdInScientificNotation { .. } => "ID_IN_SCIENTIFIC_NOTATION",
            CellError { .. } => "CELL_ERROR",
            FormulaWithoutValue { .. } => "FORMULA_WITHOUT_VALUE",
            StartsLikeFormula { .. } => "STARTS_LIKE_FORMULA",
            DuplicateRow { .. } => "DUPLICATE_ROW",
            RequestIdReused { .. } => "REQUEST_ID_REUSED",
            OrderAlreadyDeclared { .. } => "ORDER_ALREADY_DECLARED",
            RetransmissionTooEarly { .. } => "RETRANSMISSION_TOO_EARLY",
            ChangedAfterDeclaration { .. } => "CHANGED_AFTER_DECLARATION",
            OrderDeclaredEarlier { .. } => "ORDER_DECLARED_EARLIER",
        }
    }

    /// The message in `language`.
    pub fn text(&self, language: Language) -> String {
        let mut text = String::new();
        self.write(&mut text, language)
            .expect("writing to a String cannot fail");
        text
    }

    /// Writes the message; English and Chinese side by side, so that a
    /// message cannot be added in one language only.
    pub fn write(&self, out: &mut impl Write, language: Language) -> std::fmt::Result {
        use RowMessage::*;
        match self {
            RowTooLarge { .. }
            | FieldCount { .. }
            | Required { .. }
            | StartsLikeFormula { .. }
            | TooLong { .. }
            | IdStoredAsNumber { .. }
            | IdInScientificNotation { .. }
            | CellError { .. }
            | FormulaWithoutValue { .. } => self.write_reading(out, language),
            RegionNotCn { .. }
            | CurrencyNotCny { .. }
            | CustomsCodeNotAccepted { .. }
            | AmountNotFen { .. }
            | AmountNotYuan { .. }
            | AmountTooManyDecimals { .. }
            | AmountTooLarge { .. }
            | AmountZero { .. }
            | IsSplitInvalid { .. }
            | RequiredWhenSplit
            | CertificateTypeInvalid { .. }
            | CertificateNoShape { .. }
            | CertificateNoCheckCharacter
            | FullNameRequired
            | DateInvalid { .. } => self.write_value(out, language),
            DuplicateRow { .. }
            | RequestIdReused { .. }
            | OrderAlreadyDeclared { .. }
            | RetransmissionTooEarly { .. }
            | ChangedAfterDeclaration { .. }
            | OrderDeclaredEarlier { .. } => self.write_other_rows(out, language),
        }
    }
}

/// A field's label and its message as one text: `label: message`.
pub fn labelled(label: &str, message: &RowMessage, language: Language) -> String {
    let mut text = String::with_capacity(label.len() + 96);
    if !label.is_empty() {
        text.push_str(label);
        text.push_str(language.pick(": ", "："));
    }
    message
        .write(&mut text, language)
        .expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
pub(crate) mod tests;
