//! The pages that get a file to the Declare button without a terminal or
//! Excel: which sheet holds the orders, which column is which field, and
//! the rejected rows as a grid to correct. Each choice and correction is
//! kept in the job's folder (`job_input.rs`) and the whole file is checked
//! again with every rule, so that the job's valid rows — what Declare
//! sends — are always what the last check found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::home::LangQuery;
use super::job_input::{
    self, ColumnChoice, JobChoices, MappingProblem, SheetQuestion, UploadCheck,
};
use super::jobs::{JobRecord, Profile, Stage, no_such_job, profiles, with_job, with_job_mut};
use super::views::{
    ColumnRow, ColumnsPage, FixPage, GridCell, GridColumn, GridRow, KindGroup, SheetPage,
    error_page_in, render,
};
use super::{Shared, checking, language_of};
use crate::fields::Field;
use crate::i18n::Language;
use crate::i18n::page::PageWords;
use crate::i18n::upload::UploadProblem;
use crate::input::{CellEdits, EditRefused};
use crate::run::validate::{KeptColumns, KeptRejection, kept_rejections};

/// The sheet page's value for "all the order sheets, as one job": no
/// sheet name can hold '*'.
pub const ALL_SHEETS: &str = "*";

/// The column chosen for each field (none: not in the file).
type Chosen = Vec<(Field, Option<usize>)>;

/// Rejected rows on one page of the grid.
const GRID_PAGE_ROWS: usize = 50;

/// What the handlers need of a job that has not been declared.
struct Unstarted {
    profile: Profile,
    /// The workbook it is a sheet of.
    group: Option<String>,
    input: PathBuf,
    /// The job's folder (its run folder is `out` inside).
    job: PathBuf,
    valid_rows: u64,
}

/// The job `id` while it can still be changed; else the page to show.
fn unstarted(state: &Shared, id: &str, language: Language) -> Result<Unstarted, Box<Response>> {
    let found = with_job(state, id, |job| {
        (
            job.profile.clone(),
            job.input.clone(),
            job.folder.clone(),
            job.started(),
            job.valid_rows,
            // Declared by its sheets: each is changed on its own page.
            !job.parts.is_empty(),
            job.group.clone(),
        )
    });
    let Some((profile_name, input, folder, started, valid_rows, grouped, group)) = found else {
        return Err(Box::new(no_such_job(language)));
    };
    // A sheet of a workbook being declared waits for its turn unchanged.
    let group_running = group.as_deref().is_some_and(|group| {
        with_job(state, group, |job| {
            matches!(job.stage, Stage::Running { .. })
        })
        .unwrap_or(false)
    });
    if started || grouped || group_running || folder.join("run.json").exists() {
        let t = PageWords::of(language);
        return Err(Box::new(error_page_in(
            language,
            StatusCode::CONFLICT,
            t.edit_after_declare,
        )));
    }
    let Some(profile) = profiles(&state.settings)
        .into_iter()
        .find(|profile| profile.name == profile_name)
    else {
        return Err(Box::new(error_page_in(
            language,
            StatusCode::NOT_FOUND,
            "the profile is gone",
        )));
    };
    let job = folder.parent().unwrap_or(&folder).to_owned();
    Ok(Unstarted {
        profile,
        group,
        input,
        job,
        valid_rows,
    })
}

/// One change of a job at a time: its choices, corrections and checks.
/// The job `id` to change, locked for the change; else the page to show.
async fn changing(
    state: &Shared,
    id: &str,
    language: Language,
) -> Result<(tokio::sync::OwnedMutexGuard<()>, Unstarted), Box<Response>> {
    let lock = job_lock(state, id).await;
    Ok((lock, unstarted(state, id, language)?))
}

/// A job the server does not know gets a lock of its own, kept nowhere:
/// invented IDs leave nothing behind.
pub async fn job_lock(state: &Shared, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let known = state.jobs.lock().expect("not poisoned").contains_key(id);
    let lock = match known {
        true => Arc::clone(
            state
                .job_locks
                .lock()
                .expect("not poisoned")
                .entry(id.to_owned())
                .or_default(),
        ),
        false => Arc::default(),
    };
    lock.lock_owned().await
}

/// The job's choices and corrections as they were, to put back when a
/// change cannot be checked: the page keeps showing what will be declared.
struct Kept {
    choices: Option<Vec<u8>>,
    edits: Option<Vec<u8>>,
}

