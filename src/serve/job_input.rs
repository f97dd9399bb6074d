//! What a job's upload is read with beyond its profile: the sheet the
//! clerk chose, the columns mapped on the page, and the cells corrected in
//! the grid. Each is kept in the job's folder and laid over the profile's
//! settings for every check of the file and for its run, so that what was
//! checked is what is declared. Mappings are also remembered per profile
//! and set of headers, so that the next export with those headers goes
//! straight through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::fields::Field;
use crate::init::field_of;
use crate::input::{
    CellEdits, HEADER_SEARCH_ROWS, HeaderSearch, InputError, InputOptions, RowSource,
};
use crate::run::validate::{LedgerQuestion, ValidateSummary, validate_keeping_reasons};
use crate::settings::{InputSettings, Settings};
use crate::validate::{ColumnMap, MappingError};

/// The clerk's choices for one upload.
pub const CHOICES: &str = "choices.json";

/// The cells corrected in the grid.
pub const EDITS: &str = "edits.json";

/// Mappings remembered for one profile at most: the oldest is forgotten.
const MAX_SAVED_MAPPINGS: usize = 50;

/// Sample values shown under each of the file's headers.
const SAMPLE_ROWS: usize = 3;

/// Rows read for the mapping page: the header search's, and some more
/// whose amounts say their unit.
const AMOUNT_ROWS: usize = 60;

/// Sheets of a workbook looked at for order columns: each look reads the
/// workbook's parts again.
const MAX_SHEETS_LOOKED_AT: usize = 20;

/// Headers of one file remembered at most, in characters: an export's
/// headers are a few hundred; a file of 16,384 long headers is not kept.
const MAX_REMEMBERED_HEADER_CHARS: usize = 64 * 1024;

/// The clerk's choices for one upload.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct JobChoices {
    /// The workbook's sheet to read.
    pub sheet: Option<String>,
    /// The columns mapped on the page.
    pub columns: Option<ColumnChoice>,
}

/// Columns mapped on the page: which of the file's headers each field is
/// read from, and the row the headers are on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnChoice {
    pub header_row: u64,
    /// Canonical field → the file's header.
    pub columns: BTreeMap<String, String>,
}

impl JobChoices {
    /// The choices kept in the job's folder; none when there are none.
    pub fn read(job: &Path) -> JobChoices {
        std::fs::read_to_string(job.join(CHOICES))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    pub fn write(&self, job: &Path) -> anyhow::Result<()> {
        crate::report::write_json(&job.join(CHOICES), self)
            .with_context(|| format!("cannot write {CHOICES}"))
    }
}

impl ColumnChoice {
    fn apply(&self, input: &mut InputSettings) {
        for field in Field::ALL {
            let header = self
                .columns
                .get(field.name())
                .map_or(crate::fields::FieldSettings::UNMAPPED, String::as_str);
            input.fields.columns[field.index()] = Some(header.to_owned());
            input
                .columns_as_written
                .insert(field.name().to_owned(), header.to_owned());
        }
        input.header_row = self.header_row;
    }
}

/// The profile's settings with the job's choices and corrections laid
/// over them.
pub fn job_settings(profile: &Settings, job: &Path) -> anyhow::Result<Settings> {
    let mut settings = profile.clone();
    let choices = JobChoices::read(job);
    if let Some(sheet) = choices.sheet {
        settings.input.sheet = sheet;
    }
    if let Some(columns) = &choices.columns {
        columns.apply(&mut settings.input);
    }
    let edits = CellEdits::read(&job.join(EDITS)).context("cannot read the corrections")?;
    if !edits.is_empty() {
        settings.input.edits = Some(Arc::new(edits));
    }
    Ok(settings)
}

/// What the page must ask before the file can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Needs {
    /// Which sheet holds the orders.
    Sheet,
    /// Which column is which field.
    Columns,
}

