//! A local server that answers like Alipay+ for `declare` and
//! `inquireDeclarationRequests`, for trying the tool and for tests. It
//! checks the Client-Id and the request signature, validates the body per
//! the spec, knows payments (amounts, payers, statuses), keeps idempotency
//! and the retransmission rule, signs every answer with its own key, can
//! inject reproducible faults, and counts everything at `GET /stats`.

mod checks;
mod faults;
mod ledger;
mod payments;
mod stats;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;

pub use faults::{Fault, FaultPlan};
pub use ledger::Ledger;
pub use payments::{Payment, Payments};
pub use stats::StatsReport;

use crate::protocol::DeclareRequest;
use crate::protocol::SPEC_CUSTOMS_CODES;
use crate::protocol::keys::{
    KeyError, generate_key_pair, load_signer, load_verifier, write_key_pair,
};
use crate::protocol::signing::parse_signature_header;
use crate::protocol::signing::request_time;
use crate::protocol::{
    DECLARE_PATH, DeclareResponse, INQUIRE_PATH, MessageSigner, MessageVerifier,
};

/// The sample payments built into the binary (they match samples/orders.csv).
pub const SAMPLE_PAYMENTS: &str = include_str!("../../samples/payments.csv");

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub client_id: String,
    /// Verifies request signatures (the client's public key).
    pub client_key: MessageVerifier,
    /// The only keyVersion the sandbox knows.
    pub key_version: String,
    /// Signs every answer (the sandbox's private key).
    pub signer: MessageSigner,
    pub payments: Payments,
    pub customs_codes: Vec<String>,
    pub faults: FaultPlan,
    /// Declare requests per second above which it answers
    /// REQUEST_TRAFFIC_EXCEED_LIMIT.
    pub rate_limit: Option<u64>,
    pub retransmit_window: Duration,
    /// How long customs takes after a declaration is accepted (inquiries
    /// see WAITING_FOR_PROCESSING, then IN_PROCESS, then the result).
    pub customs_delay: Duration,
    /// Whether answers are signed (off only to measure the client alone).
    pub sign_answers: bool,
    /// Where the declarations it accepts are remembered across restarts
    /// (the page's sandbox profiles); `None`: forgotten when it stops.
    pub memory: Option<std::path::PathBuf>,
}

impl SandboxSettings {
    /// Defaults for everything but the keys.
    pub fn new(
        client_key: MessageVerifier,
        signer: MessageSigner,
        payments: Payments,
    ) -> SandboxSettings {
        SandboxSettings {
            client_id: "SANDBOX_CLIENT".to_owned(),
            client_key,
            key_version: "1".to_owned(),
            signer,
            payments,
            customs_codes: SPEC_CUSTOMS_CODES.iter().map(|c| (*c).to_owned()).collect(),
            faults: FaultPlan::default(),
            rate_limit: None,
            retransmit_window: Duration::from_secs(300),
            customs_delay: Duration::from_secs(10),
            sign_answers: true,
            memory: None,
        }
    }
}

struct Books {
    ledger: Ledger,
    stats: stats::Stats,
}

/// The running state of one sandbox.
pub struct Sandbox {
    settings: SandboxSettings,
    books: Mutex<Books>,
    in_flight: AtomicUsize,
    /// Appended with each declaration accepted or changed.
    memory: Option<Mutex<Memory>>,
}

/// One line of a sandbox's memory: a declaration it accepted (or changed
/// by a retransmission) and its answer.
#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    request: DeclareRequest,
    response: DeclareResponse,
    accepted_at: chrono::DateTime<chrono::Utc>,
}

/// Declarations a sandbox's memory keeps at most: it is for trying the
/// page, and is read whole when a run starts.
const MAX_REMEMBERED: usize = 100_000;

/// What a sandbox remembers with: the file it adds to, the key of its
/// digests, and how many declarations it holds.
struct Memory {
    file: std::fs::File,
    key: ledger::PersonalDigest,
    lines: usize,
}

