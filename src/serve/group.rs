//! A workbook declared sheet by sheet as one job: the clerk chose "all
//! order sheets". Each sheet becomes a part — a job of its own, checked,
//! mapped and fixed on its own page, its rows numbered as on its sheet,
//! its files its own — and the group's page shows them together, declares
//! them one after another with one button, follows them with one
//! progress line, and stops them with one Stop.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::job::{ProgressView, launch};
use super::job_input::{self, JobChoices, UploadCheck};
use super::jobs::{
    Job, JobRecord, JobState, ProfileClaim, RunEnd, Stage, declared_before, no_such_job, profiles,
    with_job, with_job_mut,
};
use super::views::{GroupPage, JobLine, PartLine, error_page_in, files_in, render};
use super::{Shared, checking, create_private_dir, new_id};
use crate::i18n::Language;
use crate::i18n::page::PageWords;
use crate::run::Progress;

/// Makes the job `id` (a workbook) a group of one part per order sheet,
/// each checked at once.
pub async fn make_parts(
    state: &Shared,
    id: &str,
    sheets: Vec<String>,
    language: Language,
) -> Result<(), String> {
    let Some((profile_name, input, folder, created_at)) = with_job(state, id, |job| {
        (
            job.profile.clone(),
            job.input.clone(),
            job.folder.clone(),
            job.created_at.clone(),
        )
    }) else {
        return Err("no such upload".to_owned());
    };
    let job = folder.parent().unwrap_or(&folder).to_owned();
    let Some(profile) = profiles(&state.settings)
        .into_iter()
        .find(|profile| profile.name == profile_name)
    else {
        return Err("the profile is gone".to_owned());
    };
    let mut record = JobRecord::read(&job).ok_or("the upload's record is gone")?;
    let name = record.input_name.clone().unwrap_or_default();
    let mut parts = Vec::new();
    let made = make_each(
        state,
        id,
        &sheets,
        &profile,
        &input,
        &created_at,
        &name,
        language,
        &mut parts,
    )
    .await;
    if let Err(message) = made {
        // Nothing half made is left: the sheets made so far go.
        let mut jobs = state.jobs.lock().expect("not poisoned");
        for part in &parts {
            jobs.remove(part);
            let _ = std::fs::remove_dir_all(state.settings.data.join("jobs").join(part));
        }
        return Err(message);
    }
    record.needs = None;
    record.parts = parts.clone();
    record.write(&job).map_err(|error| error.to_string())?;
    with_job_mut(state, id, |job| {
        job.needs = None;
        job.parts = parts;
    });
    Ok(())
}

/// Makes and checks the part of each sheet, adding each to `parts` as it
/// is made.
#[allow(clippy::too_many_arguments)]
async fn make_each(
    state: &Shared,
    id: &str,
    sheets: &[String],
    profile: &super::jobs::Profile,
    input: &Path,
    created_at: &str,
    name: &str,
    language: Language,
    parts: &mut Vec<String>,
) -> Result<(), String> {
    for sheet in sheets {
        let part = new_id();
        let part_folder = state.settings.data.join("jobs").join(&part);
        let part_input = part_folder.join(input.file_name().unwrap_or_default());
        let made = create_private_dir(&part_folder)
            .and_then(|()| Ok(link_or_copy(input, &part_input)?))
            .and_then(|()| {
                JobChoices {
                    sheet: Some(sheet.clone()),
                    columns: None,
                }
                .write(&part_folder)
            });
        if let Err(error) = made {
            return Err(state.without_paths(&format!("{error:#}")));
        }
        let mut settings = profile.settings.clone();
        settings.language = language;
        let mappings =
            job_input::mappings_file(&state.settings.data, &profile.name, &profile.settings);
        let (check_folder, check_input) = (part_folder.clone(), part_input.clone());
        let checked = checking(state, move || {
            job_input::check_upload(&check_folder, &check_input, &settings, &mappings)
        })
        .await
        .map_err(|error| error.to_string())?;
        let (needs, summary) = match checked {
            Ok(UploadCheck::Needs(needs)) => (Some(needs), None),
            Ok(UploadCheck::Checked(summary)) => (None, Some(summary)),
            Ok(UploadCheck::HeaderOnly { .. }) => (None, None),
            Err(error) => {
                let problem = super::upload::cannot_read(&error, &part_input, name.to_owned());
                return Err(state.without_paths(&problem.text(language)));
            }
        };
        let part_record = JobRecord {
            profile: profile.name.clone(),
            created_at: created_at.to_owned(),
            input_name: Some(format!("{name} «{sheet}»")),
            needs,
            parts: Vec::new(),
            group: Some(id.to_owned()),
            sheet: Some(sheet.clone()),
        };
        part_record
            .write(&part_folder)
            .map_err(|error| error.to_string())?;
        state.jobs.lock().expect("not poisoned").insert(
            part.clone(),
            Job {
                profile: profile.name.clone(),
                input: part_input,
                folder: part_folder.join("out"),
                valid_rows: summary.as_ref().map_or(0, |summary| summary.rows.valid),
                created_at: created_at.to_owned(),
                stage: Stage::Validated,
                stopped: false,
                input_sha256: summary.map_or_else(String::new, |summary| summary.input_sha256),
                needs,
                parts: Vec::new(),
                group: Some(id.to_owned()),
            },
        );
        parts.push(part);
    }
    Ok(())
}

