//! `declare-batch serve`: the web page for finance teams. A person picks a
//! profile (a config in `--config-dir`), uploads an export, sees what is
//! wrong with it, declares it with the same engine as `run` (same out
//! folder, lock, journal and resume) and follows the run live, then
//! downloads its files. Uploads and run folders live under `--data`, named
//! by the server, owner-only.
//!
//! Security: loopback by default; any other address needs a token
//! (`DECLARE_SERVE_TOKEN`, 32 characters at least), compared in constant
//! time: a request carries it as a bearer header, or carries the random
//! session ID that signing in with it gives (an `HttpOnly`, `SameSite`
//! cookie); failed sign-ins are throttled. Only requests addressed to the
//! server's own names (`Host`) are answered, which defeats DNS rebinding;
//! requests that change state must come from this page (their `Origin` or
//! `Referer` is this host). Every response forbids framing, sniffing and
//! inline scripts (the page's script is a file of its own) and is not
//! cached. Bodies are small but for the upload, which is limited while it
//! streams; a body that stalls is dropped; at most two files are checked
//! at once. One run per profile at a time. `DECLARE_*` secrets are
//! ignored: each profile brings its own.
//!
//! The page is a thin face over the library: the checks before every
//! handler (`auth.rs`), what the server knows — profiles, jobs and their
//! typed stages (`jobs.rs`) — and one file of handlers per part of the
//! page (`home.rs`, `upload.rs`, `job.rs`, `past.rs`). HTML comes from the
//! templates of `templates/page/` (`views.rs`), which escape every value.

mod auth;
mod fixing;
mod group;
mod home;
mod job;
mod job_input;
mod jobs;
mod listener;
mod past;
mod upload;
mod views;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::middleware;
use axum::routing::{get, post};

use crate::i18n::Language;
use auth::SignInFailures;
use jobs::Job;

pub use jobs::{Profile, profiles};
pub use listener::serve;

/// Uploads larger than this are refused while they stream.
pub const MAX_UPLOAD: u64 = 100 * 1024 * 1024;

/// Bodies of every request but the upload: forms of a few fields.
const MAX_FORM_BODY: usize = 16 * 1024;

/// The upload's fields other than the file (the profile's name).
const MAX_FIELD_BYTES: usize = 256;

/// A request body that sends nothing for this long is dropped.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Files checked at once; further uploads wait their turn.
const MAX_VALIDATIONS: usize = 2;

/// The environment variable holding the token for non-loopback addresses.
pub const TOKEN_VARIABLE: &str = "DECLARE_SERVE_TOKEN";

/// The shortest token `serve` accepts: guessing it must be hopeless.
pub const MIN_TOKEN_CHARS: usize = 32;

/// The cookie signing in sets: a random session ID, never the token.
const SESSION_COOKIE: &str = "declare_batch_session";

/// How long a sign-in lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Wrong tokens accepted per minute from one address; past that, its
/// sign-ins are refused (429) until the minute is over.
const FAILED_SIGN_INS_PER_MINUTE: u32 = 10;

/// Addresses whose failures are remembered at once.
const MAX_THROTTLED_ADDRESSES: usize = 4096;

/// The Content-Security-Policy of the pages: scripts and styles only from
/// the server's own files.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The policy of the files a run leaves (`report.html` has its style
/// inline and no script): nothing runs, nothing loads.
const FILE_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox";

/// Files of a run folder that can be downloaded.
const DOWNLOADS: [&str; 8] = [
    "results.xlsx",
    "retry.xlsx",
    "rejected.xlsx",
    "report.html",
    "results.csv",
    "retry.csv",
    "rejected.csv",
    "customs.csv",
];

/// How the server was started.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub config_dir: PathBuf,
    pub data: PathBuf,
    /// Required on every request when set.
    pub token: Option<String>,
    /// The `Host` values answered (`name` or `name:port`, lower case):
    /// the bound loopback names with their port, and `--allow-host` names.
    pub allowed_hosts: Vec<String>,
    /// Cookies get `Secure` (the page is served over TLS).
    pub secure_cookies: bool,
}

