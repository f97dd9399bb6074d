//! A job's handlers: its page (the validation, the button that declares,
//! the live progress, the files), declaring it with the same engine as
//! `run`, its progress for the page's script, and its files.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::home::LangQuery;
use super::jobs::{
    Job, Needs, ProfileClaim, RunEnd, SavedSummary, Stage, declared_before, no_such_job, profiles,
    with_job, with_job_mut,
};
use super::views::{JobPage, Outcome, error_page_in, files_in, rejected_rows, render};
use super::{DOWNLOADS, FILE_POLICY, Shared, language_of};
use crate::i18n::Language;
use crate::i18n::page::PageWords;
use crate::i18n::progress::{RunEndWords, RunFigures, progress_text};
use crate::run::validate::kept_reasons;
use crate::run::{Phase, Progress, RunOptions, RunPlan, execute};

pub async fn job_page(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let profiles = profiles(&state.settings);
    let job = with_job(&state, &id, |job| {
        (
            job.profile.clone(),
            job.folder.clone(),
            job.valid_rows,
            job.started(),
            matches!(job.stage, Stage::Running { .. }),
            job.input_sha256.clone(),
            job.needs,
            job.parts.clone(),
            job.group.clone(),
        )
    });
    let Some((profile_name, folder, valid_rows, started, running, sha256, needs, parts, group)) =
        job
    else {
        return no_such_job(language);
    };
    // The page asks what it must know before it can check the file.
    match needs {
        Some(Needs::Sheet) if !started => {
            return Redirect::to(&format!("/jobs/{id}/sheet")).into_response();
        }
        Some(Needs::Columns) if !started => {
            return Redirect::to(&format!("/jobs/{id}/columns")).into_response();
        }
        _ => {}
    }
    let Some(profile) = profiles.into_iter().find(|p| p.name == profile_name) else {
        let t = PageWords::of(language);
        return error_page_in(language, StatusCode::NOT_FOUND, t.no_such_profile);
    };
    let identical = if started {
        None
    } else {
        declared_before(&state, &id, &profile, &folder, &sha256)
    };
    let t = PageWords::of(language);
    if !parts.is_empty() {
        return super::group::group_page(&state, &id, &profile, &parts, identical, language);
    }
    let summary = SavedSummary::read(&folder);
    let outcomes = if summary.is_run() && !running {
        Outcome::of_codes(&summary.codes, language)
    } else {
        Vec::new()
    };
    render(&JobPage {
        lang: language.tag(),
        title: t.title,
        t,
        id: &id,
        profile: &profile,
        valid_rows,
        rejected_count: summary.rows.rejected,
        // Said in the page's language from the reasons kept as codes; a
        // run that rejected other rows than the last check did (the
        // ledger changed meanwhile) is shown from its own rejected.csv.
        rejected: folder
            .parent()
            .map(|job| job.join(super::jobs::REASONS))
            .filter(|reasons| {
                !started
                    || crate::run::validate::kept_rejections(reasons)
                        .is_some_and(|kept| kept.count() as u64 == summary.rows.rejected)
            })
            .and_then(|reasons| kept_reasons(&reasons, language))
            .unwrap_or_else(|| rejected_rows(&folder)),
        started,
        running,
        identical,
        outcomes,
        sheet: summary.sheet.clone(),
        header_row: summary.header_row,
        files: files_in(&folder, &DOWNLOADS),
        group,
    })
}

#[derive(serde::Deserialize)]
pub struct DeclareForm {
    confirm: Option<String>,
    /// The same file was declared before and the clerk goes on anyway.
    again: Option<String>,
}

