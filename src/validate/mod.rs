//! Turning an input row into a declare request or a rejection. The column
//! map is resolved once from the header and the config; each row is then
//! normalised (trimmed, defaults applied, units and words converted) and
//! checked against every field rule of the spec, then against earlier rows.
//! A bad row is data — a list of problems — never an error that stops a run.

mod columns;
mod cross_row;
pub mod rules;
mod stream;
mod valid_fields;

use std::borrow::Cow;
use std::sync::Arc;

use crate::fields::Field;
use crate::i18n::{Language, RowMessage, labelled};
use crate::input::{CellDamage, CellView, RowRef, a1_reference, trimmed};
use crate::protocol::DeclareRequest;
#[cfg(test)]
use crate::protocol::{Amount, BuyerCertificate, Customs, MerchantCustomsInfo};

pub use columns::{ColumnMap, MappingError};
pub use cross_row::{Conflict, CrossRowIndex, Fingerprint};
pub use stream::{Outcome, validate_stream};
use valid_fields::{CertificateFields, HolderNameFields, RequestFields};

/// The character that makes `value` run as a formula when a spreadsheet
/// opens a file holding it: `=`, `+`, `-`, `@`, a tab or a carriage return
/// first (OWASP's CSV-injection list), also behind the `'` that the tool's
/// own CSV files put before such a value.
pub fn starts_like_formula(value: &str) -> Option<char> {
    let mut chars = value.chars();
    let first = match chars.next()? {
        '\'' => chars.next()?,
        other => other,
    };
    matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r').then_some(first)
}

/// The unit of `declarationAmount.value` in the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmountUnit {
    #[default]
    Fen,
    Yuan,
}

/// One thing wrong with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The canonical field name, or `row` for the row as a whole.
    pub field: &'static str,
    /// How the column is named in messages; empty for the row as a whole.
    pub label: Arc<str>,
    /// What is wrong and how to fix it.
    pub message: RowMessage,
}

impl Problem {
    /// A stable short code, for summaries.
    pub fn code(&self) -> &'static str {
        self.message.code()
    }

    /// The message as a person reads it, naming the column.
    pub fn text(&self, language: Language) -> String {
        labelled(&self.label, &self.message, language)
    }
}

/// A row that passed every rule: the request to send. Its bytes are built
/// where they are sent ([`DeclareRequest::to_body`]); `validate` never
/// needs them.
#[derive(Debug, Clone)]
pub struct ValidRow {
    pub request: DeclareRequest,
    pub fingerprint: Fingerprint,
    /// The expiry date said 长期 (a long-term ID card) and was left out.
    pub long_term_expiry: bool,
}

/// What a caller keeps of each valid row, decided on the worker that
/// checked it: the whole request (`run` sends it), or only what the
/// cross-row rules and the counts need (`validate`, which then builds no
/// request at all).
pub trait KeptRow: Send {
    fn keep(valid: &ValidFields<'_>) -> Self;
    fn fingerprint(&self) -> &Fingerprint;
    fn long_term_expiry(&self) -> bool;
    /// The request, when it is kept.
    fn request(&self) -> Option<&DeclareRequest>;
}

/// A valid row as the rules leave it, before the caller keeps what it
/// needs: its fields borrowed from the row.
pub struct ValidFields<'v> {
    fields: RequestFields<'v>,
    fingerprint: Fingerprint,
    long_term_expiry: bool,
}

impl KeptRow for Box<ValidRow> {
    fn keep(valid: &ValidFields<'_>) -> Self {
        Box::new(ValidRow {
            request: valid.fields.to_request(),
            fingerprint: valid.fingerprint,
            long_term_expiry: valid.long_term_expiry,
        })
    }

    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn long_term_expiry(&self) -> bool {
        self.long_term_expiry
    }

    fn request(&self) -> Option<&DeclareRequest> {
        Some(&self.request)
    }
}

/// A valid row counted, its request dropped.
#[derive(Debug, Clone, Copy)]
pub struct CountedRow {
    pub fingerprint: Fingerprint,
    pub long_term_expiry: bool,
}

