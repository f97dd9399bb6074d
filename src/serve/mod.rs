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

mod listener;
mod pages;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Ledger, LedgerRun};
use crate::messages::Language;
use crate::run::{Phase, Progress, RunOptions, RunPlan, execute};
use crate::settings::{Overrides, Settings};

pub use listener::serve;
pub use pages::Text;

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
const DOWNLOADS: [&str; 6] = [
    "results.csv",
    "retry.csv",
    "rejected.csv",
    "rejected.xlsx",
    "report.html",
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

/// Failed sign-ins in the current minute.
struct SignInFailures {
    since: Instant,
    count: u32,
}

impl SignInFailures {
    /// Whether another try may be checked now.
    fn allow(&mut self) -> bool {
        if self.since.elapsed() >= Duration::from_secs(60) {
            self.since = Instant::now();
            self.count = 0;
        }
        self.count < FAILED_SIGN_INS_PER_MINUTE
    }

    fn record(&mut self) {
        self.count += 1;
    }
}

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
struct Job {
    profile: String,
    input: PathBuf,
    folder: PathBuf,
    /// Rows valid in the validation: what "Declare N rows" declares.
    valid_rows: u64,
    created_at: String,
    progress: Option<watch::Receiver<Progress>>,
    /// The run's end: exit code, or the error that stopped it.
    finished: Option<Result<u8, String>>,
    cancel: Option<CancellationToken>,
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
}

impl AppState {
    /// Whether `peer` may have a token checked now; with `failed`, counts
    /// a wrong one. The peer is the proxy's address behind a proxy, where
    /// the throttle is then everyone's.
    fn sign_in_allowed(&self, peer: Option<std::net::IpAddr>, failed: bool) -> bool {
        let peer = peer.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut failures = self.failures.lock().expect("not poisoned");
        if !failures.contains_key(&peer) && failures.len() >= MAX_THROTTLED_ADDRESSES {
            failures.retain(|_, window| window.since.elapsed() < Duration::from_secs(60));
            if failures.len() >= MAX_THROTTLED_ADDRESSES {
                failures.clear();
            }
        }
        let window = failures.entry(peer).or_insert(SignInFailures {
            since: Instant::now(),
            count: 0,
        });
        let allowed = window.allow();
        if allowed && failed {
            window.record();
        }
        allowed
    }

    fn session_valid(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().expect("not poisoned");
        // Looked up by the random ID itself: 128 bits are not guessed.
        sessions
            .get(id)
            .is_some_and(|given| given.elapsed() < SESSION_LIFETIME)
    }

    fn new_session(&self) -> String {
        let id = new_id();
        let mut sessions = self.sessions.lock().expect("not poisoned");
        sessions.retain(|_, given| given.elapsed() < SESSION_LIFETIME);
        sessions.insert(id.clone(), Instant::now());
        id
    }

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

/// `job.json`: what a job's folder is for.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct JobRecord {
    profile: String,
    created_at: String,
    /// The uploaded file's name on the client's side (no folder).
    #[serde(default)]
    input_name: Option<String>,
}

/// The jobs of earlier server runs, from their folders: validated, run to
/// the end, or cut short by a restart (declaring again resumes the run
/// from its journal).
fn known_jobs(jobs: &Path) -> HashMap<String, Job> {
    let mut known = HashMap::new();
    for entry in std::fs::read_dir(jobs).into_iter().flatten().flatten() {
        let folder = entry.path();
        let Some(record) = std::fs::read_to_string(folder.join("job.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<JobRecord>(&text).ok())
        else {
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
        let summary: serde_json::Value = std::fs::read_to_string(out.join("summary.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        // A run cut short leaves run.json beside the validation's summary.
        let finished = (summary["command"] == "run").then(|| {
            Ok(summary["exit_code"]
                .as_u64()
                .and_then(|code| u8::try_from(code).ok())
                .unwrap_or(crate::exit::FATAL))
        });
        known.insert(
            entry.file_name().to_string_lossy().into_owned(),
            Job {
                profile: record.profile,
                input,
                folder: out,
                valid_rows: summary["rows"]["valid"].as_u64().unwrap_or(0),
                created_at: record.created_at,
                progress: None,
                finished,
                cancel: None,
            },
        );
    }
    known
}

/// The runs a profile's ledger knows, newest first; none without a ledger.
fn ledger_runs(profile: &Profile) -> anyhow::Result<Vec<LedgerRun>> {
    let path = profile.settings.ledger.standing();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (endpoint, client_id) = profile.settings.scope()?;
    Ok(Ledger::open(&path, &endpoint, &client_id)?.runs(50)?)
}

/// The profiles in `dir`: every `*.toml`, sorted by name.
pub fn profiles(dir: &Path) -> Vec<Profile> {
    let mut profiles: Vec<Profile> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .filter_map(|path| {
            let settings = Settings::load_profile(&path, Overrides::default()).ok()?;
            let name = path.file_stem()?.to_string_lossy().into_owned();
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
        })
        .collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    profiles
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
    let jobs = known_jobs(&settings.data.join("jobs"));
    let state = Arc::new(AppState {
        settings,
        jobs: Mutex::new(jobs),
        busy_profiles: Mutex::new(HashSet::new()),
        sessions: Mutex::new(HashMap::new()),
        failures: Mutex::new(HashMap::new()),
        validations: Arc::new(tokio::sync::Semaphore::new(MAX_VALIDATIONS)),
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route(
            "/uploads",
            // The multipart extractor's own limit sits above ours, which
            // is enforced while the file streams.
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD as usize + 64 * 1024)),
        )
        .route("/static/page.js", get(script))
        .route("/static/page.css", get(stylesheet))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/declare", post(declare))
        .route("/jobs/{id}/progress", get(progress))
        .route("/jobs/{id}/files/{name}", get(download))
        .route("/inquire", post(inquire_run))
        .route("/past", get(past_run))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
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

/// The checks before every handler (host, token or session, cross-site
/// posts) and the security headers on every response.
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = checked(&state, request, next).await;
    let headers = response.headers_mut();
    // A run's file brings its own policy (`serve_file`).
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(header::HeaderValue::from_static(PAGE_POLICY));
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not no-referrer: then browsers send `Origin: null`, and the
        // cross-site check would refuse the page's own posts.
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    if !path.starts_with("/static/") {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    response
}

async fn checked(state: &Shared, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if !host_allowed(&state.settings.allowed_hosts, headers) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "refused: this server answers only to its own address (start it with --allow-host \
             NAME to be reached under another name)",
        )
            .into_response();
    }
    let is_static = request.uri().path().starts_with("/static/");
    if let Some(token) = &state.settings.token
        && !is_static
    {
        let given = bearer(headers);
        let valid_bearer = given
            .as_ref()
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())));
        let valid_session =
            cookie(headers, SESSION_COOKIE).is_some_and(|id| state.session_valid(&id));
        let logging_in = request.method() == Method::POST && request.uri().path() == "/login";
        if !valid_bearer && !valid_session && !logging_in {
            // A wrong bearer token is a guess like a wrong sign-in.
            if given.is_some() && !state.sign_in_allowed(peer_of(&request), true) {
                return too_many_sign_ins();
            }
            let language = language_of(headers, None);
            return (StatusCode::UNAUTHORIZED, Html(pages::login(language))).into_response();
        }
    }
    if request.method() != Method::GET && !same_origin(headers) {
        return (
            StatusCode::FORBIDDEN,
            "refused: a request that changes something must come from this page",
        )
            .into_response();
    }
    let peer = Peer(peer_of(&request));
    // A body that stalls is dropped rather than holding its connection.
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(peer);
    let body = Body::new(tower_http::timeout::TimeoutBody::new(
        BODY_IDLE_TIMEOUT,
        body,
    ));
    next.run(Request::from_parts(parts, body)).await
}

fn too_many_sign_ins() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, "60")],
        "too many wrong tokens: wait a minute before signing in again",
    )
        .into_response()
}

