//! Turning an input row into a declare request or a rejection. The column
//! map is resolved once from the header and the config; each row is then
//! normalised (trimmed, defaults applied, units and words converted) and
//! checked against every field rule of the spec, then against earlier rows.
//! A bad row is data — a list of problems — never an error that stops a run.

mod cross_row;
pub mod rules;

use std::borrow::Cow;

use crate::config::{AmountUnit, FieldSettings};
use crate::fields::Field;
use crate::input::RowRef;
use crate::protocol::{
    Amount, BuyerCertificate, Customs, DeclareRequest, HolderName, MerchantCustomsInfo,
};

pub use cross_row::{Conflict, CrossRowIndex};

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

/// Where each field comes from in this input.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    columns: [Option<usize>; 18],
    labels: [String; 18],
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
        let mut labels: [String; 18] = Default::default();
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
                field.name().to_owned()
            } else {
                format!("{wanted} ({field})")
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
    /// A stable short code, for summaries.
    pub code: &'static str,
    /// What is wrong and how to fix it, naming the column.
    pub message: String,
}

/// A row that passed every rule: the request to send and its exact bytes.
#[derive(Debug, Clone)]
pub struct ValidRow {
    pub request: DeclareRequest,
    pub body: Vec<u8>,
}

/// The outcome of checking one row.
#[derive(Debug, Clone)]
pub enum Verdict {
    Valid(Box<ValidRow>),
    Rejected(Vec<Problem>),
}

/// The rules in force for one input.
pub struct Validator {
    map: ColumnMap,
    customs_codes: Vec<String>,
    amount_unit: AmountUnit,
    /// CSV rows must have exactly this many fields.
    expected_width: Option<usize>,
    index: CrossRowIndex,
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

impl Validator {
    pub fn new(
        map: ColumnMap,
        customs_codes: Vec<String>,
        amount_unit: AmountUnit,
        expected_width: Option<usize>,
    ) -> Validator {
        Validator {
            map,
            customs_codes,
            amount_unit,
            expected_width,
            index: CrossRowIndex::default(),
        }
    }

    /// Checks one non-blank row.
    pub fn check(&mut self, row: &RowRef<'_>) -> Verdict {
        if let Some(width) = self.expected_width
            && row.len() != width
        {
            return Verdict::Rejected(vec![Problem {
                field: "row",
                code: "FIELD_COUNT",
                message: format!(
                    "the row has {} fields but the header has {width}; a value containing a comma \
                     must be in double quotes, or the columns shift",
                    row.len()
                ),
            }]);
        }
        let mut problems = Vec::new();
        let values = self.values(row, &mut problems);
        let request = self.build(&values, &mut problems);
        let request = match request {
            Some(request) if problems.is_empty() => request,
            _ => return Verdict::Rejected(problems),
        };
        let body = request.to_body();
        match self.index.claim(row.line, &request, &body) {
            Ok(()) => Verdict::Valid(Box::new(ValidRow { request, body })),
            Err(conflict) => Verdict::Rejected(vec![self.conflict_problem(&request, conflict)]),
        }
    }

