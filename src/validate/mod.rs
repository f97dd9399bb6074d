//! Turning an input row into a declare request or a rejection. The column
//! map is resolved once from the header and the config; each row is then
//! normalised (trimmed, defaults applied, units and words converted) and
//! checked against every field rule of the spec, then against earlier rows.
//! A bad row is data — a list of problems — never an error that stops a run.

mod cross_row;
pub mod rules;
mod stream;

use std::borrow::Cow;
use std::sync::Arc;

use crate::fields::Field;
use crate::fields::FieldSettings;
use crate::i18n::{Language, RowMessage, labelled};
use crate::input::{CellDamage, CellView, RowRef, a1_reference};
use crate::protocol::{
    Amount, BuyerCertificate, Customs, DeclareRequest, HolderName, MerchantCustomsInfo,
};

pub use cross_row::{Conflict, CrossRowIndex, Fingerprint};
pub use stream::{Outcome, validate_stream};

/// The header has no way to supply a field every row needs.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(
        "required fields have neither a column nor a default: {missing}. The header row (row \
         {header_line}) has: {found}. Map each in [columns] (\"field\" = \"your header\") or set \
         a value in [defaults]"
    )]
    MissingRequired {
        missing: String,
        header_line: u64,
        found: String,
    },
    #[error(
        "the header \"{header}\" appears in columns {first} and {second} of the header row; rename \
         one so that {field} is read from the right column"
    )]
    DuplicateHeader {
        header: String,
        field: Field,
        first: usize,
        second: usize,
    },
}

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

/// Where each field comes from in this input.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    columns: [Option<usize>; 18],
    labels: [Arc<str>; 18],
    defaults: [Option<String>; 18],
}