impl Kept {
    fn of(job: &Path) -> Kept {
        Kept {
            choices: std::fs::read(job.join(job_input::CHOICES)).ok(),
            edits: std::fs::read(job.join(job_input::EDITS)).ok(),
        }
    }

    fn put_back(&self, job: &Path) {
        for (name, bytes) in [
            (job_input::CHOICES, &self.choices),
            (job_input::EDITS, &self.edits),
        ] {
            let path = job.join(name);
            let _ = match bytes {
                Some(bytes) => crate::report::AtomicFile::create(&path).and_then(|mut file| {
                    std::io::Write::write_all(&mut file, bytes)?;
                    file.commit()
                }),
                None => std::fs::remove_file(&path).or(Ok(())),
            };
        }
    }
}

/// Checks the job after a change of its choices or corrections; when the
/// file cannot be checked so, the change is undone (and the job checked
/// as it was), and the reason shown.
async fn after_change(
    state: &Shared,
    id: &str,
    target: &Unstarted,
    language: Language,
    before: Kept,
) -> Result<(), Response> {
    match recheck(state, id, target, language).await {
        Ok(()) => Ok(()),
        Err(message) => {
            before.put_back(&target.job);
            let _ = recheck(state, id, target, language).await;
            Err(error_page_in(
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                &message,
            ))
        }
    }
}

/// Checks the job's file again with its choices and corrections (a few
/// files at a time) and records what came of it: what the page must still
/// ask, or the valid rows. The error is said in `language`.
async fn recheck(
    state: &Shared,
    id: &str,
    target: &Unstarted,
    language: Language,
) -> Result<(), String> {
    let mut settings = target.profile.settings.clone();
    settings.language = language;
    let mappings = job_input::mappings_file(
        &state.settings.data,
        &target.profile.name,
        &target.profile.settings,
    );
    let (job, input) = (target.job.clone(), target.input.clone());
    let checked = checking(state, move || {
        job_input::check_upload(&job, &input, &settings, &mappings)
    })
    .await
    .map_err(|error| error.to_string())?;
    let name = JobRecord::read(&target.job)
        .and_then(|record| record.input_name)
        .unwrap_or_default();
    let (needs, valid_rows) = match checked {
        Ok(UploadCheck::Needs(needs)) => (Some(needs), 0),
        Ok(UploadCheck::HeaderOnly { header_row }) => {
            return Err(UploadProblem::HeaderOnly { name, header_row }.text(language));
        }
        Ok(UploadCheck::Checked(summary)) if summary.rows.read == 0 => {
            let problem = UploadProblem::HeaderOnly {
                name,
                header_row: summary.header_row,
            };
            return Err(problem.text(language));
        }
        Ok(UploadCheck::Checked(summary)) => (None, summary.rows.valid),
        Err(error) => {
            let problem = super::upload::cannot_read(&error, &target.input, name);
            return Err(state.without_paths(&problem.text(language)));
        }
    };
    if let Some(mut record) = JobRecord::read(&target.job) {
        record.needs = needs;
        record
            .write(&target.job)
            .map_err(|error| error.to_string())?;
    }
    with_job_mut(state, id, |job| {
        if matches!(job.stage, Stage::Validated) {
            job.needs = needs;
            job.valid_rows = valid_rows;
        }
    });
    Ok(())
}