    fn values<'a>(&self, row: &RowRef<'a>, problems: &mut Vec<Problem>) -> Values<'a> {
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
                        problems.push(self.problem(field, damage.code(), damage.message()));
                    }
                    continue;
                }
            };
            // A default alone never creates a buyer certificate.
            let value = match (&self.map.defaults[field.index()], field) {
                (Some(default), f) if value.is_empty() && f != Field::CertificateNo => {
                    Cow::Owned(default.clone())
                }
                _ => value,
            };
            text[field.index()] = Some(value);
        }
        Values { text }
    }

    fn problem(&self, field: Field, code: &'static str, message: impl AsRef<str>) -> Problem {
        Problem {
            field: field.name(),
            code,
            message: format!("{}: {}", self.map.label(field), message.as_ref()),
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
                let why = if self.map.columns[field.index()].is_some() {
                    "required, but the cell is empty and [defaults] has no value for it"
                } else {
                    "required, but the input has no such column and [defaults] has no value"
                };
                problems.push(self.problem(field, "REQUIRED", why));
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
        if let Some(max) = field.max_chars() {
            let length = value.chars().count();
            if length > max {
                problems.push(self.problem(
                    field,
                    "TOO_LONG",
                    format!("is {length} characters long; the API allows at most {max}"),
                ));
                return None;
            }
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
        code: &'static str,
        why: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let value = self.required(values, field, problems)?;
        if value.eq_ignore_ascii_case(wanted) {
            Some(wanted.to_owned())
        } else {
            problems.push(self.problem(
                field,
                code,
                format!("must be {wanted}{why}, not \"{value}\""),
            ));
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
            "REGION_NOT_CN",
            " (only declarations to Chinese customs are made)",
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
                    .map_err(|message| {
                        problems.push(self.problem(AmountValue, "AMOUNT_INVALID", message))
                    })
                    .ok()
            });
        let currency = self.exact(
            values,
            AmountCurrency,
            "CNY",
            "CURRENCY_NOT_CNY",
            "",
            problems,
        );
        let is_split = self.required(values, IsSplit, problems).and_then(|text| {
            rules::parse_is_split(text)
                .map_err(|message| {
                    problems.push(self.problem(IsSplit, "IS_SPLIT_INVALID", message))
                })
                .ok()
        });
        let reference_order_id = self.optional_text(values, ReferenceOrderId, problems);
        if is_split == Some(true)
            && values.given(ReferenceOrderId).is_none()
            && values.get(ReferenceOrderId).is_some()
        {
            problems.push(self.problem(
                ReferenceOrderId,
                "REQUIRED_WHEN_SPLIT",
                "required when isSplit is true: a split order is declared under its \
                 referenceOrderId",
            ));
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
            is_split: is_split?.to_string(),
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
                "CUSTOMS_CODE_NOT_ACCEPTED",
                format!(
                    "\"{code}\" is not an accepted customs code ({}); declare to ZONGSHU for \
                     districts not in this list (Hangzhou, Guangzhou, Tianjin, …)",
                    self.customs_codes.join(", ")
                ),
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
                        "CERTIFICATE_TYPE_INVALID",
                        format!("must be ID_CARD (the only type the API accepts), not \"{kind}\""),
                    ));
                    None
                }
            });
        let certificate_no = rules::check_resident_id(number)
            .map_err(|message| {
                problems.push(self.problem(CertificateNo, "CERTIFICATE_NO_INVALID", message))
            })
            .ok();
        let first_name = self.optional_text(values, HolderFirstName, problems);
        let middle_name = self.optional_text(values, HolderMiddleName, problems);
        let last_name = self.optional_text(values, HolderLastName, problems);
        let full_name = self.optional_text(values, HolderFullName, problems);
        let any_part = [HolderFirstName, HolderMiddleName, HolderLastName]
            .iter()
            .any(|&part| values.given(part).is_some());
        if any_part && values.given(HolderFullName).is_none() {
            problems.push(self.problem(
                HolderFullName,
                "FULL_NAME_REQUIRED",
                "required when a first, middle or last name is given",
            ));
        }
        let mut date = |field: Field| {
            values.given(field).and_then(|text| {
                rules::parse_datetime(text)
                    .map_err(|message| problems.push(self.problem(field, "DATE_INVALID", message)))
                    .ok()
            })
        };
        let effective_date = date(EffectiveDate);
        let expire_date = date(ExpireDate);
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

    fn conflict_problem(&self, request: &DeclareRequest, conflict: Conflict) -> Problem {
        let request_id = &request.customs_declaration_request_id;
        match conflict {
            Conflict::DuplicateRow { first_row } => self.problem(
                Field::CustomsDeclarationRequestId,
                "DUPLICATE_ROW",
                format!(
                    "duplicate of row {first_row}: same customsDeclarationRequestId \"{request_id}\" \
                     and identical content; the declaration is made once, from row {first_row}"
                ),
            ),
            Conflict::RequestIdReused { first_row } => self.problem(
                Field::CustomsDeclarationRequestId,
                "REQUEST_ID_REUSED",
                format!(
                    "\"{request_id}\" is already used by row {first_row} with different content; \
                     give each declaration its own customsDeclarationRequestId (the API would \
                     answer REPEAT_REQ_INCONSISTENT)"
                ),
            ),
            Conflict::OrderAlreadyDeclared { first_row } => {
                let field = if request.is_split == "true" {
                    Field::ReferenceOrderId
                } else {
                    Field::PaymentRequestId
                };
                self.problem(
                    field,
                    "ORDER_ALREADY_DECLARED",
                    format!(
                        "order \"{}\" is already declared at customs {} by row {first_row} under \
                         another customsDeclarationRequestId; an order is declared once per customs \
                         (the API would answer DUPLICATED_DECLARATION)",
                        request.declaration_order_id(),
                        request.customs.customs_code
                    ),
                )
            }
        }
    }

    /// Valid rows so far.
    pub fn valid_rows(&self) -> usize {
        self.index.len()
    }
}