/// Starts the run of a validated upload with the same engine as `run`;
/// a workbook declared sheet by sheet runs its sheets one after another.
pub async fn declare(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<DeclareForm>,
) -> Response {
    let language = language_of(&headers, None);
    let t = PageWords::of(language);
    if form.confirm.as_deref() != Some("yes") {
        return error_page_in(language, StatusCode::BAD_REQUEST, t.confirm_first);
    }
    let again = form.again.as_deref() == Some("yes");
    let parts = with_job(&state, &id, |job| (job.parts.clone(), job.group.clone()));
    match parts {
        None => no_such_job(language),
        // A sheet of a group is declared with the others.
        Some((_, Some(group))) => Redirect::to(&format!("/jobs/{group}")).into_response(),
        Some((parts, None)) if !parts.is_empty() => {
            super::group::declare_sheets(state, id, parts, language, again).await
        }
        Some(_) => match launch(&state, &id, language, again, None).await {
            Ok(_) => Redirect::to(&format!("/jobs/{id}")).into_response(),
            Err(page) => *page,
        },
    }
}

/// Starts the run of the job `id` (checks, profile claim, plan) and
/// returns the task that ends with it; the page to show when it cannot
/// start. `again`: the clerk knows the file was declared before. `held`:
/// the profile's claim, when the caller (a group's runner) holds it for
/// all its sheets.
pub async fn launch(
    state: &Shared,
    id: &str,
    language: Language,
    again: bool,
    held: Option<Arc<ProfileClaim>>,
) -> Result<tokio::task::JoinHandle<()>, Box<Response>> {
    let t = PageWords::of(language);
    let refuse = |response: Response| Err(Box::new(response));
    // No change of the job's sheet, columns or corrections while its state
    // is read and its run prepared: it is declared as last checked.
    let _editing = super::fixing::job_lock(state, id).await;
    let job = with_job(state, id, |job| {
        (
            job.profile.clone(),
            job.input.clone(),
            job.folder.clone(),
            job.started(),
            job.input_sha256.clone(),
            job.needs,
            // Made a group while this request waited for the lock.
            !job.parts.is_empty(),
        )
    });
    let Some((profile_name, input, folder, started, sha256, needs, grouped)) = job else {
        return refuse(no_such_job(language));
    };
    if started || needs.is_some() || grouped {
        return refuse(Redirect::to(&format!("/jobs/{id}")).into_response());
    }

    let Some(profile) = profiles(&state.settings)
        .into_iter()
        .find(|p| p.name == profile_name)
    else {
        return refuse(error_page_in(
            language,
            StatusCode::NOT_FOUND,
            t.no_such_profile,
        ));
    };
    if !again && declared_before(state, id, &profile, &folder, &sha256).is_some() {
        return refuse(error_page_in(
            language,
            StatusCode::BAD_REQUEST,
            t.identical_confirm_first,
        ));
    }
    if let Some(problem) = &profile.problem {
        // The technical reason is IT's: in the log, not on the page.
        tracing::warn!("the profile {} cannot declare: {problem}", profile.name);
        return refuse(error_page_in(
            language,
            StatusCode::UNPROCESSABLE_ENTITY,
            t.profile_not_ready,
        ));
    }
    // Freed when the run ends, or at once when the request fails or the
    // client leaves before the run starts.
    let claim = match held {
        Some(claim) => claim,
        None => match ProfileClaim::take(state, &profile.name) {
            Some(claim) => Arc::new(claim),
            None => return refuse(profile_busy(state, &profile.name, language)),
        },
    };
    let options = RunOptions {
        input,
        out: folder,
        fresh: false,
        // The page says at once that another run holds the ledger.
        wait: std::time::Duration::ZERO,
        resend_failed: false,
        resolve_unknown: false,
        // The clerk opens results and retries in Excel, IDs as text.
        workbooks: true,
    };
    // Declared as it was last checked: the sheet, columns and corrections
    // chosen on the page.
    let job_folder = folder_of_job(&options.out);
    let settings = match super::job_input::job_settings(&profile.settings, &job_folder) {
        // The run's report is written in the clerk's language.
        Ok(mut settings) => {
            settings.language = language;
            settings
        }
        Err(error) => {
            return refuse(error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "{} {}",
                    t.run_cannot_start,
                    state.without_paths(&format!("{error:#}"))
                ),
            ));
        }
    };
    let plan = match tokio::task::spawn_blocking(move || RunPlan::prepare(options, settings)).await
    {
        Ok(Ok(plan)) => plan,
        Ok(Err(error)) => {
            return refuse(error_page_in(
                language,
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!(
                    "{} {}",
                    t.run_cannot_start,
                    state.without_paths(&format!("{error:#}"))
                ),
            ));
        }
        Err(error) => {
            return refuse(error_page_in(
                language,
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("{} {error}", t.run_cannot_start),
            ));
        }
    };
    let cancel = CancellationToken::new();
    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    if let Some(job) = state.jobs.lock().expect("not poisoned").get_mut(id) {
        job.stage = Stage::Running {
            progress: progress_rx.clone(),
            cancel: cancel.clone(),
        };
    }
    let run_state = Arc::clone(state);
    let run_id = id.to_owned();
    Ok(tokio::spawn(async move {
        let events: crate::run::Events = Arc::new(|event| match event {
            // The operator must hear that the run stopped writing.
            crate::run::RunEvent::WriteFailed { .. } => tracing::warn!("{event}"),
            _ => tracing::info!("{event}"),
        });
        let report = execute(plan, cancel, Arc::new(progress_tx), events).await;
        // Shown on the job's page: without the server's folders.
        let finished = match report.map(|report| report.outcome) {
            Ok(crate::run::RunOutcome::Fatal(error)) | Err(error) => {
                Err(run_state.without_paths(&format!("{error:#}")))
            }
            Ok(outcome) => Ok(crate::exit::of_run(outcome.conclusion())),
        };
        if let Some(job) = run_state
            .jobs
            .lock()
            .expect("not poisoned")
            .get_mut(&run_id)
        {
            job.stage = Stage::Finished {
                end: finished,
                progress: Some(progress_rx),
            };
        }
        drop(claim);
    }))
}