pub async fn sheet_page(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let target = match unstarted(&state, &id, language) {
        Ok(target) => target,
        Err(page) => return *page,
    };
    let (input, settings) = (target.input.clone(), target.profile.settings.clone());
    let question =
        tokio::task::spawn_blocking(move || job_input::sheet_question(&input, &settings)).await;
    let question = match question {
        Ok(Ok(Some(question))) => question,
        Ok(Ok(None)) => return Redirect::to(&format!("/jobs/{id}")).into_response(),
        Ok(Err(error)) => {
            let problem = super::upload::cannot_read(&error, &target.input, String::new());
            return error_page_in(
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                &state.without_paths(&problem.text(language)),
            );
        }
        Err(error) => {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
    };
    let t = PageWords::of(language);
    let pinned = match &question {
        SheetQuestion::Missing { pinned, .. } => Some(pinned.clone()),
        _ => None,
    };
    render(&SheetPage {
        lang: language.tag(),
        title: t.title,
        t,
        id: &id,
        all: matches!(question, SheetQuestion::Several { .. }).then_some(ALL_SHEETS),
        pinned,
        sheets: question.sheets().to_vec(),
    })
}

#[derive(serde::Deserialize)]
pub struct SheetForm {
    sheet: String,
}

pub async fn choose_sheet(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SheetForm>,
) -> Response {
    let language = language_of(&headers, None);
    let (_lock, target) = match changing(&state, &id, language).await {
        Ok(changing) => changing,
        Err(page) => return *page,
    };
    if target.group.is_some() {
        let t = PageWords::of(language);
        return error_page_in(language, StatusCode::BAD_REQUEST, t.sheet_fixed);
    }
    if form.sheet == ALL_SHEETS {
        // Sheet names cannot hold '*': the choice of all order sheets.
        let (input, settings) = (target.input.clone(), target.profile.settings.clone());
        let question = checking(&state, move || job_input::sheet_question(&input, &settings)).await;
        let Ok(Ok(Some(SheetQuestion::Several { sheets }))) = question else {
            let t = PageWords::of(language);
            return error_page_in(language, StatusCode::BAD_REQUEST, t.sheet_choose);
        };
        return match super::group::make_parts(&state, &id, sheets, language).await {
            Ok(()) => Redirect::to(&format!("/jobs/{id}")).into_response(),
            Err(message) => error_page_in(language, StatusCode::UNPROCESSABLE_ENTITY, &message),
        };
    }
    let input = target.input.clone();
    let sheets = checking(&state, move || crate::input::xlsx_sheet_names(&input))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if !sheets.contains(&form.sheet) {
        let t = PageWords::of(language);
        return error_page_in(language, StatusCode::BAD_REQUEST, t.sheet_choose);
    }
    let before = Kept::of(&target.job);
    let choices = JobChoices::read(&target.job);
    if choices.sheet.as_deref() != Some(form.sheet.as_str()) {
        // Another sheet has its own headers and rows: its columns are
        // asked again, and corrections made to the other sheet's rows
        // are not laid over this one's.
        let choices = JobChoices {
            sheet: Some(form.sheet),
            columns: None,
        };
        if let Err(error) = choices.write(&target.job) {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
        let _ = std::fs::remove_file(target.job.join(job_input::EDITS));
    }
    match after_change(&state, &id, &target, language, before).await {
        Ok(()) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(page) => page,
    }
}

pub async fn columns_page(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let target = match unstarted(&state, &id, language) {
        Ok(target) => target,
        Err(page) => return *page,
    };
    show_columns(&state, &id, &target, language, None).await
}

/// The mapping page: each field with the file's headers to choose from,
/// the choice proposed (or the clerk's `chosen` one, refused by `problem`).
async fn show_columns(
    state: &Shared,
    id: &str,
    target: &Unstarted,
    language: Language,
    refused: Option<(Chosen, MappingProblem)>,
) -> Response {
    let settings = match job_input::job_settings(&target.profile.settings, &target.job) {
        Ok(settings) => settings,
        Err(error) => {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
    };
    let input = target.input.clone();
    let probed = checking(state, move || {
        let mut settings = settings;
        // The columns are asked afresh: the file's own header row is found.
        settings.input.header_row = 0;
        job_input::probe(&input, &settings)
    })
    .await;
    let name = JobRecord::read(&target.job)
        .and_then(|record| record.input_name)
        .unwrap_or_default();
    let probe = match probed {
        Ok(Ok(Some(probe))) => probe,
        Ok(Ok(None)) => {
            let problem = UploadProblem::CannotRead {
                name,
                reason: PageWords::of(language).columns_explained.to_owned(),
            };
            return error_page_in(
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                &problem.text(language),
            );
        }
        Ok(Err(error)) => {
            let problem = super::upload::cannot_read(&error, &target.input, name);
            return error_page_in(
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                &state.without_paths(&problem.text(language)),
            );
        }
        Err(error) => {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
    };
    let (chosen, problem) = match refused {
        Some((chosen, problem)) => (chosen, Some(problem)),
        None => (probe.proposed.clone(), None),
    };
    let defaults = &target.profile.settings.input.fields.defaults;
    let needed = |field: Field| field.always_required() && defaults[field.index()].is_none();
    let rows: Vec<ColumnRow> = chosen
        .iter()
        .map(|&(field, column)| ColumnRow {
            name: field.name(),
            words: crate::i18n::fields::field_words(field, language),
            required: needed(field),
            chosen: column,
            samples: column
                .and_then(|column| probe.samples.get(column))
                .map(|samples| {
                    let shown: Vec<String> = match field {
                        // Whatever column is chosen for it, and whatever
                        // its numbers look like.
                        Field::CertificateNo => samples
                            .iter()
                            .map(|sample| crate::ledger::mask_certificate(sample))
                            .collect(),
                        _ => samples.clone(),
                    };
                    shown.join(" · ")
                })
                .unwrap_or_default(),
            missing: needed(field) && column.is_none(),
        })
        .collect();
    let missing = rows
        .iter()
        .filter(|row| row.missing)
        .map(|row| row.words)
        .collect();
    let t = PageWords::of(language);
    let refused = problem.is_some();
    let mut response = render(&ColumnsPage {
        lang: language.tag(),
        title: t.title,
        t,
        id,
        sheet: probe.sheet,
        header_row: probe.header_row,
        headers: probe
            .headers
            .into_iter()
            .enumerate()
            .filter(|(_, header)| !header.is_empty())
            .take(super::views::MAX_OFFERED_HEADERS)
            .collect(),
        rows,
        missing,
        twice: match &problem {
            Some(MappingProblem::Twice(header)) => Some(header.clone()),
            _ => None,
        },
        ambiguous: match problem {
            Some(MappingProblem::Ambiguous(header)) => Some(header),
            _ => None,
        },
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub async fn map_columns(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Response {
    let language = language_of(&headers, None);
    let (_lock, target) = match changing(&state, &id, language).await {
        Ok(changing) => changing,
        Err(page) => return *page,
    };
    let chosen: Chosen = Field::ALL
        .iter()
        .map(|&field| {
            let column = form
                .iter()
                .find(|(name, _)| name == field.name())
                .and_then(|(_, value)| value.parse::<usize>().ok());
            (field, column)
        })
        .collect();
    let settings = match job_input::job_settings(&target.profile.settings, &target.job) {
        Ok(settings) => settings,
        Err(error) => {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
    };
    let input = target.input.clone();
    let probed = checking(&state, move || {
        let mut settings = settings;
        settings.input.header_row = 0;
        job_input::probe(&input, &settings)
    })
    .await;
    let Ok(Ok(Some(probe))) = probed else {
        return show_columns(&state, &id, &target, language, None).await;
    };
    let columns = match job_input::mapping_of(&chosen, &probe.headers, &target.profile.settings) {
        Ok(columns) => columns,
        Err(problem) => {
            return show_columns(&state, &id, &target, language, Some((chosen, problem))).await;
        }
    };
    let before = Kept::of(&target.job);
    let mut choices = JobChoices::read(&target.job);
    choices.columns = Some(ColumnChoice {
        header_row: probe.header_row,
        columns: columns.clone(),
    });
    if let Err(error) = choices.write(&target.job) {
        return error_page_in(
            language,
            StatusCode::INTERNAL_SERVER_ERROR,
            &error.to_string(),
        );
    }
    if let Err(page) = after_change(&state, &id, &target, language, before).await {
        return page;
    }
    // Remembered once the file was checked with it.
    let mappings = job_input::mappings_file(
        &state.settings.data,
        &target.profile.name,
        &target.profile.settings,
    );
    if let Err(error) = job_input::remember_mapping(&mappings, &probe.headers, &columns) {
        tracing::warn!("{}", state.without_paths(&format!("{error:#}")));
    }
    Redirect::to(&format!("/jobs/{id}")).into_response()
}

#[derive(serde::Deserialize)]
pub struct GridQuery {
    lang: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    page: usize,
}

pub async fn grid_page(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<GridQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let target = match unstarted(&state, &id, language) {
        Ok(target) => target,
        Err(page) => return *page,
    };
    show_grid(&id, &target, language, &query.kind, query.page, None)
}

/// The grid of rejected rows of `kind` (empty: all), page `page`.
fn show_grid(
    id: &str,
    target: &Unstarted,
    language: Language,
    kind: &str,
    page: usize,
    problem: Option<String>,
) -> Response {
    let reasons = target.job.join(super::jobs::REASONS);
    let columns = KeptColumns::read(&reasons).unwrap_or_default();
    let certificate = Field::CertificateNo.name();
    let grid_columns: Vec<GridColumn> = columns
        .fields
        .iter()
        .map(|(field, column, header)| GridColumn {
            index: *column,
            header: header.clone(),
            masked: field == certificate,
        })
        .collect();
    // Counted and paged as the file is read: one page is held at a time.
    let mut kinds: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut rejected_count = 0u64;
    let mut matching = 0usize;
    let mut rows = Vec::new();
    let first = page * GRID_PAGE_ROWS;
    for rejection in kept_rejections(&reasons).into_iter().flatten() {
        rejected_count += 1;
        let mut of_kind = kind.is_empty();
        for problem in &rejection.problems {
            let entry = kinds.entry(problem.kind()).or_insert_with(|| {
                let what = crate::i18n::rows::describe_code(problem.message.code(), language);
                let text = match problem.label.is_empty() {
                    true => what.to_owned(),
                    false => format!("{}: {what}", problem.label),
                };
                (text, 0)
            });
            entry.1 += 1;
            of_kind |= problem.kind() == kind;
        }
        if !of_kind {
            continue;
        }
        if matching >= first && matching < first + GRID_PAGE_ROWS {
            rows.push(grid_row(&rejection, &columns, &grid_columns, language));
        }
        matching += 1;
    }
    let href = |kind: &str, page: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !kind.is_empty() {
            query.append_pair("kind", kind);
        }
        if page > 0 {
            query.append_pair("page", &page.to_string());
        }
        format!("/jobs/{id}/fix?{}", query.finish())
    };
    let mut kinds: Vec<KindGroup> = kinds
        .into_iter()
        .map(|(kind, (text, count))| KindGroup {
            href: href(&kind, 0),
            kind,
            text,
            count,
        })
        .collect();
    kinds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    let t = PageWords::of(language);
    let shown = rows.len();
    let page_note = (matching > shown).then(|| {
        format!(
            "{} {} · {}–{} / {matching}",
            t.page_of,
            page + 1,
            first + 1.min(shown),
            first + shown
        )
    });
    let summary = super::jobs::SavedSummary::read(&target.job.join("out"));
    // More rejected rows than the grid keeps: said, with where they are.
    let page_note = match (page_note, rejected_count < summary.rows.rejected) {
        (note, true) => Some(format!(
            "{}{} {rejected_count} / {} · {}",
            note.map(|note| format!("{note} · ")).unwrap_or_default(),
            t.first_of,
            summary.rows.rejected,
            t.all_in_rejected_xlsx
        )),
        (note, false) => note,
    };
    render(&FixPage {
        lang: language.tag(),
        title: t.title,
        t,
        id,
        valid_rows: target.valid_rows,
        rejected_count: summary.rows.rejected.max(rejected_count),
        problem,
        kinds,
        kind: kind.to_owned(),
        page,
        columns: grid_columns,
        rows,
        page_note,
        previous: (page > 0).then(|| href(kind, page - 1)),
        next: (first + GRID_PAGE_ROWS < matching).then(|| href(kind, page + 1)),
    })
}

fn grid_row(
    rejection: &KeptRejection,
    columns: &KeptColumns,
    grid_columns: &[GridColumn],
    language: Language,
) -> GridRow {
    let mut other_problems = Vec::new();
    let mut by_column: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for problem in &rejection.problems {
        let text = crate::i18n::labelled(&problem.label, &problem.message, language);
        match columns.column_of(&problem.field) {
            Some(column) => by_column.entry(column).or_default().push(text),
            None => other_problems.push(text),
        }
    }
    GridRow {
        line: rejection.row,
        cells: grid_columns
            .iter()
            .map(|column| GridCell {
                column: column.index,
                header: column.header.clone(),
                text: rejection
                    .cells
                    .get(&column.index)
                    .cloned()
                    .unwrap_or_default(),
                masked: column.masked,
                problems: by_column.remove(&column.index).unwrap_or_default(),
            })
            .collect(),
        other_problems,
    }
}

/// The rejected row `line` as kept, if it is still rejected.
fn kept_row(job: &Path, line: u64) -> Option<KeptRejection> {
    kept_rejections(&job.join(super::jobs::REASONS))?.find(|rejection| rejection.row == line)
}

pub async fn fix_row(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Response {
    let language = language_of(&headers, None);
    let (_lock, target) = match changing(&state, &id, language).await {
        Ok(changing) => changing,
        Err(page) => return *page,
    };
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let kind = field("kind").unwrap_or_default().to_owned();
    let page = field("page")
        .and_then(|page| page.parse().ok())
        .unwrap_or(0);
    let Some(line) = field("row").and_then(|row| row.parse::<u64>().ok()) else {
        return show_grid(&id, &target, language, &kind, page, None);
    };
    // Only the cells of a row that is rejected, in the fields' columns.
    let Some(kept) = kept_row(&target.job, line) else {
        return Redirect::to(&format!("/jobs/{id}/fix")).into_response();
    };
    let columns = KeptColumns::read(&target.job.join(super::jobs::REASONS)).unwrap_or_default();
    let certificate = columns.column_of(Field::CertificateNo.name());
    let mut edits = match CellEdits::read(&target.job.join(job_input::EDITS)) {
        Ok(edits) => edits,
        Err(error) => {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
    };
    let mut changed = false;
    for (name, value) in &form {
        let Some(column) = name
            .strip_prefix('c')
            .and_then(|column| column.parse::<usize>().ok())
        else {
            continue;
        };
        if columns.fields.iter().all(|(_, known, _)| *known != column) {
            continue;
        }
        let value = value.trim();
        let unchanged = match Some(column) == certificate {
            // Shown masked: an empty box keeps the number.
            true => value.is_empty(),
            false => kept.cells.get(&column).map(String::as_str) == Some(value),
        };
        if unchanged {
            continue;
        }
        if let Err(refused) = edits.set(line, column, value) {
            let problem = refused_text(refused, language);
            return show_grid(&id, &target, language, &kind, page, Some(problem));
        }
        changed = true;
    }
    if !changed {
        return show_grid(&id, &target, language, &kind, page, None);
    }
    save_edits_and_recheck(&state, &id, &target, language, &edits, &kind, page).await
}

fn refused_text(refused: EditRefused, language: Language) -> String {
    let t = PageWords::of(language);
    match refused {
        EditRefused::TooLong => t.edit_too_long,
        EditRefused::TooMany => t.edit_too_many,
    }
    .to_owned()
}

async fn save_edits_and_recheck(
    state: &Shared,
    id: &str,
    target: &Unstarted,
    language: Language,
    edits: &CellEdits,
    kind: &str,
    page: usize,
) -> Response {
    if let Err(error) = edits.write(&target.job.join(job_input::EDITS)) {
        return error_page_in(
            language,
            StatusCode::INTERNAL_SERVER_ERROR,
            &error.to_string(),
        );
    }
    if let Err(message) = recheck(state, id, target, language).await {
        return error_page_in(language, StatusCode::UNPROCESSABLE_ENTITY, &message);
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !kind.is_empty() {
        query.append_pair("kind", kind);
    }
    if page > 0 {
        query.append_pair("page", &page.to_string());
    }
    Redirect::to(&format!("/jobs/{id}/fix?{}", query.finish())).into_response()
}

#[derive(serde::Deserialize)]
pub struct ReplaceForm {
    column: usize,
    find: String,
    #[serde(default)]
    replace: String,
    #[serde(default)]
    kind: String,
}

/// Replaces `find` by `replace` in one column of every rejected row (of
/// the kind shown), then checks the file again once.
pub async fn replace(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ReplaceForm>,
) -> Response {
    let language = language_of(&headers, None);
    let (_lock, target) = match changing(&state, &id, language).await {
        Ok(changing) => changing,
        Err(page) => return *page,
    };
    let reasons = target.job.join(super::jobs::REASONS);
    let columns = KeptColumns::read(&reasons).unwrap_or_default();
    let masked = columns.column_of(Field::CertificateNo.name()) == Some(form.column);
    let known = columns
        .fields
        .iter()
        .any(|(_, column, _)| *column == form.column);
    if form.find.is_empty() || masked || !known {
        return show_grid(&id, &target, language, &form.kind, 0, None);
    }
    let mut edits = match CellEdits::read(&target.job.join(job_input::EDITS)) {
        Ok(edits) => edits,
        Err(error) => {
            return error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &error.to_string(),
            );
        }
    };
    let mut changed = false;
    for rejection in kept_rejections(&reasons).into_iter().flatten() {
        let of_kind = form.kind.is_empty()
            || rejection
                .problems
                .iter()
                .any(|problem| problem.kind() == form.kind);
        let Some(text) = rejection.cells.get(&form.column) else {
            continue;
        };
        if !of_kind || !text.contains(&form.find) {
            continue;
        }
        let replaced = text.replace(&form.find, &form.replace);
        if let Err(refused) = edits.set(rejection.row, form.column, replaced.trim()) {
            let problem = refused_text(refused, language);
            return show_grid(&id, &target, language, &form.kind, 0, Some(problem));
        }
        changed = true;
    }
    if !changed {
        return show_grid(&id, &target, language, &form.kind, 0, None);
    }
    save_edits_and_recheck(&state, &id, &target, language, &edits, "", 0).await
}