/// The address a request came from, for handlers (the guard adds it).
#[derive(Debug, Clone, Copy)]
struct Peer(Option<std::net::IpAddr>);

/// The address a request came from, as the accept loop recorded it.
fn peer_of(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|axum::extract::ConnectInfo(peer)| peer.ip())
}

/// Whether the request's `Host` is one of the server's own.
fn host_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| allowed.iter().any(|name| name.eq_ignore_ascii_case(host)))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

/// Whether the request comes from a page of this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|value| value.to_str().ok());
    match origin.and_then(|origin| url::Url::parse(origin).ok()) {
        Some(url) => {
            let origin_host = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            origin_host == host
        }
        None => false,
    }
}

/// The page's language: `?lang=`, else the browser's first language we
/// speak, else English.
fn language_of(headers: &HeaderMap, asked: Option<&str>) -> Language {
    if let Some(language) = asked.and_then(Language::from_tag) {
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

#[derive(serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

async fn home(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Html<String> {
    let language = language_of(&headers, query.lang.as_deref());
    let mut jobs: Vec<pages::JobLine> = state
        .jobs
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(id, job)| pages::JobLine {
            id: id.clone(),
            profile: job.profile.clone(),
            created_at: job.created_at.clone(),
            state: match (&job.finished, &job.progress) {
                (Some(Ok(code)), _) => pages::JobState::Finished(*code),
                (Some(Err(_)), _) => pages::JobState::Failed,
                (None, Some(_)) => pages::JobState::Running,
                (None, None) if job.folder.join("run.json").exists() => {
                    pages::JobState::Interrupted
                }
                (None, None) => pages::JobState::Validated,
            },
        })
        .collect();
    jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let profiles = profiles(&state.settings.config_dir);
    let past: Vec<(String, Vec<LedgerRun>)> = profiles
        .iter()
        .filter(|profile| !profile.sandbox && profile.problem.is_none())
        .filter_map(|profile| Some((profile.name.clone(), ledger_runs(profile).ok()?)))
        .collect();
    Html(pages::home(language, &profiles, &jobs, &past))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<Shared>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let Some(token) = &state.settings.token else {
        return Redirect::to("/").into_response();
    };
    if !state.sign_in_allowed(peer, false) {
        return too_many_sign_ins();
    }
    if !bool::from(form.token.as_bytes().ct_eq(token.as_bytes())) {
        state.sign_in_allowed(peer, true);
        return (StatusCode::UNAUTHORIZED, "the token is not right").into_response();
    }
    // Over TLS, here or at a proxy that says so, the cookie is never sent
    // in clear text. (A client that claims it falsely only locks itself out.)
    let behind_tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if state.settings.secure_cookies || behind_tls {
        "; Secure"
    } else {
        ""
    };
    (
        [(
            header::SET_COOKIE,
            format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}",
                state.new_session()
            ),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

/// The page's script: served as a file, so that no inline script runs.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}

/// A fresh ID the server names things by: 128 random bits in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    crate::report::hex(&bytes)
}

fn error_page(status: StatusCode, message: &str) -> Response {
    (status, Html(pages::error(message))).into_response()
}

/// Takes an upload (a profile and a file), streams it to a file of the
/// server's naming under `--data` (at most `MAX_UPLOAD` bytes), validates
/// it into a folder of its own (at most `MAX_VALIDATIONS` at once), and
/// shows the validation. A refused or failed upload leaves nothing behind.
async fn upload(State(state): State<Shared>, headers: HeaderMap, multipart: Multipart) -> Response {
    let id = new_id();
    let folder = state.settings.data.join("jobs").join(&id);
    if let Err(error) = create_private_dir(&folder) {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &state.without_paths(&error.to_string()),
        );
    }
    // Removed unless the upload becomes a job, also when the client goes
    // away mid-way (the handler is then dropped).
    let mut leftover = Leftover(Some(folder.clone()));
    match take_upload(&state, &headers, multipart, &id, &folder).await {
        Ok(response) => {
            leftover.0 = None;
            response
        }
        Err((status, message)) => error_page(status, &state.without_paths(&message)),
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
    profile: String,
    input: PathBuf,
    /// The file's name on the client, for `job.json`.
    input_name: String,
}

/// Reads the form: one profile name (at most `MAX_FIELD_BYTES`), exactly
/// one file; any other field is refused.
async fn read_upload_form(
    mut multipart: Multipart,
    folder: &Path,
) -> Result<UploadForm, (StatusCode, String)> {
    let mut profile = None;
    let mut input: Option<(PathBuf, String)> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => return Err((error.status(), error.body_text())),
        };
        match field.name() {
            Some("profile") if profile.is_none() => {
                let mut text = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|error| (error.status(), error.body_text()))?
                {
                    if text.len() + chunk.len() > MAX_FIELD_BYTES {
                        return Err((
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("the profile's name is longer than {MAX_FIELD_BYTES} bytes"),
                        ));
                    }
                    text.extend_from_slice(&chunk);
                }
                profile = Some(String::from_utf8_lossy(&text).into_owned());
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
                    .rsplit('.')
                    .next()
                    .map(str::to_ascii_lowercase)
                    .filter(|ext| ext == "csv" || ext == "xlsx");
                let Some(extension) = extension else {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "upload a .csv or .xlsx export of the orders".to_owned(),
                    ));
                };
                let path = folder.join(format!("input.{extension}"));
                save(field, &path).await?;
                input = Some((path, client_name));
            }
            Some("file") => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "upload one file at a time".to_owned(),
                ));
            }
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "the form has a field the page does not send".to_owned(),
                ));
            }
        }
    }
    match (profile, input) {
        (Some(profile), Some((input, input_name))) => Ok(UploadForm {
            profile,
            input,
            input_name,
        }),
        _ => Err((
            StatusCode::BAD_REQUEST,
            "choose a profile and a file".to_owned(),
        )),
    }
}