/// What checking an upload came to.
pub enum UploadCheck {
    Needs(Needs),
    /// Headers and no order under them: nothing to map or check.
    HeaderOnly {
        header_row: u64,
    },
    Checked(Box<ValidateSummary>),
}

/// Checks the upload of the job in `job` (its file `input`) as its
/// profile reads it with the job's choices: asks for a sheet or for the
/// columns when they are needed (applying a mapping remembered for the
/// file's headers), else validates it into `job/out`.
pub fn check_upload(
    job: &Path,
    input: &Path,
    profile: &Settings,
    mappings: &Path,
) -> anyhow::Result<UploadCheck> {
    let mut choices = JobChoices::read(job);
    let settings = job_settings(profile, job)?;
    match sheet_question(input, &settings)? {
        Some(
            SheetQuestion::Several { .. }
            | SheetQuestion::Missing { .. }
            | SheetQuestion::Unexamined { .. },
        ) => {
            return Ok(UploadCheck::Needs(Needs::Sheet));
        }
        Some(SheetQuestion::OnlyOne(sheet)) => {
            choices.sheet = Some(sheet);
            choices.write(job)?;
        }
        None => {}
    }
    let mut settings = job_settings(profile, job)?;
    if needs_columns(input, &settings)
        && let Some(probe) = probe(input, &settings)?
    {
        if !probe.has_rows {
            return Ok(UploadCheck::HeaderOnly {
                header_row: probe.header_row,
            });
        }
        let Some(columns) = remembered_mapping(mappings, &probe.headers) else {
            return Ok(UploadCheck::Needs(Needs::Columns));
        };
        choices.columns = Some(ColumnChoice {
            header_row: probe.header_row,
            columns,
        });
        choices.write(job)?;
        settings = job_settings(profile, job)?;
        if needs_columns(input, &settings) {
            return Ok(UploadCheck::Needs(Needs::Columns));
        }
    }
    Ok(UploadCheck::Checked(Box::new(check_job(
        job, input, &settings,
    )?)))
}

/// Validates the job's file into `job/out` with every rule a run applies
/// before sending: the fields, the rows against each other, and the
/// profile's ledger (a row it would refuse is rejected now).
pub fn check_job(job: &Path, input: &Path, settings: &Settings) -> anyhow::Result<ValidateSummary> {
    let out = job.join("out");
    let question = match (settings.endpoint(), settings.scope()) {
        (Ok(endpoint), Ok((endpoint_name, client_id))) => {
            let path = settings.ledger.for_run(endpoint, &out);
            // A ledger that does not exist yet is not made by a check.
            let ledger = match path.exists() {
                true => Some(crate::ledger::Ledger::open(
                    &path,
                    &endpoint_name,
                    &client_id,
                )?),
                false => None,
            };
            ledger.map(|ledger| LedgerQuestion {
                ledger: Some(ledger),
                retransmit_wait: settings.retransmit_wait,
                resend_failed: false,
            })
        }
        _ => None,
    };
    validate_keeping_reasons(
        input,
        settings,
        &out,
        &job.join(super::jobs::REASONS),
        question,
    )
}

/// Whether the file's header row cannot be found with the settings' column
/// names, or lacks a field every row needs: its columns need mapping.
pub fn needs_columns(input: &Path, settings: &Settings) -> bool {
    match RowSource::open(input, &settings.input.open_options()) {
        Err(InputError::NoHeaderRow { .. }) => true,
        Ok(source) => matches!(
            ColumnMap::resolve(
                source.headers(),
                &settings.input.fields,
                source.header_line()
            ),
            Err(MappingError::MissingRequired { .. })
        ),
        Err(_) => false,
    }
}

/// Which sheet to read, when the settings do not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetQuestion {
    /// The profile names a sheet the workbook does not have.
    Missing { pinned: String, sheets: Vec<String> },
    /// Several sheets have a header row: the clerk says which (or all).
    Several { sheets: Vec<String> },
    /// More sheets than are looked into: the clerk says which one.
    Unexamined { sheets: Vec<String> },
    /// One sheet has a header row: it is read.
    OnlyOne(String),
}