/// Opens `path` (owner-only) to add to it.
fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    if append {
        options.create(true).append(true);
    } else {
        options.write(true).create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The key of a memory's digests, kept beside it (`<memory>.key`), made
/// on first use.
fn memory_key(path: &Path) -> std::io::Result<ledger::PersonalDigest> {
    use std::io::Write;
    let key_path = crate::ledger::key_path(path);
    match std::fs::read(&key_path) {
        Ok(key) if key.len() == 32 => return Ok(ledger::PersonalDigest::new(&key)),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is not a key this sandbox made",
                key_path.display()
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut key = [0u8; 32];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut key)
        .map_err(|_| std::io::Error::other("no randomness for the sandbox's key"))?;
    let mut file = open_private(&key_path, false)?;
    file.write_all(&key)?;
    file.sync_all()?;
    Ok(ledger::PersonalDigest::new(&key))
}

/// The declarations of a sandbox's memory, and the memory to go on adding
/// to. A line cut short by a crash is skipped.
fn recall(path: &Path) -> std::io::Result<(Ledger, Memory)> {
    use std::io::BufRead;
    if let Some(folder) = path.parent() {
        crate::outdir::create_private_folder(folder)?;
    }
    let key = memory_key(path)?;
    let mut ledger = Ledger::default();
    let mut lines = 0;
    if let Ok(file) = std::fs::File::open(path) {
        for line in std::io::BufReader::new(file).lines() {
            lines += 1;
            if let Ok(remembered) = serde_json::from_str::<Remembered>(&line?) {
                ledger.restore(
                    &key,
                    remembered.request,
                    remembered.response,
                    remembered.accepted_at,
                );
            }
        }
    }
    let file = open_private(path, true)?;
    Ok((ledger, Memory { file, key, lines }))
}

/// An answer to send: status, body, whether to cut it short.
struct Answer {
    http_status: StatusCode,
    code: String,
    body: Vec<u8>,
    dropped: bool,
}

impl Sandbox {
    pub fn new(settings: SandboxSettings) -> Sandbox {
        Sandbox::remembering(settings).expect("a sandbox without memory reads no file")
    }

    /// A sandbox that starts from its memory (`settings.memory`), if it
    /// has one, and adds to it.
    pub fn remembering(settings: SandboxSettings) -> std::io::Result<Sandbox> {
        let (ledger, memory) = match &settings.memory {
            Some(path) => {
                let (ledger, memory) = recall(path)?;
                (ledger, Some(Mutex::new(memory)))
            }
            None => (Ledger::default(), None),
        };
        Ok(Sandbox {
            settings,
            books: Mutex::new(Books {
                ledger,
                stats: stats::Stats::new(Instant::now()),
            }),
            in_flight: AtomicUsize::new(0),
            memory,
        })
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books
            .lock()
            .expect("no handler panics holding the books")
    }

    pub fn stats(&self) -> StatsReport {
        self.books().stats.report()
    }

    /// Fen declared so far against a payment.
    pub fn declared_amount(&self, payment_request_id: &str) -> u64 {
        self.books().ledger.declared_amount(payment_request_id)
    }

    fn api_answer(&self, status: &str, code: &str, message: &str) -> Answer {
        self.json_answer(code, &DeclareResponse::result(status, code, message))
    }

    fn json_answer(&self, code: &str, body: &impl Serialize) -> Answer {
        Answer {
            http_status: StatusCode::OK,
            code: code.to_owned(),
            body: serde_json::to_vec(body).expect("responses serialise"),
            dropped: false,
        }
    }

    /// Signs and sends an answer, counting it.
    fn respond(&self, path: &str, answer: Answer) -> Response {
        self.books().stats.answered(&answer.code);
        if answer.http_status != StatusCode::OK {
            return (answer.http_status, "internal error").into_response();
        }
        let time = request_time();
        let signature = self.settings.sign_answers.then(|| {
            self.settings.signer.signature_header(
                path,
                &self.settings.client_id,
                &time,
                &answer.body,
            )
        });
        let body = if answer.dropped {
            // Half a body, then the connection is cut.
            let half = Bytes::copy_from_slice(&answer.body[..answer.body.len() / 2]);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::other("connection dropped by the sandbox")),
            ];
            Body::from_stream(futures_util::stream::iter(chunks))
        } else {
            Body::from(answer.body)
        };
        let mut response = Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("Client-Id", &self.settings.client_id)
            .header("Response-Time", time);
        if let Some(signature) = signature {
            response = response.header("Signature", signature);
        }
        response.body(body).expect("valid response parts")
    }

    /// The checks every API call passes before its body is looked at.
    fn gatekeeper(
        &self,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Answer> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if method != Method::POST {
            return Some(self.api_answer(
                "F",
                "METHOD_NOT_SUPPORTED",
                "The server does not implement the requested HTTPS method.",
            ));
        }
        let json = header("Content-Type")
            .is_some_and(|kind| kind.to_ascii_lowercase().starts_with("application/json"));
        if !json {
            return Some(self.api_answer(
                "F",
                "MEDIA_TYPE_NOT_ACCEPTABLE",
                "The server does not implement the media type that is acceptable to the client.",
            ));
        }
        if header("Client-Id") != Some(self.settings.client_id.as_str()) {
            return Some(self.api_answer("F", "INVALID_CLIENT", "The client is invalid."));
        }
        let invalid_signature =
            || self.api_answer("F", "INVALID_SIGNATURE", "The signature is invalid.");
        let Some(signature) = header("Signature").and_then(|v| parse_signature_header(v).ok())
        else {
            return Some(invalid_signature());
        };
        if signature.key_version.as_deref() != Some(self.settings.key_version.as_str()) {
            return Some(self.api_answer("F", "KEY_NOT_FOUND", "The key is not found."));
        }
        let Some(time) = header("Request-Time") else {
            return Some(invalid_signature());
        };
        let verified = signature.algorithm == "RSA256"
            && self.settings.client_key.verify(
                path,
                &self.settings.client_id,
                time,
                body,
                &signature.signature,
            );
        (!verified).then(invalid_signature)
    }

    async fn declare(&self, method: Method, headers: HeaderMap, body: Bytes) -> Response {
        let now = Instant::now();
        let request_id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["customsDeclarationRequestId"].as_str().map(str::to_owned));
        let attempt = {
            let mut books = self.books();
            let over_limit = self
                .settings
                .rate_limit
                .is_some_and(|limit| books.stats.this_second(now) >= limit);
            let attempt = books.stats.arrived(now, request_id.as_deref(), &body);
            if over_limit {
                drop(books);
                let answer = self.api_answer(
                    "U",
                    "REQUEST_TRAFFIC_EXCEED_LIMIT",
                    "The request traffic exceeds the limit.",
                );
                return self.respond(DECLARE_PATH, answer);
            }
            attempt
        };
        if let Some(answer) = self.gatekeeper(DECLARE_PATH, &method, &headers, &body) {
            return self.respond(DECLARE_PATH, answer);
        }
        let id = request_id.unwrap_or_default();
        let faults = &self.settings.faults;
        if let Some(delay) = faults.delay(&id, attempt) {
            tokio::time::sleep(delay).await;
        }
        let fault = faults.fault(&id, attempt);
        let unknown = || {
            self.api_answer(
                "U",
                "UNKNOWN_EXCEPTION",
                "An API call failed, which is caused by unknown reasons.",
            )
        };
        match fault {
            Fault::UnknownBefore => return self.respond(DECLARE_PATH, unknown()),
            Fault::Http500 => {
                let answer = Answer {
                    http_status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "HTTP_500".to_owned(),
                    body: Vec::new(),
                    dropped: false,
                };
                return self.respond(DECLARE_PATH, answer);
            }
            Fault::None | Fault::UnknownAfter | Fault::Drop => {}
        }
        let answer = match checks::param_illegal(&body, &self.settings.customs_codes) {
            Err(reason) => self.api_answer(
                "F",
                "PARAM_ILLEGAL",
                &format!("Illegal parameters: {reason}"),
            ),
            Ok(request) => {
                let mut books = self.books();
                let id = request.customs_declaration_request_id.clone();
                let before = self
                    .memory
                    .as_ref()
                    .and_then(|_| books.ledger.get(&id).map(|known| known.request.clone()));
                let response = books.ledger.declare(
                    request,
                    &self.settings.payments,
                    Instant::now(),
                    self.settings.retransmit_window,
                );
                // Kept only when it changed the books: a new declaration,
                // or a retransmission's (an identical resend changes
                // nothing, digested or not).
                let changed = books
                    .ledger
                    .get(&id)
                    .filter(|known| Some(&known.request) != before.as_ref());
                if let (Some(declaration), Some(memory)) = (changed, &self.memory)
                    && response.result.result_status == "S"
                {
                    let mut memory = memory.lock().expect("not poisoned");
                    let line = Remembered {
                        request: memory.key.digested(&declaration.request),
                        response: response.clone(),
                        accepted_at: declaration.accepted_at,
                    };
                    let mut text = serde_json::to_vec(&line).expect("requests serialise");
                    text.push(b'\n');
                    use std::io::Write;
                    if memory.lines < MAX_REMEMBERED {
                        memory.lines += 1;
                        if let Err(error) = memory.file.write_all(&text) {
                            tracing::warn!("the sandbox cannot remember a declaration: {error}");
                        }
                    } else if memory.lines == MAX_REMEMBERED {
                        memory.lines += 1;
                        tracing::warn!(
                            "the sandbox remembers {MAX_REMEMBERED} declarations at most: later \
                             ones are forgotten when it stops"
                        );
                    }
                }
                drop(books);
                self.json_answer(&response.result.result_code.clone(), &response)
            }
        };
        match fault {
            Fault::UnknownAfter => self.respond(DECLARE_PATH, unknown()),
            Fault::Drop => self.respond(
                DECLARE_PATH,
                Answer {
                    code: "DROPPED".to_owned(),
                    dropped: true,
                    ..answer
                },
            ),
            _ => self.respond(DECLARE_PATH, answer),
        }
    }

    fn inquire(&self, method: Method, headers: HeaderMap, body: Bytes) -> Response {
        if let Some(answer) = self.gatekeeper(INQUIRE_PATH, &method, &headers, &body) {
            return self.respond(INQUIRE_PATH, answer);
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Inquiry {
            declaration_request_ids: Vec<String>,
        }
        let inquiry = match serde_json::from_slice::<Inquiry>(&body) {
            Ok(inquiry) if (1..=10).contains(&inquiry.declaration_request_ids.len()) => inquiry,
            _ => {
                let answer = self.api_answer(
                    "F",
                    "PARAM_ILLEGAL",
                    "Illegal parameters: declarationRequestIds must hold 1 to 10 IDs",
                );
                return self.respond(INQUIRE_PATH, answer);
            }
        };
        let books = self.books();
        let mut records = Vec::new();
        let mut not_found = Vec::new();
        for id in inquiry.declaration_request_ids {
            match books.ledger.get(&id) {
                Some(declaration) => {
                    let request = &declaration.request;
                    let customs =
                        declaration.customs_state(Instant::now(), self.settings.customs_delay);
                    let mut record = serde_json::json!({
                        "customsDeclarationRequestId": id,
                        "pspDeclarationRequestId": declaration.response.psp_declaration_request_id,
                        "pspPaymentId": declaration.response.psp_payment_id,
                        "customs": request.customs,
                        "merchantCustomsInfo": request.merchant_customs_info,
                        "declarationAmount": request.declaration_amount,
                        "isSplit": request.is_split,
                        "referenceOrderId": request.reference_order_id,
                        "declarationRequestStatus": customs.status,
                        "modifiedTime": beijing_time(customs.modified_at),
                    });
                    if let (Some(code), Some(description), Some(returned)) = (
                        customs.result_code,
                        customs.result_description,
                        customs.returned_at,
                    ) {
                        record["customsResultCode"] = code.into();
                        record["customsResultDescription"] = description.into();
                        record["customsResultReturnedTime"] = beijing_time(returned).into();
                    }
                    records.push(record);
                }
                None => not_found.push(id),
            }
        }
        drop(books);
        let body = serde_json::json!({
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "Success"},
            "declarationRecords": records,
            "declarationRequestsNotFound": not_found,
        });
        let answer = self.json_answer("SUCCESS", &body);
        self.respond(INQUIRE_PATH, answer)
    }
}