impl KeptRow for CountedRow {
    fn keep(valid: &ValidFields<'_>) -> Self {
        CountedRow {
            fingerprint: valid.fingerprint,
            long_term_expiry: valid.long_term_expiry,
        }
    }

    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn long_term_expiry(&self) -> bool {
        self.long_term_expiry
    }

    fn request(&self) -> Option<&DeclareRequest> {
        None
    }
}

/// The outcome of checking one row.
#[derive(Debug, Clone)]
pub enum Verdict<V = Box<ValidRow>> {
    Valid(V),
    Rejected(Vec<Problem>),
    /// A totals or footer row (合计, 制表人, Total: …): skipped before any
    /// other check, never rejected or sent.
    Totals,
}

/// The labels that start a totals or footer row (any case).
const TOTALS_LABELS: [&str; 10] = [
    "合计",
    "总计",
    "小计",
    "制表人",
    "审核",
    "备注",
    "total",
    "subtotal",
    "sum",
    "prepared by",
];

/// Whether `text` is a totals label alone, or a label followed by a colon
/// (either width) and more text: "合计", "Total:", "制表人：张三".
pub fn is_totals_label(text: &str) -> bool {
    let text = text.trim_start();
    // Checked on every row, and most first cells are IDs: no label starts
    // with a digit.
    if text.as_bytes().first().is_none_or(u8::is_ascii_digit) {
        return false;
    }
    let text = text.trim_end();
    let starts_with_label = TOTALS_LABELS.iter().any(|label| {
        text.get(..label.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(label))
    });
    if !starts_with_label {
        return false;
    }
    let label = match text.find([':', '：']) {
        Some(at) => text[..at].trim(),
        None => text,
    };
    label.len() <= "prepared by".len()
        && TOTALS_LABELS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(label))
}

/// The single-row rules in force for one input. They keep no state, so
/// rows can be checked on several threads at once; the cross-row rules are
/// [`CrossRowIndex`], applied in row order.
pub struct RowRules {
    map: ColumnMap,
    customs_codes: Vec<String>,
    amount_unit: AmountUnit,
    /// CSV rows must have exactly this many fields.
    expected_width: Option<usize>,
}

/// Every rule, single- and cross-row, for checking rows one by one.
pub struct Validator {
    rules: RowRules,
    index: CrossRowIndex,
}

impl Validator {
    pub fn new(rules: RowRules) -> Validator {
        Validator {
            rules,
            index: CrossRowIndex::default(),
        }
    }

    /// Checks one non-blank row against every rule and the rows before it.
    pub fn check(&mut self, row: &RowRef<'_>) -> Verdict {
        let verdict = self.rules.check(row);
        self.rules.claim(&mut self.index, row, verdict)
    }

    /// Valid rows so far.
    pub fn valid_rows(&self) -> usize {
        self.index.len()
    }
}

/// A row's fields after trimming and defaults; `None` where the cell was
/// unusable (its problem is already recorded).
struct Values<'a> {
    text: [Option<Cow<'a, str>>; 18],
}

impl Values<'_> {
    fn get(&self, field: Field) -> Option<&str> {
        self.text[field.index()].as_deref()
    }

    /// The value when the cell gave one (not empty, not damaged).
    fn given(&self, field: Field) -> Option<&str> {
        self.get(field).filter(|v| !v.is_empty())
    }
}

impl RowRules {
    pub fn new(
        map: ColumnMap,
        customs_codes: Vec<String>,
        amount_unit: AmountUnit,
        expected_width: Option<usize>,
    ) -> RowRules {
        RowRules {
            map,
            customs_codes,
            amount_unit,
            expected_width,
        }
    }