/// A hard link to the upload, or a copy where the file system has none.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ()))
}

/// Declares the sheets of the group `id` one after another.
pub async fn declare_sheets(
    state: Shared,
    id: String,
    parts: Vec<String>,
    language: Language,
    again: bool,
) -> Response {
    let t = PageWords::of(language);
    let Some((started, profile_name, folder, sha256)) = with_job(&state, &id, |job| {
        (
            job.started(),
            job.profile.clone(),
            job.folder.clone(),
            job.input_sha256.clone(),
        )
    }) else {
        return no_such_job(language);
    };
    if started {
        return Redirect::to(&format!("/jobs/{id}")).into_response();
    }
    // Every sheet checked first: one still asking for its columns is
    // shown, not declared half.
    let asking = parts
        .iter()
        .find(|part| with_job(&state, part, |job| job.needs.is_some()).unwrap_or(false));
    if let Some(part) = asking {
        return Redirect::to(&format!("/jobs/{part}")).into_response();
    }
    let profile = profiles(&state.settings)
        .into_iter()
        .find(|profile| profile.name == profile_name);
    if !again
        && let Some(profile) = &profile
        && declared_before(&state, &id, profile, &folder, &sha256).is_some()
    {
        return error_page_in(language, StatusCode::BAD_REQUEST, t.identical_confirm_first);
    }
    // One claim of the profile for all the sheets: no other run slips in
    // between two of them.
    let Some(claim) = ProfileClaim::take(&state, &profile_name) else {
        return super::job::profile_busy(&state, &profile_name, language);
    };
    let claim = Arc::new(claim);
    let cancel = CancellationToken::new();
    // The group's own line is never written: its progress is its parts'.
    let (_, progress) = watch::channel(Progress::default());
    let claimed = with_job_mut(&state, &id, |job| {
        if job.started() {
            return false;
        }
        job.stopped = false;
        job.stage = Stage::Running {
            progress,
            cancel: cancel.clone(),
        };
        true
    });
    if claimed != Some(true) {
        return Redirect::to(&format!("/jobs/{id}")).into_response();
    }
    let runner_state = Arc::clone(&state);
    let group = id.clone();
    tokio::spawn(async move {
        let state = runner_state;
        let mut end: RunEnd = Ok(crate::exit::SUCCESS);
        let mut all_ran = true;
        for part in &parts {
            if cancel.is_cancelled() {
                all_ran = false;
                break;
            }
            // A sheet declared before (a restart, a stop) is not declared
            // again.
            if let Some(JobState::Finished(code)) = with_job(&state, part, Job::state) {
                end = worse(end, Ok(code));
                continue;
            }
            let mut run = match launch(&state, part, language, true, Some(Arc::clone(&claim))).await
            {
                Ok(run) => run,
                Err(_) => {
                    end = worse(end, Err(t.sheet_not_declared.to_owned()));
                    all_ran = false;
                    break;
                }
            };
            tokio::select! {
                _ = &mut run => {}
                () = cancel.cancelled() => {
                    with_job_mut(&state, part, |job| {
                        if let Stage::Running { cancel, .. } = &job.stage {
                            cancel.cancel();
                            job.stopped = true;
                        }
                    });
                    let _ = run.await;
                }
            }
            let part_end = with_job(&state, part, |job| match &job.stage {
                Stage::Finished { end, .. } => end.clone(),
                _ => Ok(crate::exit::UNFINISHED),
            });
            end = worse(end, part_end.unwrap_or(Ok(crate::exit::UNFINISHED)));
        }
        drop(claim);
        with_job_mut(&state, &group, |job| {
            job.stopped = cancel.is_cancelled();
            // Sheets left (a stop, a sheet that could not start): the
            // group can be declared again for them.
            job.stage = match all_ran && !cancel.is_cancelled() {
                true => Stage::Finished {
                    end,
                    progress: None,
                },
                false => Stage::Validated,
            };
        });
    });
    Redirect::to(&format!("/jobs/{id}")).into_response()
}

