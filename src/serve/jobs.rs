//! What the server knows: the profiles (configs of `--config-dir`, each
//! with its settings), the jobs (an upload, its validation, its run) with
//! their typed stage, the jobs of earlier server runs read back from their
//! folders, and the claim that keeps one run per profile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use axum::http::StatusCode;
use axum::response::Response;

use super::Shared;
pub use super::job_input::Needs;
use crate::ledger::{Ledger, RunStatus};
use crate::outcome::StatusCounts;
use crate::run::Progress;
use crate::settings::{Overrides, Settings};

/// One profile: a config file of `--config-dir`.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The file's stem: what the page shows and posts.
    pub name: String,
    pub path: PathBuf,
    /// Its settings (`DECLARE_*` variables ignored).
    pub settings: Settings,
    /// Where it declares, as the ledger names it; empty when it cannot.
    pub endpoint: String,
    pub sandbox: bool,
    /// Why it cannot declare (no endpoint, or not a usable one).
    pub problem: Option<String>,
}

/// A run (or a validation waiting to be declared) the server knows.
pub struct Job {
    pub profile: String,
    pub input: PathBuf,
    pub folder: PathBuf,
    /// Rows valid in the validation: what "Declare N rows" declares.
    pub valid_rows: u64,
    pub created_at: String,
    pub stage: Stage,
    /// The clerk stopped its run.
    pub stopped: bool,
    /// The uploaded file's SHA-256: the same file uploaded again is noticed.
    pub input_sha256: String,
    /// What the page must ask before the file can be checked.
    pub needs: Option<Needs>,
    /// A workbook declared sheet by sheet as one job: its sheets' jobs, in
    /// order (each checked, fixed and run on its own, rows numbered per
    /// sheet); empty for a job of one sheet.
    pub parts: Vec<String>,
    /// The job this one is a sheet of.
    pub group: Option<String>,
}

/// The file of a job's folder that keeps its rejected rows' reasons as
/// codes and parameters.
pub const REASONS: &str = "reasons.jsonl";

/// How a run ended: its exit code, or the error that stopped it (without
/// the server's folders).
pub type RunEnd = Result<u8, String>;

/// Where a job is.
pub enum Stage {
    /// Checked and not declared; or declared, then cut short by a restart
    /// (its folder holds `run.json`: declaring again resumes it).
    Validated,
    /// Declaring: its live progress, and how to stop it (as Ctrl-C does).
    Running {
        progress: watch::Receiver<Progress>,
        cancel: tokio_util::sync::CancellationToken,
    },
    /// Ended: how, and its last progress when it ran in this server.
    Finished {
        end: RunEnd,
        progress: Option<watch::Receiver<Progress>>,
    },
}

impl Job {
    /// Whether it has been declared (running or ended).
    pub fn started(&self) -> bool {
        !matches!(self.stage, Stage::Validated)
    }

    /// Whether its run may have declared rows: going on, cut short by a
    /// restart, or ended other than by a fatal error before it sent.
    pub fn declared_something(&self) -> bool {
        match self.state() {
            JobState::Running | JobState::Interrupted => true,
            JobState::Finished(code) => code != crate::exit::FATAL,
            JobState::Validated | JobState::Failed => false,
        }
    }

    /// Its line in the list of jobs.
    pub fn state(&self) -> JobState {
        match &self.stage {
            Stage::Finished { end: Ok(code), .. } => JobState::Finished(*code),
            Stage::Finished { end: Err(_), .. } => JobState::Failed,
            Stage::Running { .. } => JobState::Running,
            Stage::Validated if self.folder.join("run.json").exists() => JobState::Interrupted,
            Stage::Validated => JobState::Validated,
        }
    }
}

/// Where a job is, as the list of jobs says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Validated,
    Running,
    /// Cut short by a restart: declaring again resumes it.
    Interrupted,
    Finished(u8),
    Failed,
}