    /// Applies the cross-row rules to a row's verdict, in row order.
    pub fn claim<V: KeptRow>(
        &self,
        index: &mut CrossRowIndex,
        row: &RowRef<'_>,
        verdict: Verdict<V>,
    ) -> Verdict<V> {
        match verdict {
            Verdict::Valid(valid) => match index.claim(row.line, valid.fingerprint()) {
                Ok(()) => Verdict::Valid(valid),
                Err(conflict) => Verdict::Rejected(vec![self.conflict_problem(row, conflict)]),
            },
            Verdict::Rejected(mut problems) => {
                // Told with its other errors, so that a fix does not make a
                // second declaration of an order.
                if let Some(problem) = self.rejected_row_conflict(index, row) {
                    problems.push(problem);
                }
                Verdict::Rejected(problems)
            }
            Verdict::Totals => Verdict::Totals,
        }
    }

    /// The cross-row conflict of a rejected row, from the fields it gives:
    /// its request ID, and its order at its customs when its isSplit can be
    /// read (it says which ID is the order).
    fn rejected_row_conflict(&self, index: &CrossRowIndex, row: &RowRef<'_>) -> Option<Problem> {
        use Field::*;
        if row.fault().is_some() {
            return None;
        }
        let mut ignored = Vec::new();
        let values = self.values(row, &mut ignored);
        let request_id = values.given(CustomsDeclarationRequestId);
        let customs_code = values.given(CustomsCode).map(str::to_uppercase);
        let split = values
            .given(IsSplit)
            .and_then(|text| rules::parse_is_split(text).ok());
        let order_id = match split {
            Some(true) => values.given(ReferenceOrderId),
            Some(false) => values.given(PaymentRequestId),
            None => None,
        };
        let order = customs_code.as_deref().zip(order_id);
        let conflict = index.conflict_of(request_id, order)?;
        Some(self.conflict_problem_for(
            conflict,
            request_id.unwrap_or_default(),
            order_id.unwrap_or_default(),
            customs_code.as_deref().unwrap_or_default(),
            split == Some(true),
        ))
    }

    /// The input column of each field that has one, by canonical name.
    pub fn field_columns(&self) -> Vec<(&'static str, usize)> {
        Field::ALL
            .iter()
            .filter_map(|&field| Some((field.name(), self.map.column(field)?)))
            .collect()
    }

    /// Whether a row is a totals or footer row: its first non-empty cell
    /// is a totals label, and it has no request ID and no payment ID other
    /// than that label.
    pub fn is_totals_row(&self, row: &RowRef<'_>) -> bool {
        let Some((first_column, first)) =
            row.cells().enumerate().find(|(_, cell)| !cell.is_blank())
        else {
            return false;
        };
        if !matches!(first, CellView::Text(text) if is_totals_label(text)) {
            return false;
        }
        let empty_or_label = |field: Field| match self.map.column(field) {
            None => true,
            Some(column) => column == first_column || row.cell(column).is_blank(),
        };
        empty_or_label(Field::PaymentRequestId)
            && empty_or_label(Field::CustomsDeclarationRequestId)
    }

    /// Checks one non-blank row against the single-row rules.
    pub fn check(&self, row: &RowRef<'_>) -> Verdict {
        self.check_keeping(row)
    }

    /// [`RowRules::check`], keeping `V` of a valid row.
    pub fn check_keeping<V: KeptRow>(&self, row: &RowRef<'_>) -> Verdict<V> {
        if let Some(fault) = row.fault() {
            return Verdict::Rejected(vec![Problem {
                field: "row",
                label: Arc::from(""),
                message: RowMessage::RowTooLarge {
                    too_many_fields: fault == crate::input::RowFault::TooManyFields,
                },
            }]);
        }
        // Before any other check: a totals row is no order at all.
        if self.is_totals_row(row) {
            return Verdict::Totals;
        }
        if let Some(width) = self.expected_width
            && row.len() != width
        {
            return Verdict::Rejected(vec![Problem {
                field: "row",
                label: Arc::from(""),
                message: RowMessage::FieldCount {
                    fields: row.len(),
                    header: width,
                },
            }]);
        }
        let mut problems = Vec::new();
        let values = self.values(row, &mut problems);
        let fields = self.build(&values, &mut problems);
        let fields = match fields {
            Some(fields) if problems.is_empty() => fields,
            _ => return Verdict::Rejected(problems),
        };
        let long_term_expiry = fields.certificate.is_some()
            && values
                .given(Field::ExpireDate)
                .is_some_and(rules::is_long_term);
        Verdict::Valid(V::keep(&ValidFields {
            fingerprint: Fingerprint::of(&fields),
            fields,
            long_term_expiry,
        }))
    }

