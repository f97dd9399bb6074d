//! The home page (profiles, the upload form, the jobs, the past runs of
//! each profile's ledger) and the page's static files.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::jobs::JobState;
use super::jobs::{ledger_runs, profiles};
use super::views::{HomePage, JobLine, PastRuns, STYLE, render};
use super::{Shared, language_of};
use crate::i18n::page::PageWords;

#[derive(serde::Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

pub async fn home(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let mut jobs: Vec<JobLine> = {
        let all = state.jobs.lock().expect("not poisoned");
        all.iter()
            // A sheet of a group is listed as its group.
            .filter(|(_, job)| job.group.is_none())
            .map(|(id, job)| {
                // A workbook whose sheets were partly declared can be
                // declared again for the rest.
                let partly = job.parts.iter().any(|part| {
                    all.get(part)
                        .is_some_and(|part| part.state() != JobState::Validated)
                });
                JobLine {
                    id: id.clone(),
                    profile: job.profile.clone(),
                    created_at: job.created_at.clone(),
                    state: match job.state() {
                        JobState::Validated if partly => JobState::Interrupted,
                        state => state,
                    },
                }
            })
            .collect()
    };
    jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let profiles = profiles(&state.settings);
    let past_runs = profiles
        .iter()
        .filter(|profile| !profile.sandbox && profile.problem.is_none())
        .filter_map(|profile| {
            Some(PastRuns {
                profile: profile.name.clone(),
                runs: ledger_runs(profile).ok()?,
            })
        })
        .filter(|past| !past.runs.is_empty())
        .collect();
    let t = PageWords::of(language);
    render(&HomePage {
        lang: language.tag(),
        title: t.title,
        t,
        profiles: &profiles,
        sandbox_profiles: profiles
            .iter()
            .filter(|p| p.sandbox)
            .map(|p| p.name.as_str())
            .collect(),
        jobs,
        past_runs,
    })
}

/// The page's script: served as a file, so that no inline script runs.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