/// The `Host` values a server bound to `addr` answers, with `extra` names
/// (`--allow-host`, with or without a port).
pub fn allowed_hosts(addr: &SocketAddr, extra: &[String]) -> Vec<String> {
    let port = addr.port();
    let mut hosts = Vec::new();
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        for name in ["127.0.0.1", "localhost", "[::1]"] {
            hosts.push(format!("{name}:{port}"));
        }
    }
    if !addr.ip().is_unspecified() {
        hosts.push(match addr {
            SocketAddr::V4(v4) => format!("{}:{port}", v4.ip()),
            SocketAddr::V6(v6) => format!("[{}]:{port}", v6.ip()),
        });
    }
    for name in extra {
        let name = name.trim().to_ascii_lowercase();
        let has_port = match name.strip_prefix('[') {
            Some(ipv6) => ipv6.contains("]:"),
            None => name.contains(':'),
        };
        if has_port {
            hosts.push(name);
        } else {
            hosts.push(format!("{name}:{port}"));
            // Behind a proxy on the standard ports, browsers leave the port out.
            hosts.push(name);
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

struct AppState {
    settings: ServeSettings,
    jobs: Mutex<HashMap<String, Job>>,
    busy_profiles: Mutex<HashSet<String>>,
    /// Session ID → when it was given.
    sessions: Mutex<HashMap<String, Instant>>,
    /// Failed sign-ins by the address they came from.
    failures: Mutex<HashMap<std::net::IpAddr, SignInFailures>>,
    validations: Arc<tokio::sync::Semaphore>,
    /// One change of a job at a time (its choices, corrections, checks).
    job_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AppState {
    /// `message` without the server's folders: the data folder and the
    /// profiles' folder are named by what they are.
    fn without_paths(&self, message: &str) -> String {
        let mut message = message.to_owned();
        for (folder, name) in [
            (&self.settings.data, "[data]"),
            (&self.settings.config_dir, "[profiles]"),
        ] {
            let mut forms = Vec::new();
            if let Ok(full) = folder.canonicalize() {
                forms.push(full.display().to_string());
            }
            // A relative name ("data") only where it starts a path.
            forms.push(format!("{}/", folder.display()));
            for form in forms.iter().filter(|form| form.len() > 1) {
                let replacement = if form.ends_with('/') {
                    format!("{name}/")
                } else {
                    name.to_owned()
                };
                message = message.replace(form.as_str(), &replacement);
            }
        }
        message
    }
}

type Shared = Arc<AppState>;

/// Runs `work` on the blocking pool as one of the few file checks at once
/// (the upload's limit): opening a large workbook is as heavy as checking.
async fn checking<T: Send + 'static>(
    state: &Shared,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let permit = Arc::clone(&state.validations)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
}

/// Whether `addr` is a loopback address.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// The server's routes over its state.
pub fn router(settings: ServeSettings) -> anyhow::Result<Router> {
    check_data_folder(&settings.data)?;
    create_private_dir(&settings.data)?;
    create_private_dir(&settings.data.join("jobs"))?;
    let jobs = jobs::known_jobs(&settings.data.join("jobs"));
    // The page tells the clerk only that IT has a profile to finish: the
    // reason is for IT, here.
    for profile in profiles(&settings) {
        if let Some(problem) = &profile.problem {
            tracing::warn!("the profile {} cannot declare: {problem}", profile.name);
        }
    }
    let state = Arc::new(AppState {
        settings,
        jobs: Mutex::new(jobs),
        busy_profiles: Mutex::new(HashSet::new()),
        sessions: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        validations: Arc::new(tokio::sync::Semaphore::new(MAX_VALIDATIONS)),
        job_locks: Mutex::new(HashMap::new()),
    });
    Ok(Router::new()
        .route("/", get(home::home))
        .route("/login", post(auth::login))
        .route(
            "/uploads",
            // The multipart extractor's own limit sits above ours, which
            // is enforced while the file streams.
            post(upload::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD as usize + 64 * 1024)),
        )
        .route("/static/page.js", get(home::script))
        .route("/static/page.css", get(home::stylesheet))
        .route("/jobs/{id}", get(job::job_page))
        .route("/jobs/{id}/declare", post(job::declare))
        .route(
            "/jobs/{id}/sheet",
            get(fixing::sheet_page).post(fixing::choose_sheet),
        )
        .route(
            "/jobs/{id}/columns",
            get(fixing::columns_page).post(fixing::map_columns),
        )
        .route(
            "/jobs/{id}/fix",
            get(fixing::grid_page).post(fixing::fix_row),
        )
        .route("/jobs/{id}/replace", post(fixing::replace))
        .route("/jobs/{id}/progress", get(job::progress))
        .route("/jobs/{id}/stop", post(job::stop))
        .route("/jobs/{id}/files/{name}", get(job::download))
        .route("/inquire", post(past::inquire_run))
        .route("/past", get(past::past_run))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            remember_language,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::guard,
        ))
        .with_state(state))
}

