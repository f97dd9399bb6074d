//! Where each field comes from in one input: the column map, resolved
//! once from the header row and `[columns]` / `[defaults]`, and why a
//! header cannot supply the fields every row needs.

use std::sync::Arc;

use crate::fields::{Field, FieldSettings};

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
    pub(super) columns: [Option<usize>; 18],
    pub(super) labels: [Arc<str>; 18],
    pub(super) defaults: [Option<String>; 18],
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
            labels[field.index()] = if wanted == field.name() || wanted == FieldSettings::UNMAPPED {
                field.name().into()
            } else {
                format!("{wanted} ({field})").into()
            };
            let has_default = settings.defaults[field.index()].is_some();
            if found.is_none() && !has_default {
                if field.always_required() {
                    missing.push(
                        if wanted == field.name() || wanted == FieldSettings::UNMAPPED {
                            field.name().to_owned()
                        } else {
                            format!("{field} (configured column \"{wanted}\")")
                        },
                    );
                } else if settings.columns[field.index()]
                    .as_deref()
                    .is_some_and(|header| header != FieldSettings::UNMAPPED)
                {
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