async fn take_upload(
    state: &Shared,
    headers: &HeaderMap,
    multipart: Multipart,
    id: &str,
    folder: &Path,
) -> Result<Response, (StatusCode, String)> {
    // The rows' messages in the language of the person who uploads.
    let language = language_of(headers, None);
    let form = read_upload_form(multipart, folder).await?;
    let Some(profile) = profiles(&state.settings.config_dir)
        .into_iter()
        .find(|p| p.name == form.profile)
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            "choose a profile and a file".to_owned(),
        ));
    };
    let out = folder.join("out");
    let (validate_input, validate_out) = (form.input.clone(), out.clone());
    let mut validate_settings = profile.settings.clone();
    validate_settings.language = language;
    // Checking a file takes memory and both cores: a few at a time. The
    // permit goes with the check, which runs on even if the client leaves.
    let permit = Arc::clone(&state.validations)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let validated = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        crate::run::validate::validate_input(&validate_input, &validate_settings, &validate_out)
    })
    .await;
    let summary = match validated {
        Ok(Ok(summary)) => summary,
        Ok(Err(error)) => {
            let message = format!("{error:#}").replace(
                &form.input.display().to_string(),
                &format!("\"{}\"", form.input_name),
            );
            return Err((StatusCode::UNPROCESSABLE_ENTITY, message));
        }
        Err(error) => return Err((StatusCode::INTERNAL_SERVER_ERROR, error.to_string())),
    };
    // Kept beside the upload, so that a restarted server knows the job.
    let record = JobRecord {
        profile: profile.name.clone(),
        created_at: crate::report::timestamp(chrono::Local::now()),
        input_name: Some(form.input_name),
    };
    crate::report::write_json(&folder.join("job.json"), &record)
        .map_err(|error| (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    state.jobs.lock().expect("not poisoned").insert(
        id.to_owned(),
        Job {
            profile: profile.name,
            input: form.input,
            folder: out,
            valid_rows: summary.rows.valid,
            created_at: record.created_at,
            progress: None,
            finished: None,
            cancel: None,
        },
    );
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

/// Streams a multipart field to `path`, refusing it once it passes
/// `MAX_UPLOAD` bytes.
async fn save(
    mut field: axum::extract::multipart::Field<'_>,
    path: &Path,
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
        .map_err(|error| (error.status(), error.body_text()))?
    {
        written += chunk.len() as u64;
        if written > MAX_UPLOAD {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the file is larger than {} MB; split the export",
                    MAX_UPLOAD / 1024 / 1024
                ),
            ));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)
}