/// The run's progress, for the page's live view: figures against the job's
/// valid rows, and the line to show in the page's language.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct ProgressView {
    started: bool,
    phase: &'static str,
    /// The job's valid rows.
    valid: u64,
    settled: u64,
    /// Answered from the ledger or the journal: declared earlier.
    earlier: u64,
    #[serde(rename = "S")]
    success: u64,
    #[serde(rename = "F")]
    failed: u64,
    #[serde(rename = "U")]
    unknown: u64,
    /// Rows the run rejected itself (the ledger's refusals among them).
    rejected: u64,
    /// Rows settled per second since the run began sending, and the
    /// seconds left at that pace.
    rate: Option<f64>,
    eta_secs: Option<u64>,
    /// The endpoint stopped answering at this local time (HH:MM:SS).
    waiting_since: Option<String>,
    done: bool,
    /// For scripts; the page says it in words.
    exit_code: Option<u8>,
    error: Option<String>,
    /// What the page shows.
    text: String,
}

impl ProgressView {
    fn of(
        snapshot: &Progress,
        valid: u64,
        end: Option<&RunEnd>,
        stopped: bool,
        language: Language,
    ) -> ProgressView {
        let written = snapshot.written;
        let earlier = snapshot.from_ledger + snapshot.replayed;
        // The pace of the rows this run settles itself, from its own start.
        let elapsed = snapshot
            .declaring_since
            .map_or(0.0, |since| since.elapsed().as_secs_f64());
        let sent = snapshot.tally.settled.total();
        let settled = snapshot.settled();
        let rate = (elapsed >= 1.0 && sent > 0).then(|| sent as f64 / elapsed);
        let left = rate.map(|rate| {
            std::time::Duration::from_secs_f64(valid.saturating_sub(settled) as f64 / rate)
        });
        let waiting_since = snapshot
            .outage_since
            .map(|since| since.format("%H:%M:%S").to_string());
        let figures = RunFigures {
            valid,
            settled,
            earlier,
            success: written.success,
            failed: written.failed,
            unknown: written.unknown,
            rejected: snapshot.rows.rejected,
            rate,
            left,
            waiting_since,
            end: end.map(|end| end_words(end, stopped)),
        };
        let phase = match snapshot.phase {
            Phase::Declaring => "declaring",
            Phase::WritingOutputs => "writing",
            Phase::Finished => "finished",
        };
        ProgressView::of_figures(figures, true, phase, end.cloned(), language)
    }

