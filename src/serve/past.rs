//! The past runs a profile's ledger lists: a run's page (its counts and
//! files) and asking Alipay+ for its customs outcomes. Only a folder the
//! ledger lists is read or touched, never one a request names alone.

use std::path::PathBuf;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::job::serve_file;
use super::jobs::{Profile, SavedSummary, ledger_runs, profiles};
use super::views::{
    InquiredPage, PastRunPage, error_page_in, files_in, past_query, render, run_key, run_name,
};
use super::{DOWNLOADS, Shared, language_of};
use crate::i18n::Language;
use crate::i18n::page::PageWords;

#[derive(serde::Deserialize)]
pub struct InquireForm {
    profile: String,
    /// The run's key ([`run_key`]).
    run: String,
}

/// The profile and the folder of a past run its ledger lists, by its key.
fn known_past_run(
    state: &Shared,
    profile: &str,
    key: &str,
    language: Language,
) -> Result<(Profile, PathBuf), Box<Response>> {
    let t = PageWords::of(language);
    let Some(profile) = profiles(&state.settings)
        .into_iter()
        .find(|p| p.name == profile && !p.sandbox && p.problem.is_none())
    else {
        return Err(Box::new(error_page_in(
            language,
            StatusCode::NOT_FOUND,
            t.no_such_profile,
        )));
    };
    let out = ledger_runs(&profile)
        .ok()
        .and_then(|runs| runs.into_iter().find(|run| run_key(&run.out_dir) == key))
        .map(|run| PathBuf::from(run.out_dir));
    match out {
        Some(out) => Ok((profile, out)),
        None => Err(Box::new(error_page_in(
            language,
            StatusCode::NOT_FOUND,
            t.no_such_run,
        ))),
    }
}

#[derive(serde::Deserialize)]
pub struct PastQuery {
    profile: String,
    /// The run's key ([`run_key`]).
    run: String,
    file: Option<String>,
    lang: Option<String>,
}

/// A past run the ledger lists: its counts, its files, and the button that
/// asks for its customs outcomes; `file=` downloads one of its files.
pub async fn past_run(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<PastQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let (profile, out) = match known_past_run(&state, &query.profile, &query.run, language) {
        Ok(known) => known,
        Err(page) => return *page,
    };
    if let Some(name) = &query.file {
        return serve_file(&out, name, language).await;
    }
    let t = PageWords::of(language);
    render(&PastRunPage {
        lang: language.tag(),
        title: t.title,
        t,
        profile: &profile,
        out: run_name(&out),
        key: query.run.clone(),
        results: SavedSummary::read(&out).results,
        files: files_in(&out, &DOWNLOADS)
            .into_iter()
            .map(|name| (name, past_query(&profile.name, &query.run, Some(name))))
            .collect(),
    })
}

/// Asks Alipay+ about a past run the profile's ledger knows: customs
/// outcomes into its `customs.csv`, unknown rows it holds settled. Only a
/// folder the ledger lists is touched, never one the request names alone.
pub async fn inquire_run(
    State(state): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<InquireForm>,
) -> Response {
    let language = language_of(&headers, None);
    let (profile, out) = match known_past_run(&state, &form.profile, &form.run, language) {
        Ok(known) => known,
        Err(page) => return *page,
    };
    // The ledger and the files are read and written as it goes: off the
    // page's workers.
    let inquired = tokio::task::spawn_blocking(move || {
        let report =
            tokio::runtime::Handle::current().block_on(crate::run::inquire::inquire_recorded_run(
                &out,
                &profile.settings,
                std::time::Duration::ZERO,
                |notice| {
                    tracing::info!("{notice}");
                },
            ));
        report.map(|report| (out, report))
    })
    .await;
    match inquired {
        Ok(Ok((out, report))) => render(&InquiredPage::new(language, &out, &report)),
        Ok(Err(error)) => error_page_in(
            language,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "{} {}",
                PageWords::of(language).inquiry_failed,
                state.without_paths(&format!("{error:#}"))
            ),
        ),
        Err(error) => error_page_in(
            language,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{} {error}", PageWords::of(language).inquiry_failed),
        ),
    }
}
