//! The upload: a profile and one file, streamed to a file of the
//! server's naming under `--data` (limited while it streams), validated
//! into a folder of its own (two files at a time), and kept as a job. A
//! refused or failed upload leaves nothing behind.

use std::path::{Path, PathBuf};

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tokio::io::AsyncWriteExt;

use super::job_input::UploadCheck;
use super::jobs::{Job, JobRecord, Stage, profiles};
use super::views::error_page_in;
use super::{
    MAX_FIELD_BYTES, MAX_UPLOAD, Shared, checking, create_private_dir, language_of, new_id,
};
use crate::i18n::Language;
use crate::i18n::page::PageWords;
use crate::i18n::upload::UploadProblem;

/// Takes an upload (a profile and a file), streams it to a file of the
/// server's naming under `--data` (at most `MAX_UPLOAD` bytes), validates
/// it into a folder of its own (at most `MAX_VALIDATIONS` at once), and
/// shows the validation. A refused or failed upload leaves nothing behind.
pub async fn upload(
    State(state): State<Shared>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let id = new_id();
    let folder = state.settings.data.join("jobs").join(&id);
    let language = language_of(&headers, None);
    if let Err(error) = create_private_dir(&folder) {
        return error_page_in(
            language,
            StatusCode::INTERNAL_SERVER_ERROR,
            &state.without_paths(&error.to_string()),
        );
    }
    // Removed unless the upload becomes a job, also when the client goes
    // away mid-way (the handler is then dropped).
    let mut leftover = Leftover(Some(folder.clone()));
    match take_upload(&state, language, multipart, &id, &folder).await {
        Ok(response) => {
            leftover.0 = None;
            response
        }
        Err((status, message)) => error_page_in(language, status, &state.without_paths(&message)),
    }
}

/// A folder removed when this is dropped, unless taken out first.
struct Leftover(Option<PathBuf>);

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(folder) = self.0.take() {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// What an upload's form gave.
struct UploadForm {
    /// Empty: a new sandbox profile, named by `new_profile`.
    profile: String,
    new_profile: String,
    input: PathBuf,
    /// The file's name on the client, for `job.json`.
    input_name: String,
}

/// Reads the form: one profile name (at most `MAX_FIELD_BYTES`), exactly
/// one file; any other field is refused.
async fn read_upload_form(
    mut multipart: Multipart,
    folder: &Path,
    language: Language,
) -> Result<UploadForm, (StatusCode, String)> {
    let refuse = |problem: UploadProblem| (StatusCode::BAD_REQUEST, problem.text(language));
    let mut profile = None;
    let mut new_profile = None;
    let mut input: Option<(PathBuf, String)> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err(broken(&error, language)),
        };
        match field.name() {
            Some(name @ ("profile" | "new_profile"))
                if (name == "profile" && profile.is_none())
                    || (name == "new_profile" && new_profile.is_none()) =>
            {
                let name = name.to_owned();
                let mut text = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|error| broken(&error, language))?
                {
                    if text.len() + chunk.len() > MAX_FIELD_BYTES {
                        let name = String::from_utf8_lossy(&text).chars().take(40).collect();
                        return Err((
                            StatusCode::PAYLOAD_TOO_LARGE,
                            UploadProblem::ProfileName { name }.text(language),
                        ));
                    }
                    text.extend_from_slice(&chunk);
                }
                let text = String::from_utf8_lossy(&text).trim().to_owned();
                match name.as_str() {
                    "profile" => profile = Some(text),
                    _ => new_profile = Some(text),
                }
            }
            Some("file") if input.is_none() => {
                // The client's name gives the kind of file, never a path.
                let client_name = field.file_name().unwrap_or_default();
                let client_name = client_name
                    .rsplit(['/', '\\'])
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>();
                let extension = client_name
                    .rsplit_once('.')
                    .map(|(_, ext)| ext.to_ascii_lowercase())
                    .unwrap_or_default();
                if extension != "csv" && extension != "xlsx" {
                    return Err(refuse(UploadProblem::WrongKind {
                        name: client_name,
                        extension,
                    }));
                }
                let path = folder.join(format!("input.{extension}"));
                save(field, &path, language).await?;
                input = Some((path, client_name));
            }
            Some("file") => return Err(refuse(UploadProblem::OneAtATime)),
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    PageWords::of(language).upload_broken.to_owned(),
                ));
            }
        }
    }
    let new_profile = new_profile.unwrap_or_default();
    match (profile, input) {
        (Some(profile), Some((input, input_name)))
            if !profile.is_empty() || !new_profile.is_empty() =>
        {
            Ok(UploadForm {
                profile,
                new_profile,
                input,
                input_name,
            })
        }
        _ => Err(refuse(UploadProblem::ChooseBoth)),
    }
}

async fn take_upload(
    state: &Shared,
    language: Language,
    multipart: Multipart,
    id: &str,
    folder: &Path,
) -> Result<Response, (StatusCode, String)> {
    // The rows' messages in the language of the person who uploads.
    let mut form = read_upload_form(multipart, folder, language).await?;
    if form.profile.is_empty() {
        // A sandbox profile made for this file (its amounts' unit guessed
        // from it); its columns are then mapped like any other's.
        let name = form.new_profile.clone();
        let input = form.input.clone();
        let data = state.settings.data.clone();
        let known: Vec<String> = profiles(&state.settings)
            .into_iter()
            .map(|profile| profile.name)
            .collect();
        // Reading the file for its amounts is a check like the others.
        let made = checking(state, move || {
            super::jobs::make_sandbox_profile(&data, &name, &known, &input)
        })
        .await
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
        match made {
            Ok(()) => form.profile = form.new_profile.clone(),
            Err(problem) => return Err((StatusCode::BAD_REQUEST, problem.text(language))),
        }
        // A file the page then refuses leaves no profile behind.
        let made =
            super::jobs::page_profiles(&state.settings.data).join(format!("{}.toml", form.profile));
        let checked = check_and_keep(state, language, form, id, folder).await;
        if checked.is_err() {
            let _ = std::fs::remove_file(made);
        }
        return checked;
    }
    check_and_keep(state, language, form, id, folder).await
}