/// Reads a job the server knows.
fn with_job<T>(state: &Shared, id: &str, read: impl FnOnce(&Job) -> T) -> Option<T> {
    state.jobs.lock().expect("not poisoned").get(id).map(read)
}

fn no_such_job() -> Response {
    error_page(StatusCode::NOT_FOUND, "no such upload or run")
}

async fn job_page(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<LangQuery>,
) -> Response {
    let language = language_of(&headers, query.lang.as_deref());
    let profiles = profiles(&state.settings.config_dir);
    let job = with_job(&state, &id, |job| {
        (
            job.profile.clone(),
            job.folder.clone(),
            job.valid_rows,
            job.progress.is_some() || job.finished.is_some(),
        )
    });
    let (profile_name, folder, valid_rows, started) = match job {
        Some(job) => job,
        None => return no_such_job(),
    };
    let Some(profile) = profiles.into_iter().find(|p| p.name == profile_name) else {
        return error_page(StatusCode::NOT_FOUND, "the profile is gone");
    };
    Html(pages::job(
        language, &id, &profile, &folder, valid_rows, started,
    ))
    .into_response()
}

#[derive(serde::Deserialize)]
struct DeclareForm {
    confirm: Option<String>,
}

/// Starts the run of a validated upload with the same engine as `run`.
async fn declare(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    axum::Form(form): axum::Form<DeclareForm>,
) -> Response {
    if form.confirm.as_deref() != Some("yes") {
        return error_page(StatusCode::BAD_REQUEST, "confirm the declaration first");
    }
    let job = with_job(&state, &id, |job| {
        (
            job.profile.clone(),
            job.input.clone(),
            job.folder.clone(),
            job.progress.is_some() || job.finished.is_some(),
        )
    });
    let (profile_name, input, folder, started) = match job {
        Some(job) => job,
        None => return no_such_job(),
    };
    if started {
        return Redirect::to(&format!("/jobs/{id}")).into_response();
    }
    let Some(profile) = profiles(&state.settings.config_dir)
        .into_iter()
        .find(|p| p.name == profile_name)
    else {
        return error_page(StatusCode::NOT_FOUND, "the profile is gone");
    };
    if let Some(problem) = &profile.problem {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("the profile {} cannot declare: {problem}", profile.name),
        );
    }
    if !state
        .busy_profiles
        .lock()
        .expect("not poisoned")
        .insert(profile.name.clone())
    {
        return error_page(
            StatusCode::CONFLICT,
            &format!(
                "a run of the profile {} is going on; wait for it to finish",
                profile.name
            ),
        );
    }
    // Freed when the run ends, or at once when the request fails or the
    // client leaves before the run starts.
    let claim = ProfileClaim {
        state: Arc::clone(&state),
        profile: profile.name.clone(),
    };
    let options = RunOptions {
        input,
        out: folder,
        fresh: false,
        resend_failed: false,
        resolve_unknown: false,
    };
    let settings = profile.settings;
    let plan = match tokio::task::spawn_blocking(move || RunPlan::prepare(options, settings)).await
    {
        Ok(Ok(plan)) => plan,
        Ok(Err(error)) => {
            return error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &state.without_paths(&format!("{error:#}")),
            );
        }
        Err(error) => {
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string());
        }
    };
    let cancel = CancellationToken::new();
    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    if let Some(job) = state.jobs.lock().expect("not poisoned").get_mut(&id) {
        job.progress = Some(progress_rx);
        job.cancel = Some(cancel.clone());
    }
    let run_state = Arc::clone(&state);
    let run_id = id.clone();
    tokio::spawn(async move {
        let events: crate::run::Events = Arc::new(|event| tracing::info!("{event}"));
        let report = execute(plan, cancel, Arc::new(progress_tx), events).await;
        // Shown on the job's page: without the server's folders.
        let finished = match report.map(|report| report.outcome) {
            Ok(crate::run::RunOutcome::Fatal(error)) | Err(error) => {
                Err(run_state.without_paths(&format!("{error:#}")))
            }
            Ok(outcome) => Ok(crate::exit::of_run(&outcome)),
        };
        if let Some(job) = run_state
            .jobs
            .lock()
            .expect("not poisoned")
            .get_mut(&run_id)
        {
            job.finished = Some(finished);
        }
        drop(claim);
    });
    Redirect::to(&format!("/jobs/{id}")).into_response()
}