/// Creates `path` owner-only; one that exists is left as it is (`--data`
/// was checked to be the user's own and closed to others).
fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    Ok(crate::outdir::create_private_folder(path)?)
}

/// `--data` as the server may use it: a folder of its own, owned by this
/// user and closed to others, never a symbolic link (which could lead the
/// uploads elsewhere) and never changed to fit: a folder that does not
/// fit is refused, with what to do.
fn check_data_folder(data: &Path) -> anyhow::Result<()> {
    let metadata = match std::fs::symlink_metadata(data) {
        Ok(metadata) => metadata,
        // Created by the server, owner-only.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    if metadata.file_type().is_symlink() {
        anyhow::bail!(
            "--data {} is a symbolic link; give the folder it points to, or a new folder",
            data.display()
        );
    }
    if !metadata.is_dir() {
        anyhow::bail!("--data {} is not a folder", data.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to this process's user.
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        if me.is_some_and(|me| me != metadata.uid()) {
            anyhow::bail!(
                "--data {} belongs to another user; give a folder of your own (uploads hold \
                 personal data)",
                data.display()
            );
        }
        if metadata.mode() & 0o077 != 0 {
            anyhow::bail!(
                "--data {} can be read or entered by other users (mode {:o}); uploads hold \
                 personal data: give a new folder, or make this one yours alone (chmod 700)",
                data.display(),
                metadata.mode() & 0o777
            );
        }
    }
    Ok(())
}

/// The cookie that keeps the clerk's choice of language.
const LANGUAGE_COOKIE: &str = "declare_lang";

/// A page asked for with `?lang=` keeps that language for every later page
/// (a cookie), so that the clerk chooses once.
async fn remember_language(
    axum::extract::State(state): axum::extract::State<Shared>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let secure = auth::secure_attribute(&state, request.headers());
    let chosen = request.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "lang")
            .and_then(|(_, value)| Language::from_tag(&value))
    });
    let mut response = next.run(request).await;
    if let Some(language) = chosen
        && let Ok(cookie) = header::HeaderValue::from_str(&format!(
            "{LANGUAGE_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict{secure}",
            language.tag()
        ))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The page's language: `?lang=`, else the one chosen before (its cookie),
/// else the browser's first language we speak, else English.
pub(crate) fn language_of(headers: &HeaderMap, asked: Option<&str>) -> Language {
    if let Some(language) = asked.and_then(Language::from_tag) {
        return language;
    }
    let remembered = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANGUAGE_COOKIE)
        .and_then(|(_, tag)| Language::from_tag(tag));
    if let Some(language) = remembered {
        return language;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .into_iter()
        .flat_map(|value| value.split(','))
        .find_map(|tag| Language::from_tag(tag.split(';').next().unwrap_or_default()))
        .unwrap_or_default()
}

/// A fresh ID the server names things by: 128 random bits in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    crate::report::hex(&bytes)
}