/// What the page reads back of a folder's `summary.json` (a validation's
/// or a run's): typed, so that a missing or odd value is a default, not a
/// guess at a JSON path.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SavedSummary {
    pub command: String,
    pub rows: SavedRows,
    pub results: StatusCounts,
    pub requests_sent: u64,
    pub from_ledger: u64,
    pub exit_code: Option<u8>,
    pub input_sha256: String,
    /// A run's rows by result code.
    pub codes: std::collections::BTreeMap<String, u64>,
    /// Why a run stopped early, as its summary says.
    pub stopped: Option<String>,
    /// The sheet read (a workbook) and the row its headers were found on.
    pub sheet: Option<String>,
    pub header_row: u64,
}

/// The row counts of a saved summary that the page shows.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SavedRows {
    pub valid: u64,
    pub rejected: u64,
}

impl SavedSummary {
    /// The summary in `folder`, or the defaults when there is none.
    pub fn read(folder: &Path) -> SavedSummary {
        std::fs::read_to_string(folder.join("summary.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Whether a run (not only a validation) wrote it.
    pub fn is_run(&self) -> bool {
        self.command == "run"
    }
}

/// `job.json`: what a job's folder is for.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    pub profile: String,
    pub created_at: String,
    /// The uploaded file's name on the client's side (no folder).
    #[serde(default)]
    pub input_name: Option<String>,
    /// What the page must ask before the file can be checked.
    #[serde(default)]
    pub needs: Option<Needs>,
    /// The jobs of its sheets, when it is declared sheet by sheet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// The job it is a sheet of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The sheet it reads, as a part of a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
}

impl JobRecord {
    /// The job's folder's record of it.
    pub fn read(job: &Path) -> Option<JobRecord> {
        let text = std::fs::read_to_string(job.join("job.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, job: &Path) -> std::io::Result<()> {
        crate::report::write_json(&job.join("job.json"), self)
    }
}

/// The jobs of earlier server runs, from their folders: validated, run to
/// the end, or cut short by a restart (declaring again resumes the run
/// from its journal).
pub fn known_jobs(jobs: &Path) -> HashMap<String, Job> {
    let mut known = HashMap::new();
    for entry in std::fs::read_dir(jobs).into_iter().flatten().flatten() {
        let folder = entry.path();
        let Some(record) = JobRecord::read(&folder) else {
            continue;
        };
        let Some(input) = ["input.csv", "input.xlsx"]
            .iter()
            .map(|name| folder.join(name))
            .find(|path| path.exists())
        else {
            continue;
        };
        let out = folder.join("out");
        let summary = SavedSummary::read(&out);
        // A job still asking for its sheet or columns has no summary yet.
        let input_sha256 = match summary.input_sha256.is_empty() {
            true => crate::input::sha256_of(&input)
                .map(|digest| crate::report::hex(&digest))
                .unwrap_or_default(),
            false => summary.input_sha256.clone(),
        };
        // A run cut short leaves run.json beside the validation's summary.
        let stage = if summary.is_run() {
            Stage::Finished {
                end: Ok(summary.exit_code.unwrap_or(crate::exit::FATAL)),
                progress: None,
            }
        } else {
            Stage::Validated
        };
        known.insert(
            entry.file_name().to_string_lossy().into_owned(),
            Job {
                profile: record.profile,
                input,
                folder: out,
                valid_rows: summary.rows.valid,
                created_at: record.created_at,
                stage,
                stopped: false,
                input_sha256,
                needs: record.needs,
                parts: record.parts,
                group: record.group,
            },
        );
    }
    // A group is where its sheets are.
    let groups: Vec<(String, Vec<String>)> = known
        .iter()
        .filter(|(_, job)| !job.parts.is_empty())
        .map(|(id, job)| (id.clone(), job.parts.clone()))
        .collect();
    for (id, parts) in groups {
        let stage = {
            let parts: Vec<&Job> = parts.iter().filter_map(|part| known.get(part)).collect();
            super::group::stage_after_restart(&parts)
        };
        if let Some(group) = known.get_mut(&id) {
            group.stage = stage;
        }
    }
    known
}

/// The runs a profile's ledger knows, the newest 50 first, as `ledger
/// status` counts them; none without a ledger. Counting reads every
/// declaration (most of a second for a year of them), and the home page
/// asks on every view: the counts are kept until another connection
/// commits to the ledger (SQLite's `data_version`, watched on a connection
/// kept for it) or the file is replaced.
pub fn ledger_runs(profile: &Profile) -> anyhow::Result<Vec<RunStatus>> {
    let path = profile.settings.ledger.standing();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (endpoint, client_id) = profile.settings.scope()?;
    let key = (path.clone(), endpoint, client_id);
    let file = crate::ledger::file_identity(&path);
    let taken = counted_runs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
    // The watcher of the same file, or a new one.
    let (watch, known) = match taken {
        Some(counted) if counted.file == file => {
            (counted.watch, Some((counted.version, counted.runs)))
        }
        _ => (
            rusqlite::Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            None,
        ),
    };
    // Read before counting: a commit meanwhile makes the next view count
    // again.
    let version: i64 = watch.query_row("PRAGMA data_version", [], |row| row.get(0))?;
    let runs = match known {
        Some((known, runs)) if known == version => runs,
        _ => {
            let mut runs = Ledger::open(&path, &key.1, &key.2)?.status(None)?;
            runs.reverse();
            runs.truncate(50);
            runs
        }
    };
    let mut counted = counted_runs().lock().unwrap_or_else(|e| e.into_inner());
    // One entry per profile's ledger; a config folder rewritten many
    // times over must not grow it for ever.
    if counted.len() >= 256 {
        counted.clear();
    }
    counted.insert(
        key,
        CountedRuns {
            file,
            watch,
            version,
            runs: runs.clone(),
        },
    );
    Ok(runs)
}

/// A ledger's runs as last counted, with what tells whether it changed.
struct CountedRuns {
    /// The file (device, inode) counted.
    file: Option<(u64, u64)>,
    /// A connection kept to read `data_version` on.
    watch: rusqlite::Connection,
    version: i64,
    runs: Vec<RunStatus>,
}

type LedgerKey = (PathBuf, String, String);

fn counted_runs() -> &'static std::sync::Mutex<HashMap<LedgerKey, CountedRuns>> {
    static COUNTED: std::sync::OnceLock<std::sync::Mutex<HashMap<LedgerKey, CountedRuns>>> =
        std::sync::OnceLock::new();
    COUNTED.get_or_init(Default::default)
}

/// The ledger of a sandbox profile: under `--data`, so that trying the page
/// meets the same protection against declaring twice as a real profile.
pub fn sandbox_ledger(data: &Path, profile: &str) -> PathBuf {
    data.join("sandbox-ledgers").join(format!("{profile}.db"))
}

/// Where the embedded sandbox of a sandbox profile remembers the
/// declarations it accepted, beside the profile's ledger.
pub fn sandbox_memory(data: &Path, profile: &str) -> PathBuf {
    data.join("sandbox-ledgers")
        .join(format!("{profile}.sandbox.jsonl"))
}

/// The folder of the sandbox profiles made on the page, under `--data`.
pub fn page_profiles(data: &Path) -> PathBuf {
    data.join("sandbox-profiles")
}

/// Sandbox profiles the page makes at most.
pub const MAX_PAGE_PROFILES: usize = 100;

/// Makes a sandbox profile named `name` for trying `input`: it declares to
/// the embedded sandbox only, reads amounts in the unit the file's look
/// like, and has its columns mapped on the page.
pub fn make_sandbox_profile(
    data: &Path,
    name: &str,
    known: &[String],
    input: &Path,
) -> Result<(), crate::i18n::upload::UploadProblem> {
    use crate::i18n::upload::UploadProblem;
    // Letters a look-alike cannot pass for: ASCII and Chinese characters.
    let usable = (1..=40).contains(&name.chars().count())
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '-'
                || c == '_'
                || ('\u{4e00}'..='\u{9fff}').contains(&c)
        })
        && !is_reserved_name(name);
    if !usable {
        return Err(UploadProblem::ProfileName {
            name: name.chars().take(40).collect(),
        });
    }
    // One at a time, so that "Shop" and "shop" cannot both be made.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let folder = page_profiles(data);
    let made_here = toml_files(&folder);
    let taken = known
        .iter()
        .map(String::as_str)
        .chain(
            made_here
                .iter()
                .filter_map(|path| path.file_stem()?.to_str()),
        )
        .any(|known| known.eq_ignore_ascii_case(name));
    if taken {
        return Err(UploadProblem::ProfileTaken {
            name: name.to_owned(),
        });
    }
    let made = made_here.len();
    if made >= MAX_PAGE_PROFILES {
        return Err(UploadProblem::TooManyProfiles {
            most: MAX_PAGE_PROFILES,
        });
    }
    let defaults = Settings::load(None, Overrides::default()).expect("the defaults load");
    let unit = super::job_input::guess_amount_unit(input, &defaults);
    let text = format!(
        "# Made on the page to try a file: it declares to the embedded sandbox\n\
         # only. Its columns are mapped on the page.\n\
         [api]\nendpoint = \"sandbox\"\n\n[input]\namount_unit = \"{unit}\"\n"
    );
    let written = crate::outdir::create_private_folder(&folder).and_then(|()| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(folder.join(format!("{name}.toml")))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
    });
    written.map_err(|_| UploadProblem::ProfileTaken {
        name: name.to_owned(),
    })
}