    fn values<'a>(&'a self, row: &RowRef<'a>, problems: &mut Vec<Problem>) -> Values<'a> {
        let mut text: [Option<Cow<'a, str>>; 18] = Default::default();
        let certificate_given = self.map.columns[Field::CertificateNo.index()]
            .is_some_and(|column| !row.cell(column).is_blank());
        for field in Field::ALL {
            let cell = self.map.columns[field.index()].map(|column| row.cell(column));
            let value = match cell.map(|cell| cell.field_text(field)) {
                None => Cow::Borrowed(""),
                Some(Ok(Cow::Borrowed(text))) => Cow::Borrowed(trimmed(text)),
                Some(Ok(Cow::Owned(text))) => Cow::Owned(trimmed(&text).to_owned()),
                Some(Err(damage)) => {
                    // Certificate cells matter only when a certificate is sent.
                    let is_certificate_part = field.name().starts_with("buyerCertificate.");
                    if !is_certificate_part || certificate_given {
                        let cell = match (&damage, self.map.columns[field.index()]) {
                            (CellDamage::FormulaWithoutValue, Some(column)) => {
                                Some(a1_reference(column, row.line))
                            }
                            _ => None,
                        };
                        let mut message = damage.message(cell);
                        // Not even the digits a spreadsheet kept of it.
                        if field == Field::CertificateNo
                            && let RowMessage::IdInScientificNotation { text } = &mut message
                        {
                            text.clear();
                        }
                        problems.push(self.problem(field, message));
                    }
                    continue;
                }
            };
            // Chinese exports write IDs, codes, amounts and dates in
            // full-width forms; names are sent as given.
            let value = if field.is_name() {
                value
            } else {
                rules::half_width(value)
            };
            // A default alone never creates a buyer certificate.
            let value = match (&self.map.defaults[field.index()], field) {
                (Some(default), f) if value.is_empty() && f != Field::CertificateNo => {
                    Cow::Borrowed(default.as_str())
                }
                _ => value,
            };
            text[field.index()] = Some(value);
        }
        Values { text }
    }

    /// A problem with a field of a row, naming its column.
    pub fn problem(&self, field: Field, message: RowMessage) -> Problem {
        Problem {
            field: field.name(),
            label: Arc::clone(&self.map.labels[field.index()]),
            message,
        }
    }

    /// The value of a required field, recording a problem when it is empty.
    fn required<'v>(
        &self,
        values: &'v Values<'_>,
        field: Field,
        problems: &mut Vec<Problem>,
    ) -> Option<&'v str> {
        match values.get(field) {
            Some("") => {
                let column_missing = self.map.columns[field.index()].is_none();
                problems.push(self.problem(field, RowMessage::Required { column_missing }));
                None
            }
            other => other,
        }
    }

    /// The value if it fits the spec's maximum length.
    fn within_length<'v>(
        &self,
        field: Field,
        value: Option<&'v str>,
        problems: &mut Vec<Problem>,
    ) -> Option<&'v str> {
        let value = value?;
        // A value no longer in bytes than the limit fits in characters too.
        if let Some(max) = field.max_chars().filter(|&max| value.len() > max) {
            let length = value.chars().count();
            if length > max {
                problems.push(self.problem(field, RowMessage::TooLong { length, max }));
                return None;
            }
        }
        if let Some(first) = starts_like_formula(value) {
            problems.push(self.problem(field, RowMessage::StartsLikeFormula { first }));
            return None;
        }
        Some(value)
    }

    fn required_text<'v>(
        &self,
        values: &'v Values<'_>,
        field: Field,
        problems: &mut Vec<Problem>,
    ) -> Option<&'v str> {
        let value = self.required(values, field, problems);
        self.within_length(field, value, problems)
    }

    fn optional_text<'v>(
        &self,
        values: &'v Values<'_>,
        field: Field,
        problems: &mut Vec<Problem>,
    ) -> Option<&'v str> {
        self.within_length(field, values.given(field), problems)
    }

    /// Whether the field holds `wanted` (in any case), which is then the
    /// value sent.
    fn exact(
        &self,
        values: &Values<'_>,
        field: Field,
        wanted: &str,
        refusal: fn(String) -> RowMessage,
        problems: &mut Vec<Problem>,
    ) -> Option<()> {
        let value = self.required(values, field, problems)?;
        if value.eq_ignore_ascii_case(wanted) {
            Some(())
        } else {
            problems.push(self.problem(field, refusal(value.to_owned())));
            None
        }
    }

    /// Applies every field rule; `None` when some field is unusable.
    fn build<'v>(
        &self,
        values: &'v Values<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<RequestFields<'v>> {
        use Field::*;
        let payment_request_id = self.required_text(values, PaymentRequestId, problems);
        let request_id = self.required_text(values, CustomsDeclarationRequestId, problems);
        let customs_code = self.customs_code(values, problems);
        let region = self.exact(
            values,
            Region,
            "CN",
            |value| RowMessage::RegionNotCn { value },
            problems,
        );
        let merchant_code = self.required_text(values, MerchantCustomsCode, problems);
        let merchant_name = self.required_text(values, MerchantCustomsName, problems);
        let amount = self
            .required(values, AmountValue, problems)
            .and_then(|text| {
                let parsed = match self.amount_unit {
                    AmountUnit::Fen => rules::parse_fen(text),
                    AmountUnit::Yuan => rules::parse_yuan(text),
                };
                parsed
                    .map_err(|message| problems.push(self.problem(AmountValue, message)))
                    .ok()
            });
        let currency = self.exact(
            values,
            AmountCurrency,
            "CNY",
            |value| RowMessage::CurrencyNotCny { value },
            problems,
        );
        let is_split = self.required(values, IsSplit, problems).and_then(|text| {
            rules::parse_is_split(text)
                .map_err(|message| problems.push(self.problem(IsSplit, message)))
                .ok()
        });
        let reference_order_id = self.optional_text(values, ReferenceOrderId, problems);
        if is_split == Some(true)
            && values.given(ReferenceOrderId).is_none()
            && values.get(ReferenceOrderId).is_some()
        {
            problems.push(self.problem(ReferenceOrderId, RowMessage::RequiredWhenSplit));
        }
        let buyer_certificate = self.buyer_certificate(values, problems);
        region?;
        currency?;
        Some(RequestFields {
            payment_request_id: payment_request_id?,
            request_id: request_id?,
            customs_code: customs_code?,
            merchant_code: merchant_code?,
            merchant_name: merchant_name?,
            amount_fen: amount?,
            is_split: is_split?,
            reference_order_id,
            certificate: buyer_certificate?,
        })
    }

    fn customs_code<'v>(
        &self,
        values: &'v Values<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<Cow<'v, str>> {
        let field = Field::CustomsCode;
        let given = self.required(values, field, problems)?;
        // Codes are ASCII: only other text needs the full case mapping.
        let code = if !given.is_ascii() {
            Cow::Owned(given.to_uppercase())
        } else if given.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(given.to_ascii_uppercase())
        } else {
            Cow::Borrowed(given)
        };
        self.within_length(field, Some(&code), problems)?;
        if self.customs_codes.iter().any(|accepted| *accepted == code) {
            Some(code)
        } else {
            problems.push(self.problem(
                field,
                RowMessage::CustomsCodeNotAccepted {
                    code: code.into_owned(),
                    accepted: self.customs_codes.join(", "),
                },
            ));
            None
        }
    }

    /// `Some(None)`: no certificate; `None`: a certificate field is bad.
    fn buyer_certificate<'v>(
        &self,
        values: &'v Values<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<Option<CertificateFields<'v>>> {
        use Field::*;
        let Some(number) = values.given(CertificateNo) else {
            // Damaged certificate number: its problem is recorded already.
            return values.get(CertificateNo).map(|_| None);
        };
        let before = problems.len();
        let certificate_type = self
            .required(values, CertificateType, problems)
            .and_then(|kind| {
                if kind.eq_ignore_ascii_case("ID_CARD") {
                    Some(())
                } else {
                    problems.push(self.problem(
                        CertificateType,
                        RowMessage::CertificateTypeInvalid {
                            value: kind.to_owned(),
                        },
                    ));
                    None
                }
            });
        let certificate_no = rules::resident_id(number)
            .map_err(|message| problems.push(self.problem(CertificateNo, message)))
            .ok();
        let first_name = self.optional_text(values, HolderFirstName, problems);
        let middle_name = self.optional_text(values, HolderMiddleName, problems);
        let last_name = self.optional_text(values, HolderLastName, problems);
        let full_name = self.optional_text(values, HolderFullName, problems);
        let any_part = [HolderFirstName, HolderMiddleName, HolderLastName]
            .iter()
            .any(|&part| values.given(part).is_some());
        if any_part && values.given(HolderFullName).is_none() {
            problems.push(self.problem(HolderFullName, RowMessage::FullNameRequired));
        }
        let mut date = |field: Field| {
            values.given(field).and_then(|text| {
                rules::parse_datetime_value(text)
                    .map_err(|message| problems.push(self.problem(field, message)))
                    .ok()
            })
        };
        let effective_date = date(EffectiveDate);
        // 长期 (or 永久): a long-term card has no expiry date to send.
        let expire_date = match values.given(ExpireDate) {
            Some(text) if rules::is_long_term(text) => None,
            _ => date(ExpireDate),
        };
        if problems.len() > before {
            return None;
        }
        certificate_type?;
        Some(Some(CertificateFields {
            number: certificate_no?,
            holder_name: full_name.map(|full| HolderNameFields {
                first: first_name,
                middle: middle_name,
                last: last_name,
                full,
            }),
            effective_date,
            expire_date,
        }))
    }

    fn conflict_problem(&self, row: &RowRef<'_>, conflict: Conflict) -> Problem {
        // Conflicts are rare, so the request is built again here rather
        // than kept for every valid row; the rules keep no state, so it is
        // the same request.
        let Verdict::Valid(valid) = self.check(row) else {
            unreachable!("row {} passed these rules a moment ago", row.line)
        };
        let request = &valid.request;
        self.conflict_problem_for(
            conflict,
            &request.customs_declaration_request_id,
            request.declaration_order_id(),
            &request.customs.customs_code,
            request.is_split.is_yes(),
        )
    }

    /// The problem of a cross-row conflict, named by the row's request ID,
    /// order and customs code.
    fn conflict_problem_for(
        &self,
        conflict: Conflict,
        request_id: &str,
        order_id: &str,
        customs_code: &str,
        split: bool,
    ) -> Problem {
        let request_id = request_id.to_owned();
        match conflict {
            Conflict::DuplicateRow { first_row } => self.problem(
                Field::CustomsDeclarationRequestId,
                RowMessage::DuplicateRow {
                    first_row: first_row.into(),
                    request_id,
                },
            ),
            Conflict::RequestIdReused { first_row } => self.problem(
                Field::CustomsDeclarationRequestId,
                RowMessage::RequestIdReused {
                    first_row: first_row.into(),
                    request_id,
                },
            ),
            Conflict::OrderAlreadyDeclared { first_row } => {
                let field = if split {
                    Field::ReferenceOrderId
                } else {
                    Field::PaymentRequestId
                };
                self.problem(
                    field,
                    RowMessage::OrderAlreadyDeclared {
                        first_row: first_row.into(),
                        order_id: order_id.to_owned(),
                        customs_code: customs_code.to_owned(),
                    },
                )
            }
        }
    }
}

#[cfg(test)]
mod body_properties;
#[cfg(test)]
mod tests;