impl SheetQuestion {
    /// The sheets to choose from.
    pub fn sheets(&self) -> &[String] {
        match self {
            SheetQuestion::Missing { sheets, .. }
            | SheetQuestion::Several { sheets }
            | SheetQuestion::Unexamined { sheets } => sheets,
            SheetQuestion::OnlyOne(sheet) => std::slice::from_ref(sheet),
        }
    }
}

/// The question about sheets a workbook raises with these settings; none
/// for a CSV file or a sheet the settings name and the workbook has.
pub fn sheet_question(input: &Path, settings: &Settings) -> anyhow::Result<Option<SheetQuestion>> {
    let is_workbook = input
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("xlsx"));
    if !is_workbook {
        return Ok(None);
    }
    let sheets = crate::input::xlsx_sheet_names(input)?;
    let pinned = &settings.input.sheet;
    if !pinned.is_empty() {
        if sheets.contains(pinned) {
            return Ok(None);
        }
        return Ok(Some(SheetQuestion::Missing {
            pinned: pinned.clone(),
            sheets,
        }));
    }
    if sheets.len() > MAX_SHEETS_LOOKED_AT {
        // Too many to look into: the clerk says which.
        return Ok(Some(SheetQuestion::Unexamined { sheets }));
    }
    let mut with_orders = Vec::new();
    for sheet in sheets {
        let mut one = settings.clone();
        one.input.sheet = sheet.clone();
        if probe(input, &one)?.is_some_and(|probe| probe.has_rows && probe.recognised) {
            with_orders.push(sheet);
        }
    }
    Ok(match with_orders.len() {
        0 => None,
        1 => with_orders.pop().map(SheetQuestion::OnlyOne),
        _ => Some(SheetQuestion::Several {
            sheets: with_orders,
        }),
    })
}

/// The header row the page guesses for a file whose headers do not match
/// its profile, with what is under each header.
#[derive(Debug, Clone)]
pub struct HeaderProbe {
    pub sheet: Option<String>,
    pub header_row: u64,
    pub headers: Vec<String>,
    /// Per column, the first rows' values (numbers that look like
    /// certificate numbers masked).
    pub samples: Vec<Vec<String>>,
    /// Per field, the column the page proposes: the profile's header when
    /// the file has it, else `init`'s guess.
    pub proposed: Vec<(Field, Option<usize>)>,
    /// Whether any row follows the header row.
    pub has_rows: bool,
    /// The values under the proposed amount column, for `init`'s guess of
    /// their unit.
    pub amounts: Vec<String>,
    /// Whether the header row holds headers the profile or `init` knows
    /// (not only the first row of several cells).
    pub recognised: bool,
}