    /// What the page gets of a run's figures and its end.
    fn of_figures(
        figures: RunFigures,
        started: bool,
        phase: &'static str,
        end: Option<RunEnd>,
        language: Language,
    ) -> ProgressView {
        ProgressView {
            started,
            phase,
            valid: figures.valid,
            settled: figures.settled,
            earlier: figures.earlier,
            success: figures.success,
            failed: figures.failed,
            unknown: figures.unknown,
            rejected: figures.rejected,
            rate: figures.rate,
            eta_secs: figures.left.map(|left| left.as_secs()),
            waiting_since: figures.waiting_since.clone(),
            done: end.is_some(),
            exit_code: end.as_ref().and_then(|end| end.as_ref().ok().copied()),
            error: end.and_then(|end| end.err()),
            text: progress_text(&figures, language),
        }
    }

    /// A run that ended before this server started: what its summary says.
    fn saved(summary: &SavedSummary, end: &RunEnd, language: Language) -> ProgressView {
        let figures = RunFigures {
            valid: summary.rows.valid,
            settled: summary.rows.valid,
            earlier: summary.from_ledger,
            success: summary.results.success,
            failed: summary.results.failed,
            unknown: summary.results.unknown,
            rejected: summary.rows.rejected,
            // Read back after a restart: a fatal end is a failure, an
            // interrupted one a stop.
            end: Some(match end {
                Ok(crate::exit::FATAL) => {
                    RunEndWords::Failed(summary.stopped.clone().unwrap_or_else(|| "-".to_owned()))
                }
                _ => end_words(end, summary.stopped.as_deref() == Some("interrupted")),
            }),
            ..RunFigures::default()
        };
        ProgressView::of_figures(figures, true, "finished", Some(end.clone()), language)
    }
}

fn end_words(end: &RunEnd, stopped: bool) -> RunEndWords {
    match end {
        Ok(_) => RunEndWords::Finished { stopped },
        Err(error) => RunEndWords::Failed(error.clone()),
    }
}

pub async fn progress(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let parts = with_job(&state, &id, |job| job.parts.clone());
    let view = match parts {
        Some(parts) if !parts.is_empty() => {
            super::group::progress_of(&state, &id, &parts, language)
        }
        _ => with_job(&state, &id, |job| ProgressView::of_job(job, language)),
    };
    match view {
        Some(view) => axum::Json(view).into_response(),
        None => no_such_job(language),
    }
}

impl ProgressView {
    /// Where a job's run is, as the page shows it.
    pub(super) fn of_job(job: &Job, language: Language) -> ProgressView {
        let valid = job.valid_rows;
        match &job.stage {
            Stage::Validated => ProgressView {
                valid,
                rejected: SavedSummary::read(&job.folder).rows.rejected,
                ..ProgressView::default()
            },
            Stage::Running { progress, .. } => {
                ProgressView::of(&progress.borrow(), valid, None, job.stopped, language)
            }
            Stage::Finished {
                end,
                progress: Some(progress),
            } => ProgressView::of(&progress.borrow(), valid, Some(end), job.stopped, language),
            Stage::Finished {
                end,
                progress: None,
            } => ProgressView::saved(&SavedSummary::read(&job.folder), end, language),
        }
    }

    /// The runs of a workbook's sheets as one: their figures added up, the
    /// pace of the one declaring, and the group's end.
    pub(super) fn sum(
        parts: &[ProgressView],
        running: bool,
        end: Option<&RunEnd>,
        stopped: bool,
        language: Language,
    ) -> ProgressView {
        let add = |figure: fn(&ProgressView) -> u64| parts.iter().map(figure).sum::<u64>();
        let (valid, settled) = (add(|p| p.valid), add(|p| p.settled));
        let rate = parts.iter().filter(|p| !p.done).find_map(|p| p.rate);
        let left = rate.map(|rate| {
            std::time::Duration::from_secs_f64(valid.saturating_sub(settled) as f64 / rate)
        });
        let figures = RunFigures {
            valid,
            settled,
            earlier: add(|p| p.earlier),
            success: add(|p| p.success),
            failed: add(|p| p.failed),
            unknown: add(|p| p.unknown),
            rejected: add(|p| p.rejected),
            rate,
            left,
            waiting_since: parts.iter().find_map(|p| p.waiting_since.clone()),
            end: end.map(|end| end_words(end, stopped)),
        };
        let started = running || end.is_some() || parts.iter().any(|p| p.started);
        let phase = if end.is_some() {
            "finished"
        } else {
            "declaring"
        };
        ProgressView::of_figures(figures, started, phase, end.cloned(), language)
    }
}