/// The worse of two ends: an error, else the exit code that says more is
/// wrong (a fatal end, rows left, rows failed, all declared).
fn worse(a: RunEnd, b: RunEnd) -> RunEnd {
    let rank = |code: u8| match code {
        crate::exit::SUCCESS => 0,
        crate::exit::SOME_FAILED => 1,
        crate::exit::UNFINISHED => 2,
        _ => 3,
    };
    match (a, b) {
        (Err(error), _) | (_, Err(error)) => Err(error),
        (Ok(a), Ok(b)) => Ok(if rank(b) > rank(a) { b } else { a }),
    }
}

/// The group's progress: its parts' added up.
pub fn progress_of(
    state: &Shared,
    id: &str,
    parts: &[String],
    language: Language,
) -> Option<ProgressView> {
    let jobs = state.jobs.lock().expect("not poisoned");
    let group = jobs.get(id)?;
    let views: Vec<ProgressView> = parts
        .iter()
        .filter_map(|part| jobs.get(part))
        .map(|part| ProgressView::of_job(part, language))
        .collect();
    let end = match &group.stage {
        Stage::Finished { end, .. } => Some(end),
        _ => None,
    };
    let running = matches!(group.stage, Stage::Running { .. });
    Some(ProgressView::sum(
        &views,
        running,
        end,
        group.stopped,
        language,
    ))
}

/// The stage of a group read back after a restart: finished when every
/// part finished, else waiting to be declared (again).
pub fn stage_after_restart(parts: &[&Job]) -> Stage {
    let mut end: RunEnd = Ok(crate::exit::SUCCESS);
    for part in parts {
        match part.state() {
            JobState::Finished(code) => end = worse(end, Ok(code)),
            _ => return Stage::Validated,
        }
    }
    if parts.is_empty() {
        return Stage::Validated;
    }
    Stage::Finished {
        end,
        progress: None,
    }
}

/// The group's page: its sheets with their counts, states and files, one
/// Declare for them all, one progress line.
pub fn group_page(
    state: &Shared,
    id: &str,
    profile: &super::jobs::Profile,
    parts: &[String],
    identical: Option<String>,
    language: Language,
) -> Response {
    let t = PageWords::of(language);
    let (started, running) = with_job(state, id, |job| {
        (job.started(), matches!(job.stage, Stage::Running { .. }))
    })
    .unwrap_or_default();
    let lines: Vec<PartLine> = {
        let jobs = state.jobs.lock().expect("not poisoned");
        parts
            .iter()
            .filter_map(|part| Some((part, jobs.get(part)?)))
            .map(|(part, job)| {
                let summary = super::jobs::SavedSummary::read(&job.folder);
                let sheet = JobRecord::read(job.folder.parent().unwrap_or(&job.folder))
                    .and_then(|record| record.sheet)
                    .unwrap_or_default();
                let state = match job.needs {
                    Some(_) => t.columns_title.to_owned(),
                    None => JobLine {
                        id: String::new(),
                        profile: String::new(),
                        created_at: String::new(),
                        state: job.state(),
                    }
                    .state_text(t),
                };
                PartLine {
                    id: part.clone(),
                    sheet,
                    valid: job.valid_rows,
                    rejected: summary.rows.rejected,
                    state,
                    files: files_in(&job.folder, &super::DOWNLOADS),
                }
            })
            .collect()
    };
    let ready = parts
        .iter()
        .all(|part| with_job(state, part, |job| job.needs.is_none()).unwrap_or(false));
    render(&GroupPage {
        lang: language.tag(),
        title: t.title,
        t,
        id,
        profile,
        valid_rows: lines.iter().map(|line| line.valid).sum(),
        rejected_count: lines.iter().map(|line| line.rejected).sum(),
        parts: lines,
        started,
        running,
        ready,
        identical: identical.filter(|_| !started),
    })
}