/// A profile marked busy while its run is prepared and goes on.
struct ProfileClaim {
    state: Shared,
    profile: String,
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

/// The run's progress as JSON, for the page's live view.
async fn progress(State(state): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let job = with_job(&state, &id, |job| {
        (
            job.progress.as_ref().map(|rx| rx.borrow().clone()),
            job.finished.clone(),
        )
    });
    let (snapshot, finished) = match job {
        Some(job) => job,
        None => return no_such_job(),
    };
    let Some(snapshot) = snapshot else {
        // Finished before a restart: what its summary says.
        let folder = with_job(&state, &id, |job| job.folder.clone()).unwrap_or_default();
        return match finished {
            Some(finished) => {
                let summary: serde_json::Value =
                    std::fs::read_to_string(folder.join("summary.json"))
                        .ok()
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or_default();
                let results = &summary["results"];
                axum::Json(serde_json::json!({
                    "started": true,
                    "phase": "finished",
                    "valid": summary["rows"]["valid"],
                    "settled": summary["rows"]["valid"],
                    "requests": summary["requests_sent"],
                    "S": results["S"],
                    "F": results["F"],
                    "U": results["U"],
                    "from_ledger": summary["from_ledger"],
                    "done": true,
                    "exit_code": finished.as_ref().ok(),
                    "error": finished.as_ref().err(),
                }))
                .into_response()
            }
            None => axum::Json(serde_json::json!({ "started": false })).into_response(),
        };
    };
    let counts = snapshot.tally.settled;
    axum::Json(serde_json::json!({
        "started": true,
        "phase": match snapshot.phase {
            Phase::Declaring => "declaring",
            Phase::WritingOutputs => "writing",
            Phase::Finished => "finished",
        },
        "valid": snapshot.rows.valid,
        "settled": snapshot.settled(),
        "requests": snapshot.tally.requests,
        "S": counts.success,
        "F": counts.failed,
        "U": counts.unknown,
        "from_ledger": snapshot.from_ledger,
        "done": finished.is_some(),
        "exit_code": finished.as_ref().and_then(|f| f.as_ref().ok().copied()),
        "error": finished.as_ref().and_then(|f| f.as_ref().err().cloned()),
    }))
    .into_response()
}

/// A file of the job's folder, by one of the names the page offers.
async fn download(
    State(state): State<Shared>,
    UrlPath((id, name)): UrlPath<(String, String)>,
) -> Response {
    if !DOWNLOADS.contains(&name.as_str()) {
        return error_page(StatusCode::NOT_FOUND, "no such file");
    }
    let Some(folder) = with_job(&state, &id, |job| job.folder.clone()) else {
        return no_such_job();
    };
    serve_file(&folder, &name).await
}

/// One of the files a run folder offers (`DOWNLOADS`), as the browser
/// should take it: HTML shown, the others saved.
async fn serve_file(folder: &Path, name: &str) -> Response {
    if !DOWNLOADS.contains(&name) {
        return error_page(StatusCode::NOT_FOUND, "no such file");
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
        Err(_) => error_page(StatusCode::NOT_FOUND, "that file is not there (yet)"),
    }
}

#[derive(serde::Deserialize)]
struct InquireForm {
    profile: String,
    out: String,
}

/// The profile of a past run its ledger lists.
fn known_past_run(state: &Shared, profile: &str, out: &str) -> Result<Profile, String> {
    let Some(profile) = profiles(&state.settings.config_dir)
        .into_iter()
        .find(|p| p.name == profile && !p.sandbox && p.problem.is_none())
    else {
        return Err("no such profile".to_owned());
    };
    let known = ledger_runs(&profile)
        .map(|runs| runs.into_iter().any(|run| run.out_dir == Path::new(out)))
        .unwrap_or(false);
    if known {
        Ok(profile)
    } else {
        Err("the ledger knows no such run".to_owned())
    }
}

#[derive(serde::Deserialize)]
struct PastQuery {
    profile: String,
    out: String,
    file: Option<String>,
    lang: Option<String>,
}

/// A past run the ledger lists: its counts, its files, and the button that
/// asks for its customs outcomes; `file=` downloads one of its files.
async fn past_run(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<PastQuery>,
) -> Response {
    let profile = match known_past_run(&state, &query.profile, &query.out) {
        Ok(profile) => profile,
        Err(message) => return error_page(StatusCode::NOT_FOUND, &message),
    };
    let out = PathBuf::from(&query.out);
    if let Some(name) = &query.file {
        return serve_file(&out, name).await;
    }
    let language = language_of(&headers, query.lang.as_deref());
    Html(pages::past_run(language, &profile, &out)).into_response()
}

/// Asks Alipay+ about a past run the profile's ledger knows: customs
/// outcomes into its `customs.csv`, unknown rows it holds settled. Only a
/// folder the ledger lists is touched, never one the request names alone.
async fn inquire_run(
    State(state): State<Shared>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<InquireForm>,
) -> Response {
    let language = language_of(&headers, None);
    let profile = match known_past_run(&state, &form.profile, &form.out) {
        Ok(profile) => profile,
        Err(message) => return error_page(StatusCode::NOT_FOUND, &message),
    };
    let out = PathBuf::from(&form.out);
    // The ledger and the files are read and written as it goes: off the
    // page's workers.
    let inquired = tokio::task::spawn_blocking(move || {
        let report = tokio::runtime::Handle::current().block_on(
            crate::run::inquire::inquire_recorded_run(&out, &profile.settings, |notice| {
                tracing::info!("{notice}");
            }),
        );
        report.map(|report| (out, report))
    })
    .await;
    match inquired {
        Ok(Ok((out, report))) => Html(pages::inquired(language, &out, &report)).into_response(),
        Ok(Err(error)) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &state.without_paths(&format!("{error:#}")),
        ),
        Err(error) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}