/// The folder of a job whose run folder is `out`.
fn folder_of_job(out: &Path) -> std::path::PathBuf {
    out.parent().unwrap_or(out).to_owned()
}

/// The page that says a run of `profile` is going on, and where.
pub fn profile_busy(state: &Shared, profile: &str, language: Language) -> Response {
    let t = PageWords::of(language);
    let running = running_job_of(state, profile)
        .map(|job| format!(" /jobs/{job}"))
        .unwrap_or_default();
    error_page_in(
        language,
        StatusCode::CONFLICT,
        &format!("{} ({profile}){running}", t.profile_busy),
    )
}

/// The job whose run of `profile` is going on.
fn running_job_of(state: &Shared, profile: &str) -> Option<String> {
    let jobs = state.jobs.lock().expect("not poisoned");
    jobs.iter()
        .find(|(_, job)| job.profile == profile && matches!(job.stage, Stage::Running { .. }))
        .map(|(id, _)| id.clone())
}

/// Stops a job's run as Ctrl-C does: nothing more is sent, the requests on
/// the wire are awaited, every file is written, and the rows not settled
/// are in `retry.xlsx`.
pub async fn stop(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let language = language_of(&headers, None);
    let stopped = with_job_mut(&state, &id, |job| {
        if let Stage::Running { cancel, .. } = &job.stage {
            cancel.cancel();
            job.stopped = true;
        }
        job.group.clone()
    });
    // A sheet stopped on its own page stops its workbook's other sheets.
    if let Some(Some(group)) = &stopped {
        with_job_mut(&state, group, |job| {
            if let Stage::Running { cancel, .. } = &job.stage {
                cancel.cancel();
                job.stopped = true;
            }
        });
    }
    match stopped {
        Some(_) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        None => no_such_job(language),
    }
}

/// A file of the job's folder, by one of the names the page offers.
pub async fn download(
    State(state): State<Shared>,
    UrlPath((id, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let language = language_of(&headers, None);
    let Some(folder) = with_job(&state, &id, |job| job.folder.clone()) else {
        return no_such_job(language);
    };
    serve_file(&folder, &name, language).await
}

/// One of the files a run folder offers (`DOWNLOADS`), as the browser
/// should take it: HTML shown, the others saved.
pub async fn serve_file(folder: &Path, name: &str, language: Language) -> Response {
    let t = PageWords::of(language);
    if !DOWNLOADS.contains(&name) {
        return error_page_in(language, StatusCode::NOT_FOUND, t.no_such_file);
    }
    // Streamed: results.csv of a large run is hundreds of megabytes.
    match tokio::fs::File::open(folder.join(name)).await {
        Ok(file) => {
            let bytes = Body::from_stream(tokio_util::io::ReaderStream::new(file));
            let kind = match name.rsplit('.').next() {
                Some("csv") => "text/csv; charset=utf-8",
                Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                _ => "text/html; charset=utf-8",
            };
            let disposition = if name.ends_with(".html") {
                "inline".to_owned()
            } else {
                format!("attachment; filename=\"{name}\"")
            };
            (
                [
                    (header::CONTENT_TYPE, kind.to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                    // A run's file: nothing in it runs or loads.
                    (header::CONTENT_SECURITY_POLICY, FILE_POLICY.to_owned()),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => error_page_in(language, StatusCode::NOT_FOUND, t.file_not_yet),
    }
}