/// Names some systems keep for devices: not a profile's, whatever the
/// case.
fn is_reserved_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit())
}

/// The profiles: every `*.toml` of `--config-dir`, and the sandbox
/// profiles made on the page (a name IT uses wins), sorted by name.
pub fn profiles(serve: &super::ServeSettings) -> Vec<Profile> {
    let from_it: Vec<PathBuf> = toml_files(&serve.config_dir);
    let it_names: Vec<String> = from_it
        .iter()
        .filter_map(|path| Some(path.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    let made_here = toml_files(&page_profiles(&serve.data))
        .into_iter()
        .filter(|path| {
            path.file_stem()
                .is_some_and(|stem| !it_names.iter().any(|name| name.as_str() == stem))
        });
    let mut profiles: Vec<Profile> = from_it
        .into_iter()
        .map(|path| (path, false))
        .chain(made_here.map(|path| (path, true)))
        .filter_map(|(path, made_here)| {
            let profile = profile_of(serve, path)?;
            // One made on the page declares only to the sandbox.
            (!made_here || profile.sandbox).then_some(profile)
        })
        .collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    profiles
}

/// The `*.toml` files of `folder`.
fn toml_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect()
}

/// The profile of one config file.
fn profile_of(serve: &super::ServeSettings, path: PathBuf) -> Option<Profile> {
    let mut settings = Settings::load_profile(&path, Overrides::default()).ok()?;
    let name = path.file_stem()?.to_string_lossy().into_owned();
    if settings
        .endpoint()
        .is_ok_and(|endpoint| endpoint.is_sandbox())
    {
        let ledger = sandbox_ledger(&serve.data, &name);
        settings = Settings::load_profile(&path, Overrides::with_ledger(Some(ledger))).ok()?;
        // Its sandbox remembers what it accepted, as Alipay+ does.
        settings.sandbox_memory = Some(sandbox_memory(&serve.data, &name));
    }
    let (endpoint, sandbox, problem) = match settings.endpoint() {
        Ok(endpoint) => (endpoint.name(), endpoint.is_sandbox(), None),
        Err(problem) => (String::new(), false, Some(problem.to_string())),
    };
    Some(Profile {
        name,
        path,
        settings,
        endpoint,
        sandbox,
        problem,
    })
}

/// Reads a job the server knows.
pub fn with_job<T>(state: &Shared, id: &str, read: impl FnOnce(&Job) -> T) -> Option<T> {
    state.jobs.lock().expect("not poisoned").get(id).map(read)
}

/// When the same file was declared before with `profile`: by another job
/// of the page (other than `id` and its sheets), or by any run its ledger
/// knows (the command line's too) other than the ones into `folder` and
/// its sheets' folders. The earliest.
pub fn declared_before(
    state: &Shared,
    id: &str,
    profile: &Profile,
    folder: &Path,
    input_sha256: &str,
) -> Option<String> {
    if input_sha256.is_empty() {
        return None;
    }
    let (by_page, own_folders) = {
        let jobs = state.jobs.lock().expect("not poisoned");
        let mut own_folders = vec![folder.to_owned()];
        own_folders.extend(
            jobs.values()
                .filter(|job| job.group.as_deref() == Some(id))
                .map(|job| job.folder.clone()),
        );
        let by_page = jobs
            .iter()
            .filter(|(other, job)| {
                // A group's sheets are the same file as the group.
                other.as_str() != id
                    && job.group.as_deref() != Some(id)
                    && job.profile == profile.name
                    && job.input_sha256 == input_sha256
                    && job.declared_something()
            })
            .map(|(_, job)| job.created_at.clone())
            .min();
        (by_page, own_folders)
    };
    let own_folders: Vec<&Path> = own_folders.iter().map(PathBuf::as_path).collect();
    let path = profile.settings.ledger.standing();
    let by_ledger = path
        .exists()
        .then(|| profile.settings.scope().ok())
        .flatten()
        .and_then(|(endpoint, client_id)| Ledger::open(&path, &endpoint, &client_id).ok())
        .and_then(|ledger| {
            ledger
                .first_run_of_input(input_sha256, &own_folders)
                .ok()
                .flatten()
        });
    // Both are RFC 3339; compared as instants, not as text.
    [by_page, by_ledger]
        .into_iter()
        .flatten()
        .min_by_key(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
}

/// Changes the job `id`, if there is one.
pub fn with_job_mut<T>(state: &Shared, id: &str, change: impl FnOnce(&mut Job) -> T) -> Option<T> {
    state
        .jobs
        .lock()
        .expect("not poisoned")
        .get_mut(id)
        .map(change)
}

pub fn no_such_job(language: crate::i18n::Language) -> Response {
    let t = crate::i18n::page::PageWords::of(language);
    super::views::error_page_in(language, StatusCode::NOT_FOUND, t.no_such_upload)
}

/// A profile marked busy while its run is prepared and goes on: freed when
/// dropped (the run ended, or the request failed or was left before it
/// started).
pub struct ProfileClaim {
    state: Shared,
    profile: String,
}

impl ProfileClaim {
    /// Claims `profile`, unless a run of it is going on.
    pub fn take(state: &Shared, profile: &str) -> Option<ProfileClaim> {
        let claimed = state
            .busy_profiles
            .lock()
            .expect("not poisoned")
            .insert(profile.to_owned());
        claimed.then(|| ProfileClaim {
            state: std::sync::Arc::clone(state),
            profile: profile.to_owned(),
        })
    }
}

impl Drop for ProfileClaim {
    fn drop(&mut self) {
        self.state
            .busy_profiles
            .lock()
            .expect("not poisoned")
            .remove(&self.profile);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ResultRow, Status};
    use crate::protocol::DeclareRequest;

    /// The counts the home page shows follow the ledger: kept while it is
    /// unchanged, counted again once a run wrote to it.
    #[test]
    fn the_past_runs_shown_follow_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("night.toml");
        std::fs::write(
            &config,
            "[api]\nendpoint = \"https://api.example\"\nclient_id = \"C1\"\n",
        )
        .unwrap();
        let ledger_path = dir.path().join("l.db");
        let settings = Settings::load(
            Some(&config),
            Overrides::with_ledger(Some(ledger_path.clone())),
        )
        .unwrap();
        let (endpoint, client_id) = settings.scope().unwrap();
        let profile = Profile {
            name: "night".into(),
            path: config,
            settings,
            endpoint: endpoint.clone(),
            sandbox: false,
            problem: None,
        };
        assert!(ledger_runs(&profile).unwrap().is_empty(), "no ledger yet");
        let declare = |n: u64| {
            let mut ledger = Ledger::open(&ledger_path, &endpoint, &client_id).unwrap();
            ledger
                .begin_run(&dir.path().join("night-1"), Path::new("o.csv"), "abc")
                .unwrap();
            let request = DeclareRequest::example(&format!("D{n}"), &format!("P{n}"), "100");
            let body = request.to_body();
            ledger.record_call(2, &request, &body, false).unwrap();
            let result = ResultRow {
                customs_declaration_request_id: request.customs_declaration_request_id.clone(),
                result_status: Status::S,
                ..ResultRow::default()
            };
            ledger
                .record_outcome(&result, &request, &body, "{}")
                .unwrap();
        };
        declare(1);
        let runs = ledger_runs(&profile).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].success, 1);
        assert_eq!(ledger_runs(&profile).unwrap()[0].success, 1, "as kept");
        declare(2);
        assert_eq!(
            ledger_runs(&profile).unwrap()[0].success,
            2,
            "counted again after the ledger changed"
        );
    }
}