impl ColumnMap {
    /// Resolves `[columns]` and `[defaults]` against the header row.
    /// Returns the map and warnings about configured columns not found.
    pub fn resolve(
        headers: &[String],
        settings: &FieldSettings,
        header_line: u64,
    ) -> Result<(ColumnMap, Vec<String>), MappingError> {
        let mut columns = [None; 18];
        let mut labels: [Arc<str>; 18] = Default::default();
        let mut missing = Vec::new();
        let mut warnings = Vec::new();
        for field in Field::ALL {
            let wanted = settings.header_for(field);
            let mut positions = headers
                .iter()
                .enumerate()
                .filter(|(_, header)| header.as_str() == wanted)
                .map(|(position, _)| position);
            let found = positions.next();
            if let (Some(first), Some(second)) = (found, positions.next()) {
                return Err(MappingError::DuplicateHeader {
                    header: wanted.to_owned(),
                    field,
                    first: first + 1,
                    second: second + 1,
                });
            }
            columns[field.index()] = found;
            labels[field.index()] = if wanted == field.name() {
                field.name().into()
            } else {
                format!("{wanted} ({field})").into()
            };
            let has_default = settings.defaults[field.index()].is_some();
            if found.is_none() && !has_default {
                if field.always_required() {
                    missing.push(if wanted == field.name() {
                        field.name().to_owned()
                    } else {
                        format!("{field} (configured column \"{wanted}\")")
                    });
                } else if settings.columns[field.index()].is_some() {
                    warnings.push(format!(
                        "[columns] maps {field} to \"{wanted}\", but the header row has no such \
                         column; {field} will be empty"
                    ));
                }
            }
        }
        if !missing.is_empty() {
            return Err(MappingError::MissingRequired {
                missing: missing.join(", "),
                header_line,
                found: headers
                    .iter()
                    .filter(|h| !h.is_empty())
                    .map(|h| format!("\"{h}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let map = ColumnMap {
            columns,
            labels,
            defaults: settings.defaults.clone(),
        };
        Ok((map, warnings))
    }

    /// The input column a field is read from, if it has one.
    pub fn column(&self, field: Field) -> Option<usize> {
        self.columns[field.index()]
    }

    /// How a field is named in messages: its header, and the canonical
    /// name when the header differs.
    pub fn label(&self, field: Field) -> &str {
        &self.labels[field.index()]
    }
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
/// cross-row rules and the counts need (`validate`). A request freed on
/// another thread than the one that built it cost `validate` a sixth of
/// its time.
pub trait KeptRow: Send {
    fn keep(valid: Box<ValidRow>) -> Self;
    fn fingerprint(&self) -> &Fingerprint;
}

impl KeptRow for Box<ValidRow> {
    fn keep(valid: Box<ValidRow>) -> Self {
        valid
    }

    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// A valid row counted, its request dropped.
#[derive(Debug, Clone, Copy)]
pub struct CountedRow {
    pub fingerprint: Fingerprint,
    pub long_term_expiry: bool,
}

impl KeptRow for CountedRow {
    fn keep(valid: Box<ValidRow>) -> Self {
        CountedRow {
            fingerprint: valid.fingerprint,
            long_term_expiry: valid.long_term_expiry,
        }
    }

    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
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

impl Verdict {
    /// Keeps of a valid row what the caller needs.
    pub fn keep<V: KeptRow>(self) -> Verdict<V> {
        match self {
            Verdict::Valid(valid) => Verdict::Valid(V::keep(valid)),
            Verdict::Rejected(problems) => Verdict::Rejected(problems),
            Verdict::Totals => Verdict::Totals,
        }
    }
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
            rejected => rejected,
        }
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
        let request = self.build(&values, &mut problems);
        let request = match request {
            Some(request) if problems.is_empty() => request,
            _ => return Verdict::Rejected(problems),
        };
        let fingerprint = Fingerprint::of(&request);
        let long_term_expiry = request.buyer_certificate.is_some()
            && values
                .given(Field::ExpireDate)
                .is_some_and(rules::is_long_term);
        Verdict::Valid(Box::new(ValidRow {
            request,
            fingerprint,
            long_term_expiry,
        }))
    }

    fn values<'a>(&'a self, row: &RowRef<'a>, problems: &mut Vec<Problem>) -> Values<'a> {
        let mut text: [Option<Cow<'a, str>>; 18] = Default::default();
        let certificate_given = self.map.columns[Field::CertificateNo.index()]
            .is_some_and(|column| !row.cell(column).is_blank());
        for field in Field::ALL {
            let is_certificate_part = field.name().starts_with("buyerCertificate.");
            let cell = self.map.columns[field.index()].map(|column| row.cell(column));
            let value = match cell.map(|cell| cell.field_text(field)) {
                None => Cow::Borrowed(""),
                Some(Ok(Cow::Borrowed(text))) => Cow::Borrowed(text.trim()),
                Some(Ok(Cow::Owned(text))) => Cow::Owned(text.trim().to_owned()),
                Some(Err(damage)) => {
                    // Certificate cells matter only when a certificate is sent.
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

    fn required_text(
        &self,
        values: &Values<'_>,
        field: Field,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let value = self.required(values, field, problems);
        self.within_length(field, value, problems)
            .map(str::to_owned)
    }

    fn optional_text(
        &self,
        values: &Values<'_>,
        field: Field,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        self.within_length(field, values.given(field), problems)
            .map(str::to_owned)
    }

    fn exact(
        &self,
        values: &Values<'_>,
        field: Field,
        wanted: &str,
        refusal: fn(String) -> RowMessage,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let value = self.required(values, field, problems)?;
        if value.eq_ignore_ascii_case(wanted) {
            Some(wanted.to_owned())
        } else {
            problems.push(self.problem(field, refusal(value.to_owned())));
            None
        }
    }

    /// Applies every field rule; `None` when some field is unusable.
    fn build(&self, values: &Values<'_>, problems: &mut Vec<Problem>) -> Option<DeclareRequest> {
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
        Some(DeclareRequest {
            payment_request_id: payment_request_id?,
            customs_declaration_request_id: request_id?,
            customs: Customs {
                customs_code: customs_code?,
                region: region?,
            },
            merchant_customs_info: MerchantCustomsInfo {
                merchant_customs_code: merchant_code?,
                merchant_customs_name: merchant_name?,
            },
            declaration_amount: Amount {
                currency: currency?,
                value: amount?.to_string(),
            },
            is_split: is_split?.into(),
            reference_order_id,
            buyer_certificate: buyer_certificate?,
        })
    }

    fn customs_code(&self, values: &Values<'_>, problems: &mut Vec<Problem>) -> Option<String> {
        let field = Field::CustomsCode;
        let code = self.required(values, field, problems)?.to_uppercase();
        self.within_length(field, Some(&code), problems)?;
        if self.customs_codes.contains(&code) {
            Some(code)
        } else {
            problems.push(self.problem(
                field,
                RowMessage::CustomsCodeNotAccepted {
                    code,
                    accepted: self.customs_codes.join(", "),
                },
            ));
            None
        }
    }

    /// `Some(None)`: no certificate; `None`: a certificate field is bad.
    fn buyer_certificate(
        &self,
        values: &Values<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<Option<BuyerCertificate>> {
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
                    Some("ID_CARD".to_owned())
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
        let certificate_no = rules::check_resident_id(number)
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
                rules::parse_datetime(text)
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
        Some(Some(BuyerCertificate {
            certificate_type: certificate_type?,
            certificate_no: certificate_no?,
            holder_name: full_name.map(|full_name| HolderName {
                first_name,
                middle_name,
                last_name,
                full_name,
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
        let request_id = request.customs_declaration_request_id.clone();
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
                let field = if request.is_split.is_yes() {
                    Field::ReferenceOrderId
                } else {
                    Field::PaymentRequestId
                };
                self.problem(
                    field,
                    RowMessage::OrderAlreadyDeclared {
                        first_row: first_row.into(),
                        order_id: request.declaration_order_id().to_owned(),
                        customs_code: request.customs.customs_code.clone(),
                    },
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    const HEADERS: [&str; 13] = [
        "paymentRequestId",
        "customsDeclarationRequestId",
        "customs.customsCode",
        "merchantCustomsInfo.merchantCustomsCode",
        "merchantCustomsInfo.merchantCustomsName",
        "declarationAmount.value",
        "isSplit",
        "referenceOrderId",
        "buyerCertificate.certificateType",
        "buyerCertificate.certificateNo",
        "buyerCertificate.holderName.fullName",
        "buyerCertificate.holderName.firstName",
        "buyerCertificate.effectiveDate",
    ];

    fn validator(config_text: &str) -> Validator {
        let config = Config::parse(config_text, Path::new("t.toml")).unwrap();
        let settings = config.field_settings(Path::new("t.toml")).unwrap();
        let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
        let (map, _) = ColumnMap::resolve(&headers, &settings, 1).unwrap();
        Validator::new(RowRules::new(
            map,
            config.customs_codes(),
            config.input.amount_unit,
            Some(HEADERS.len()),
        ))
    }

    /// A valid row, with `changes` applied as (column, value).
    fn row(changes: &[(usize, &str)]) -> csv::StringRecord {
        let mut cells = vec![
            "P1", "D1", "ZONGSHU", "M1", "Shop", "100", "false", "", "", "", "", "", "",
        ];
        for &(column, value) in changes {
            cells[column] = value;
        }
        csv::StringRecord::from(cells)
    }

    fn check(validator: &mut Validator, line: u64, record: &csv::StringRecord) -> Verdict {
        validator.check(&RowRef::from_record(line, record))
    }

    fn codes(verdict: Verdict) -> Vec<(&'static str, &'static str)> {
        match verdict {
            Verdict::Valid(_) => Vec::new(),
            Verdict::Rejected(problems) => problems.iter().map(|p| (p.field, p.code())).collect(),
            Verdict::Totals => vec![("row", "TOTALS")],
        }
    }

    fn body(verdict: Verdict) -> String {
        match verdict {
            Verdict::Valid(valid) => String::from_utf8(valid.request.to_body()).unwrap(),
            Verdict::Rejected(problems) => panic!("rejected: {problems:?}"),
            Verdict::Totals => panic!("taken for a totals row"),
        }
    }

    #[test]
    fn totals_and_footer_rows_are_found_before_any_other_check() {
        let mut v = validator("");
        let totals = |verdict: Verdict| matches!(verdict, Verdict::Totals);
        // 合计 in the payment-ID column, the amounts summed beside it.
        assert!(totals(check(
            &mut v,
            30,
            &row(&[
                (0, "合计"),
                (1, ""),
                (2, ""),
                (3, ""),
                (4, ""),
                (5, "12345")
            ])
        )));
        // A footer with a colon (either width) and text; fewer fields than
        // the header: found before the field count is checked.
        for footer in ["制表人：张三", "Prepared by: Li", "TOTAL", " 备注: none "] {
            let record = csv::StringRecord::from(vec![footer]);
            assert!(totals(check(&mut v, 31, &record)), "{footer}");
        }
        // The label in a later column, the ID columns empty.
        assert!(totals(check(
            &mut v,
            32,
            &row(&[
                (0, ""),
                (1, ""),
                (2, ""),
                (3, ""),
                (4, "Subtotal"),
                (5, "300"),
                (6, "")
            ])
        )));
        // Not totals: an ID that merely starts with "Total", a label with
        // a request ID on the row, a label that is not the first cell.
        for record in [
            row(&[(0, "TOTAL2026001")]),
            row(&[(0, "Total Wines")]),
            row(&[(0, "合计")]),
            row(&[(0, ""), (1, ""), (2, "ZONGSHU"), (4, "合计")]),
        ] {
            assert!(!totals(check(&mut v, 33, &record)), "{record:?}");
        }
        assert!(is_totals_label("sum"));
        assert!(!is_totals_label("summary"));
    }

    #[test]
    fn a_minimal_row_becomes_a_body_of_strings() {
        let mut v = validator("");
        assert_eq!(
            body(check(&mut v, 2, &row(&[(2, " ningbo "), (5, "0100")]))),
            r#"{"paymentRequestId":"P1","customsDeclarationRequestId":"D1","customs":{"customsCode":"NINGBO","region":"CN"},"merchantCustomsInfo":{"merchantCustomsCode":"M1","merchantCustomsName":"Shop"},"declarationAmount":{"currency":"CNY","value":"100"},"isSplit":"false"}"#
        );
    }

    #[test]
    fn every_required_field_is_required() {
        let mut v = validator("");
        for (column, header) in HEADERS.iter().enumerate().take(7) {
            let verdict = check(&mut v, 2, &row(&[(column, "  ")]));
            assert_eq!(codes(verdict), [(*header, "REQUIRED")], "column {column}");
        }
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        let mut v = validator("");
        let name_256 = "店".repeat(256);
        assert!(codes(check(&mut v, 2, &row(&[(4, &name_256)]))).is_empty());
        let name_257 = "店".repeat(257);
        assert_eq!(
            codes(check(&mut v, 3, &row(&[(1, "D2"), (4, &name_257)]))),
            [("merchantCustomsInfo.merchantCustomsName", "TOO_LONG")]
        );
        let id_65 = "9".repeat(65);
        assert_eq!(
            codes(check(&mut v, 4, &row(&[(1, &id_65)]))),
            [("customsDeclarationRequestId", "TOO_LONG")]
        );
    }

    #[test]
    fn region_currency_and_customs_code_have_fixed_values() {
        let mut v = validator("[defaults]\n\"customs.region\" = \"US\"\n");
        assert_eq!(
            codes(check(&mut v, 2, &row(&[]))),
            [("customs.region", "REGION_NOT_CN")]
        );
        let mut v = validator("[defaults]\n\"declarationAmount.currency\" = \"USD\"\n");
        assert_eq!(
            codes(check(&mut v, 2, &row(&[]))),
            [("declarationAmount.currency", "CURRENCY_NOT_CNY")]
        );
        let mut v = validator("[validate]\ncustoms_codes = [\"zongshu\"]\n");
        assert!(codes(check(&mut v, 2, &row(&[]))).is_empty());
        assert_eq!(
            codes(check(
                &mut v,
                3,
                &row(&[(0, "P3"), (1, "D3"), (2, "NINGBO")])
            )),
            [("customs.customsCode", "CUSTOMS_CODE_NOT_ACCEPTED")]
        );
    }

    #[test]
    fn amounts_in_yuan_are_converted_exactly() {
        let mut v = validator("[input]\namount_unit = \"yuan\"\n");
        let text = body(check(&mut v, 2, &row(&[(5, "¥1,234.5")])));
        assert!(text.contains(r#""value":"123450""#), "{text}");
        assert_eq!(
            codes(check(&mut v, 3, &row(&[(1, "D3"), (5, "1.234")]))),
            [("declarationAmount.value", "AMOUNT_INVALID")]
        );
    }

    #[test]
    fn split_rows_need_a_reference_order() {
        let mut v = validator("");
        assert_eq!(
            codes(check(&mut v, 2, &row(&[(6, "是")]))),
            [("referenceOrderId", "REQUIRED_WHEN_SPLIT")]
        );
        let text = body(check(&mut v, 3, &row(&[(6, "TRUE"), (7, "R1")])));
        assert!(
            text.contains(r#""isSplit":"true","referenceOrderId":"R1""#),
            "{text}"
        );
        // Not split: a given reference order is still sent.
        let text = body(check(&mut v, 4, &row(&[(0, "P4"), (1, "D4"), (7, "R4")])));
        assert!(
            text.contains(r#""isSplit":"false","referenceOrderId":"R4""#),
            "{text}"
        );
    }

    #[test]
    fn buyer_certificate_rules() {
        let mut v = validator("[defaults]\n\"buyerCertificate.certificateType\" = \"ID_CARD\"\n");
        // A default type alone, or name parts without a number, send nothing.
        let text = body(check(&mut v, 2, &row(&[(10, "张三"), (12, "garbage")])));
        assert!(!text.contains("buyerCertificate"), "{text}");
        let text = body(check(
            &mut v,
            3,
            &row(&[
                (0, "P3"),
                (1, "D3"),
                (9, "11010519491231002x"),
                (10, "张三"),
                (12, "2015/3/1"),
            ]),
        ));
        assert!(
            text.ends_with(
                r#""buyerCertificate":{"certificateType":"ID_CARD","certificateNo":"11010519491231002X","holderName":{"fullName":"张三"},"effectiveDate":"2015-03-01T00:00:00+08:00"}}"#
            ),
            "{text}"
        );
        assert_eq!(
            codes(check(
                &mut v,
                4,
                &row(&[
                    (0, "P4"),
                    (1, "D4"),
                    (8, "PASSPORT"),
                    (9, "11010519491231002X")
                ])
            )),
            [(
                "buyerCertificate.certificateType",
                "CERTIFICATE_TYPE_INVALID"
            )]
        );
        assert_eq!(
            codes(check(
                &mut v,
                5,
                &row(&[(0, "P5"), (1, "D5"), (9, "110105194912310021")])
            )),
            [("buyerCertificate.certificateNo", "CERTIFICATE_NO_INVALID")]
        );
        assert_eq!(
            codes(check(
                &mut v,
                6,
                &row(&[(0, "P6"), (1, "D6"), (9, "11010519491231002X"), (11, "San")])
            )),
            [("buyerCertificate.holderName.fullName", "FULL_NAME_REQUIRED")]
        );
        assert_eq!(
            codes(check(
                &mut v,
                7,
                &row(&[
                    (0, "P7"),
                    (1, "D7"),
                    (9, "11010519491231002X"),
                    (12, "2015-02-30")
                ])
            )),
            [("buyerCertificate.effectiveDate", "DATE_INVALID")]
        );
        let mut no_default = validator("");
        assert_eq!(
            codes(check(
                &mut no_default,
                2,
                &row(&[(9, "11010519491231002X")])
            )),
            [("buyerCertificate.certificateType", "REQUIRED")]
        );
    }

    #[test]
    fn cross_row_duplicates_conflicts_and_orders() {
        let mut v = validator("");
        assert!(codes(check(&mut v, 2, &row(&[]))).is_empty());
        // Same ID, same normalised body (whitespace and case differ).
        assert_eq!(
            codes(check(&mut v, 3, &row(&[(2, "zongshu "), (5, "0100")]))),
            [("customsDeclarationRequestId", "DUPLICATE_ROW")]
        );
        assert_eq!(
            codes(check(&mut v, 4, &row(&[(5, "200")]))),
            [("customsDeclarationRequestId", "REQUEST_ID_REUSED")]
        );
        assert_eq!(
            codes(check(&mut v, 5, &row(&[(1, "D5")]))),
            [("paymentRequestId", "ORDER_ALREADY_DECLARED")]
        );
        // The same payment at another customs is another declaration.
        assert!(codes(check(&mut v, 6, &row(&[(1, "D6"), (2, "NINGBO")]))).is_empty());
        // Split orders are keyed by their reference order.
        let split = |id: &'static str, reference: &'static str| {
            row(&[(0, "P9"), (1, id), (6, "true"), (7, reference)])
        };
        assert!(codes(check(&mut v, 7, &split("D7", "R1"))).is_empty());
        assert!(codes(check(&mut v, 8, &split("D8", "R2"))).is_empty());
        assert_eq!(
            codes(check(&mut v, 9, &split("D9", "R1"))),
            [("referenceOrderId", "ORDER_ALREADY_DECLARED")]
        );
        // A rejected row claims nothing: its ID stays free.
        assert!(!codes(check(&mut v, 10, &row(&[(0, "P10"), (1, "D10"), (5, "x")]))).is_empty());
        assert!(codes(check(&mut v, 11, &row(&[(0, "P10"), (1, "D10")]))).is_empty());
        assert_eq!(v.valid_rows(), 5);
    }

    #[test]
    fn shifted_csv_rows_are_rejected_whole() {
        let mut v = validator("");
        let record = csv::StringRecord::from(vec!["P1", "D1", "ZONGSHU"]);
        assert_eq!(codes(check(&mut v, 2, &record)), [("row", "FIELD_COUNT")]);
    }
}

/// Property tests of the body serialisation: whatever valid row comes in,
/// the body holds only strings and parses back to the row's values.
#[cfg(test)]
mod body_properties {
    use super::*;
    use crate::config::Config;
    use crate::protocol::HolderName;
    use crate::validate::rules::properties::resident_id;
    use proptest::prelude::*;
    use std::path::Path;

    /// The columns of a generated row, in order: `Field::ALL` less region
    /// and currency (left to their defaults, CN and CNY) and the middle name
    /// and expiry date, which the generated certificates leave out.
    const COLUMNS: [Field; 14] = [
        Field::PaymentRequestId,
        Field::CustomsDeclarationRequestId,
        Field::CustomsCode,
        Field::MerchantCustomsCode,
        Field::MerchantCustomsName,
        Field::AmountValue,
        Field::IsSplit,
        Field::ReferenceOrderId,
        Field::CertificateType,
        Field::CertificateNo,
        Field::HolderFullName,
        Field::HolderFirstName,
        Field::HolderLastName,
        Field::EffectiveDate,
    ];

    fn rules() -> RowRules {
        let config = Config::parse("", Path::new("t.toml")).unwrap();
        let settings = config.field_settings(Path::new("t.toml")).unwrap();
        let headers: Vec<String> = COLUMNS.iter().map(|f| f.name().to_owned()).collect();
        let (map, _) = ColumnMap::resolve(&headers, &settings, 1).unwrap();
        RowRules::new(
            map,
            config.customs_codes(),
            config.input.amount_unit,
            Some(COLUMNS.len()),
        )
    }

    /// An ID as order systems make them; it starts with a letter so that it
    /// never reads as a number.
    fn id() -> impl Strategy<Value = String> {
        "[A-Z][A-Za-z0-9_-]{0,63}"
    }

    /// Free text as a person types it: any printable characters (quotes,
    /// backslashes, Chinese, emoji), trimmed, not empty, and not starting
    /// like a formula (a rule of its own).
    fn text(max_chars: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>(), 1..=max_chars)
            .prop_map(|chars| {
                chars
                    .into_iter()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .prop_filter("not empty after trimming", |text| !text.is_empty())
            .prop_filter("not a formula", |text| starts_like_formula(text).is_none())
    }

    prop_compose! {
        fn certificate()(
            number in resident_id(),
            full_name in text(128),
            first_name in proptest::option::of(text(32)),
            last_name in proptest::option::of(text(32)),
            effective in proptest::option::of((1990i32..2040, 1u32..=12, 1u32..=28)),
        ) -> BuyerCertificate {
            BuyerCertificate {
                certificate_type: "ID_CARD".into(),
                certificate_no: number,
                holder_name: Some(HolderName {
                    first_name,
                    middle_name: None,
                    last_name,
                    full_name,
                }),
                effective_date: effective
                    .map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}T00:00:00+08:00")),
                expire_date: None,
            }
        }
    }

    prop_compose! {
        fn request()(
            payment_request_id in id(),
            request_id in id(),
            customs_code in prop::sample::select(vec!["ZONGSHU", "NINGBO", "SHANGHAI_CBT"]),
            merchant_code in id(),
            merchant_name in text(256),
            fen in 1u64..=999_999_999_999_999_999,
            reference_order_id in proptest::option::of(id()),
            split in any::<bool>(),
            buyer_certificate in proptest::option::of(certificate()),
        ) -> DeclareRequest {
            DeclareRequest {
                payment_request_id,
                customs_declaration_request_id: request_id,
                customs: Customs { customs_code: customs_code.into(), region: "CN".into() },
                merchant_customs_info: MerchantCustomsInfo {
                    merchant_customs_code: merchant_code,
                    merchant_customs_name: merchant_name,
                },
                declaration_amount: Amount { currency: "CNY".into(), value: fen.to_string() },
                is_split: (split && reference_order_id.is_some()).into(),
                reference_order_id,
                buyer_certificate,
            }
        }
    }

    /// The CSV row a finance export would hold for `request`.
    fn row_of(request: &DeclareRequest) -> csv::StringRecord {
        let certificate = request.buyer_certificate.as_ref();
        let name = certificate.and_then(|c| c.holder_name.as_ref());
        let cells: [Option<&str>; 14] = [
            Some(&request.payment_request_id),
            Some(&request.customs_declaration_request_id),
            Some(&request.customs.customs_code),
            Some(&request.merchant_customs_info.merchant_customs_code),
            Some(&request.merchant_customs_info.merchant_customs_name),
            Some(&request.declaration_amount.value),
            Some(request.is_split.as_str()),
            request.reference_order_id.as_deref(),
            certificate.map(|c| c.certificate_type.as_str()),
            certificate.map(|c| c.certificate_no.as_str()),
            name.map(|n| n.full_name.as_str()),
            name.and_then(|n| n.first_name.as_deref()),
            name.and_then(|n| n.last_name.as_deref()),
            certificate.and_then(|c| c.effective_date.as_deref()),
        ];
        csv::StringRecord::from(cells.map(|cell| cell.unwrap_or("")).to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_body_value_is_a_string_and_parses_back_to_the_row(request in request()) {
            let record = row_of(&request);
            let verdict = rules().check(&RowRef::from_record(2, &record));
            let valid = match verdict {
                Verdict::Valid(valid) => valid,
                Verdict::Rejected(problems) => {
                    return Err(TestCaseError::fail(format!("rejected: {problems:?}")));
                }
                Verdict::Totals => return Err(TestCaseError::fail("taken for a totals row")),
            };
            let body = valid.request.to_body();
            crate::fuzzing::assert_body_of_strings(&body);
            let parsed: DeclareRequest = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(&parsed, &request);
            prop_assert_eq!(valid.request, request);
        }
    }
}