/// A moment as the API writes it: ISO 8601 at +08:00.
fn beijing_time(time: chrono::DateTime<chrono::Utc>) -> String {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    time.with_timezone(&beijing)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Sandbox);

impl<'a> InFlight<'a> {
    fn enter(sandbox: &'a Sandbox) -> InFlight<'a> {
        let now = sandbox.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sandbox.books().stats.in_flight(now);
        InFlight(sandbox)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn declare_route(
    State(sandbox): State<Arc<Sandbox>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&sandbox);
    sandbox.declare(method, headers, body).await
}

async fn inquire_route(
    State(sandbox): State<Arc<Sandbox>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sandbox.inquire(method, headers, body)
}

async fn stats_route(State(sandbox): State<Arc<Sandbox>>) -> Response {
    axum::Json(sandbox.stats()).into_response()
}

async fn no_interface(State(sandbox): State<Arc<Sandbox>>, uri: axum::http::Uri) -> Response {
    let answer = sandbox.api_answer("F", "NO_INTERFACE_DEF", "API is not defined.");
    sandbox.respond(uri.path(), answer)
}

/// The sandbox's routes.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .route(DECLARE_PATH, any(declare_route))
        .route(INQUIRE_PATH, any(inquire_route))
        .route("/stats", get(stats_route))
        .fallback(no_interface)
        .with_state(sandbox)
}

/// A sandbox serving on a bound address until it is dropped or shut down.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    pub sandbox: Arc<Sandbox>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSandbox {
    /// Binds `addr` (port 0 picks one) and serves on the current runtime.
    pub async fn start(sandbox: Arc<Sandbox>, addr: SocketAddr) -> std::io::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(Arc::clone(&sandbox));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(RunningSandbox {
            addr,
            sandbox,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// `http://ADDR`: the endpoint a client config points at.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The sandbox's key files in `dir`: `client_public.pem` verifies requests
/// and `sandbox_private.pem` signs answers. Whichever is missing is made,
/// with `client_private.pem` and `sandbox_public.pem` for the client's
/// config. Returns (verifier of requests, signer of answers, files made).
pub fn prepare_keys(
    dir: &Path,
    key_version: &str,
) -> Result<(MessageVerifier, MessageSigner, Vec<String>), KeyError> {
    let mut made = Vec::new();
    let client_public = dir.join("client_public.pem");
    if !client_public.exists() {
        write_key_pair(&generate_key_pair(), dir, "client")?;
        made.extend([
            "client_private.pem".to_owned(),
            "client_public.pem".to_owned(),
        ]);
    }
    let sandbox_private = dir.join("sandbox_private.pem");
    if !sandbox_private.exists() {
        write_key_pair(&generate_key_pair(), dir, "sandbox")?;
        made.extend([
            "sandbox_private.pem".to_owned(),
            "sandbox_public.pem".to_owned(),
        ]);
    }
    let verifier = load_verifier(&client_public)?;
    let signer = load_signer(&sandbox_private, key_version)?;
    Ok((verifier, signer, made))
}