/// Checks the upload of `form` with its profile and keeps it as a job.
async fn check_and_keep(
    state: &Shared,
    language: Language,
    form: UploadForm,
    id: &str,
    folder: &Path,
) -> Result<Response, (StatusCode, String)> {
    let Some(profile) = profiles(&state.settings)
        .into_iter()
        .find(|p| p.name == form.profile)
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            UploadProblem::ChooseBoth.text(language),
        ));
    };
    if std::fs::metadata(&form.input).is_ok_and(|m| m.len() == 0) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            UploadProblem::Empty {
                name: form.input_name,
            }
            .text(language),
        ));
    }
    let out = folder.join("out");
    let mut validate_settings = profile.settings.clone();
    validate_settings.language = language;
    let mappings =
        super::job_input::mappings_file(&state.settings.data, &profile.name, &profile.settings);
    let (job, input) = (folder.to_owned(), form.input.clone());
    // Checking a file takes memory and both cores: a few at a time. The
    // check runs on even if the client leaves.
    let checked = checking(state, move || {
        super::job_input::check_upload(&job, &input, &validate_settings, &mappings)
    })
    .await;
    let (summary, needs) = match checked {
        Ok(Ok(UploadCheck::Checked(summary))) => (Some(summary), None),
        Ok(Ok(UploadCheck::Needs(needs))) => (None, Some(needs)),
        Ok(Ok(UploadCheck::HeaderOnly { header_row })) => {
            let problem = UploadProblem::HeaderOnly {
                name: form.input_name,
                header_row,
            };
            return Err((StatusCode::UNPROCESSABLE_ENTITY, problem.text(language)));
        }
        Ok(Err(error)) => {
            let problem = cannot_read(&error, &form.input, form.input_name);
            return Err((StatusCode::UNPROCESSABLE_ENTITY, problem.text(language)));
        }
        Err(error) => return Err((StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    };
    if let Some(summary) = &summary
        && summary.rows.read == 0
    {
        let problem = UploadProblem::HeaderOnly {
            name: form.input_name,
            header_row: summary.header_row,
        };
        return Err((StatusCode::UNPROCESSABLE_ENTITY, problem.text(language)));
    }
    // Kept beside the upload, so that a restarted server knows the job.
    let record = JobRecord {
        profile: profile.name.clone(),
        created_at: crate::report::timestamp(chrono::Local::now()),
        input_name: Some(form.input_name),
        needs,
        parts: Vec::new(),
        group: None,
        sheet: None,
    };
    record
        .write(folder)
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    let sha256 = match &summary {
        Some(summary) => summary.input_sha256.clone(),
        None => crate::report::hex(
            &crate::input::sha256_of(&form.input)
                .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?,
        ),
    };
    state.jobs.lock().expect("not poisoned").insert(
        id.to_owned(),
        Job {
            profile: profile.name,
            input: form.input,
            folder: out,
            valid_rows: summary.map_or(0, |summary| summary.rows.valid),
            created_at: record.created_at,
            stage: Stage::Validated,
            stopped: false,
            input_sha256: sha256,
            needs,
            parts: Vec::new(),
            group: None,
        },
    );
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

/// Why a file cannot be read, without the server's name for it.
pub fn cannot_read(error: &anyhow::Error, input: &Path, name: String) -> UploadProblem {
    if let Some(crate::validate::MappingError::DuplicateHeader {
        header,
        first,
        second,
        ..
    }) = error.downcast_ref()
    {
        return UploadProblem::HeaderTwice {
            name,
            header: header.clone(),
            first: *first,
            second: *second,
        };
    }
    let reason = format!("{error:#}").replace(&input.display().to_string(), "");
    let reason = reason.trim_start_matches([':', ' ']).to_owned();
    UploadProblem::CannotRead { name, reason }
}

/// A form that did not arrive whole (or too large), in the clerk's words.
fn broken(
    error: &axum::extract::multipart::MultipartError,
    language: Language,
) -> (StatusCode, String) {
    let status = error.status();
    let text = match status {
        StatusCode::PAYLOAD_TOO_LARGE => UploadProblem::TooLarge {
            megabytes: MAX_UPLOAD / 1024 / 1024,
        }
        .text(language),
        _ => PageWords::of(language).upload_broken.to_owned(),
    };
    (status, text)
}

/// Streams a multipart field to `path`, refusing it once it passes
/// `MAX_UPLOAD` bytes.
async fn save(
    mut field: axum::extract::multipart::Field<'_>,
    path: &Path,
    language: Language,
) -> Result<(), (StatusCode, String)> {
    let internal = |error: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string());
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await.map_err(internal)?;
    let mut written = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        // The body limit past MAX_UPLOAD says 413 too.
        .map_err(|error| broken(&error, language))?
    {
        written += chunk.len() as u64;
        if written > MAX_UPLOAD {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                UploadProblem::TooLarge {
                    megabytes: MAX_UPLOAD / 1024 / 1024,
                }
                .text(language),
            ));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)
}