/// Finds the row, among the first non-blank rows, that holds the most
/// headers the profile or `init` knows (two at least), and what is under
/// it; `None` when no row does.
pub fn probe(input: &Path, settings: &Settings) -> anyhow::Result<Option<HeaderProbe>> {
    let options = InputOptions {
        sheet: settings.input.sheet.clone(),
        encoding: settings.input.encoding,
        header: HeaderSearch::default(),
        edits: None,
    };
    let mut source = match RowSource::open(input, &options) {
        Ok(source) => source,
        Err(InputError::Unreadable { message, .. }) if message.contains("empty") => {
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let sheet = source.sheet().map(str::to_owned);
    let mut rows = vec![(source.header_line(), source.headers().to_vec())];
    while rows.len() < HEADER_SEARCH_ROWS + AMOUNT_ROWS {
        match source.next_row()? {
            Some(row) => rows.push((row.line, row.header_texts())),
            None => break,
        }
    }
    let known: Vec<&str> = Field::ALL
        .iter()
        .map(|&field| settings.input.fields.header_for(field))
        .collect();
    let score = |cells: &[String]| {
        cells
            .iter()
            .filter(|cell| !cell.is_empty())
            .filter(|cell| known.contains(&cell.as_str()) || field_of(cell).is_some())
            .count()
    };
    let best = rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .enumerate()
        .map(|(index, (_, cells))| (index, score(cells)))
        .filter(|(_, score)| *score >= 2)
        .max_by_key(|(index, score)| (*score, std::cmp::Reverse(*index)))
        .map(|(index, _)| index)
        // Headers no one knows: the first row that looks like names, for
        // the clerk to map.
        .or_else(|| {
            rows.iter()
                .take(HEADER_SEARCH_ROWS)
                .position(|(_, cells)| looks_like_headers(cells))
        });
    let Some(index) = best else {
        return Ok(None);
    };
    let (header_row, headers) = rows[index].clone();
    let samples = (0..headers.len())
        .map(|column| {
            rows[index + 1..]
                .iter()
                .take(SAMPLE_ROWS)
                .filter_map(|(_, cells)| cells.get(column))
                .filter(|cell| !cell.is_empty())
                .map(|cell| masked_sample(cell))
                .collect()
        })
        .collect();
    let mut taken = Vec::new();
    let proposed: Vec<(Field, Option<usize>)> = Field::ALL
        .iter()
        .map(|&field| {
            let configured = settings.input.fields.header_for(field);
            let column = headers
                .iter()
                .position(|header| header == configured)
                .or_else(|| {
                    headers.iter().enumerate().position(|(column, header)| {
                        !taken.contains(&column) && field_of(header) == Some(field)
                    })
                });
            if let Some(column) = column {
                taken.push(column);
            }
            (field, column)
        })
        .collect();
    let amounts = proposed
        .iter()
        .find(|(field, _)| *field == Field::AmountValue)
        .and_then(|(_, column)| *column)
        .map(|column| {
            rows[index + 1..]
                .iter()
                .filter_map(|(_, cells)| cells.get(column))
                .filter(|cell| !cell.is_empty())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(HeaderProbe {
        sheet,
        header_row,
        headers,
        samples,
        proposed,
        amounts,
        has_rows: rows.len() > index + 1,
        recognised: score(&rows[index].1) >= 2,
    }))
}

/// Whether a row no one recognises can still be a header row: three or
/// more names, none repeated, none with a run of digits (an ID, an amount
/// or a certificate number says it is an order, whose values must not
/// become the page's column names).
fn looks_like_headers(cells: &[String]) -> bool {
    let names: Vec<&String> = cells.iter().filter(|cell| !cell.is_empty()).collect();
    let unique = names
        .iter()
        .enumerate()
        .all(|(index, name)| !names[..index].contains(name));
    let numberless = names.iter().all(|name| {
        let mut run = 0;
        name.chars().all(|c| {
            run = if c.is_ascii_digit() { run + 1 } else { 0 };
            run < 4
        })
    });
    names.len() >= 3 && unique && numberless
}

/// The unit a file's amounts look like (`init`'s guess): the unit its
/// amount header names, else yuan when amounts have decimals or a yuan
/// sign, else fen.
pub fn guess_amount_unit(input: &Path, settings: &Settings) -> &'static str {
    let Ok(Some(probe)) = probe(input, settings) else {
        return "fen";
    };
    let Some(column) = probe
        .proposed
        .iter()
        .find(|(field, _)| *field == Field::AmountValue)
        .and_then(|(_, column)| *column)
    else {
        return "fen";
    };
    let mapping = crate::init::Mapping::of(std::slice::from_ref(&probe.headers[column]));
    if let Some(unit) = mapping.amount_unit_in_header {
        return unit;
    }
    crate::init::guess_amount_unit(probe.amounts.iter().map(String::as_str))
}

/// A sample value as the page may show it: long runs of digits (a
/// certificate number, perhaps) masked.
fn masked_sample(text: &str) -> String {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if digits >= 15 && text.chars().count() <= 20 && text.chars().all(|c| c.is_ascii_alphanumeric())
    {
        crate::ledger::mask_certificate(text)
    } else {
        text.chars().take(40).collect()
    }
}

/// A mapping remembered for a profile: the file's headers, in order, and
/// the columns mapped for them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RememberedMapping {
    headers: Vec<String>,
    columns: BTreeMap<String, String>,
}

/// The file of a profile's remembered mappings under `--data`: by its
/// name and where it declares, so that a profile of the same name that
/// declares elsewhere (IT's, after a sandbox one made on the page) never
/// inherits them.
pub fn mappings_file(data: &Path, profile: &str, settings: &Settings) -> PathBuf {
    let scope = settings
        .scope()
        .map(|(endpoint, client_id)| format!("{endpoint}\n{client_id}"))
        .unwrap_or_default();
    let scope = xxhash_rust::xxh3::xxh3_64(scope.as_bytes());
    data.join("mappings")
        .join(format!("{profile}.{scope:016x}.json"))
}

fn remembered(path: &Path) -> Vec<RememberedMapping> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// The columns mapped earlier for exactly these headers.
pub fn remembered_mapping(path: &Path, headers: &[String]) -> Option<BTreeMap<String, String>> {
    remembered(path)
        .into_iter()
        .find(|mapping| mapping.headers == headers)
        .map(|mapping| mapping.columns)
}

/// Remembers `columns` for files with exactly these headers.
pub fn remember_mapping(
    path: &Path,
    headers: &[String],
    columns: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if headers
        .iter()
        .map(|header| header.chars().count())
        .sum::<usize>()
        > MAX_REMEMBERED_HEADER_CHARS
    {
        return Ok(());
    }
    let mut mappings = remembered(path);
    mappings.retain(|mapping| mapping.headers != headers);
    mappings.push(RememberedMapping {
        headers: headers.to_vec(),
        columns: columns.clone(),
    });
    if mappings.len() > MAX_SAVED_MAPPINGS {
        mappings.drain(..mappings.len() - MAX_SAVED_MAPPINGS);
    }
    if let Some(folder) = path.parent() {
        crate::outdir::create_private_folder(folder)
            .context("cannot keep the mapping for the next export")?;
    }
    crate::report::write_json(path, &mappings)
        .context("cannot keep the mapping for the next export")
}

/// Why a mapping from the page cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingProblem {
    /// Fields every row needs, with neither a column nor a default.
    Missing(Vec<Field>),
    /// One header chosen for two fields.
    Twice(String),
    /// A header the file has in two columns: a column is found by its
    /// header, so one of them must be renamed.
    Ambiguous(String),
}

/// The mapping the page's form gives (field → column), checked against the
/// headers and the profile's defaults.
pub fn mapping_of(
    chosen: &[(Field, Option<usize>)],
    headers: &[String],
    settings: &Settings,
) -> Result<BTreeMap<String, String>, MappingProblem> {
    let mut columns = BTreeMap::new();
    let mut used: Vec<usize> = Vec::new();
    for &(field, column) in chosen {
        let Some(column) = column.filter(|&column| column < headers.len()) else {
            continue;
        };
        if used.contains(&column) {
            return Err(MappingProblem::Twice(headers[column].clone()));
        }
        if headers
            .iter()
            .filter(|header| **header == headers[column])
            .count()
            > 1
        {
            return Err(MappingProblem::Ambiguous(headers[column].clone()));
        }
        used.push(column);
        columns.insert(field.name().to_owned(), headers[column].clone());
    }
    let missing: Vec<Field> = Field::ALL
        .into_iter()
        .filter(|field| field.always_required())
        .filter(|field| settings.input.fields.defaults[field.index()].is_none())
        .filter(|field| !columns.contains_key(field.name()))
        .collect();
    if !missing.is_empty() {
        return Err(MappingProblem::Missing(missing));
    }
    Ok(columns)
}
