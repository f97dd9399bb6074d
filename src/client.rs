//! The declare API client: one pooled reqwest (rustls) client that signs
//! each body as it is (the bytes signed are the bytes sent), sends it with a
//! timeout, and classifies whatever comes back. Transport failures become
//! Unknown outcomes with their own codes (`TIMEOUT`, `CONNECTION_ERROR`),
//! so that the run retries them with the same ID and bytes.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{FixedOffset, Utc};
use reqwest::Url;

use crate::config::{ApiConfig, Config, EnvPrivateKey, PRIVATE_KEY_VARIABLE};
use crate::protocol::keys::{KeyError, load_private_key, load_verifier, private_key_from_text};
use crate::protocol::{
    DECLARE_PATH, DeclareOutcome, INQUIRE_PATH, InquiryResponse, MessageSigner, MessageVerifier,
    ReceivedResponse, classify,
};

/// Why the API settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("[api] {key} is not set (config file or {env})")]
    Missing {
        key: &'static str,
        env: &'static str,
    },
    #[error(
        "[api] endpoint is not set: set endpoint = \"sandbox\" to try the tool (nothing is \
         declared for real), or the Alipay+ base URL (https://...) to declare"
    )]
    NoEndpoint,
    #[error(
        "[api] alipay_public_key is not set, so answers from {endpoint} could not be verified \
         and a forged S would be believed: set alipay_public_key to the Alipay+ public key \
         file (or, at your own risk, verify_responses = false)"
    )]
    NoPublicKey { endpoint: String },
    #[error("[api] endpoint \"{endpoint}\" is not a URL: {message}")]
    BadEndpoint { endpoint: String, message: String },
    #[error(
        "[api] endpoint \"{endpoint}\" uses plain http:// to a host that is not loopback; use \
         https:// (http:// is allowed only for 127.0.0.0/8, ::1 and localhost)"
    )]
    PlainHttp { endpoint: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Everything needed to call the API, built once before any row is sent.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub base: Url,
    pub client_id: String,
    pub signer: MessageSigner,
    pub verifier: Option<MessageVerifier>,
    pub timeout: Duration,
}

/// Whether answers are checked against a public key, and if not, why not:
/// recorded in `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseVerification {
    /// Every answer's signature is checked; an unsigned S is not trusted.
    Verified,
    /// `verify_responses = false`: answers are believed unsigned.
    DisabledByConfig,
    /// A loopback endpoint without `alipay_public_key`.
    LoopbackWithoutKey,
}

impl ResponseVerification {
    /// The warning a run prints when answers are not verified.
    pub fn warning(self, endpoint: &str) -> Option<String> {
        match self {
            ResponseVerification::Verified => None,
            ResponseVerification::DisabledByConfig => Some(format!(
                "answers from {endpoint} are NOT verified (verify_responses = false): a forged \
                 or altered answer would be believed"
            )),
            ResponseVerification::LoopbackWithoutKey => Some(format!(
                "answers from the loopback endpoint {endpoint} are not verified: \
                 alipay_public_key is not set"
            )),
        }
    }
}

/// Whether plain http:// may be used to `url`'s host.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Parses an endpoint, refusing plain http:// except to loopback.
pub fn parse_endpoint(endpoint: &str) -> Result<Url, ClientError> {
    let url = Url::parse(endpoint).map_err(|e| ClientError::BadEndpoint {
        endpoint: crate::protocol::without_user_info(endpoint),
        message: e.to_string(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ClientError::PlainHttp {
            endpoint: crate::protocol::without_user_info(endpoint),
        }),
        other => Err(ClientError::BadEndpoint {
            endpoint: crate::protocol::without_user_info(endpoint),
            message: format!("scheme {other}: is not http or https"),
        }),
    }
}

impl ApiSettings {
    /// Reads `[api]`: endpoint, client ID, keys (loaded now, so that a bad
    /// key stops the run before any row), timeout.
    pub fn from_config(config: &Config) -> Result<ApiSettings, ClientError> {
        let api = &config.api;
        let endpoint = api.endpoint.as_deref().ok_or(ClientError::NoEndpoint)?;
        let base = parse_endpoint(endpoint)?;
        let client_id = api.client_id.clone().ok_or(ClientError::Missing {
            key: "client_id",
            env: "DECLARE_CLIENT_ID",
        })?;
        let signer = signer_from_config(api)?;
        let verifier = match (&api.alipay_public_key, verification(config, &base)?) {
            (Some(path), ResponseVerification::Verified) => Some(load_verifier(path)?),
            _ => None,
        };
        Ok(ApiSettings {
            base,
            client_id,
            signer,
            verifier,
            timeout: Duration::from_millis(api.timeout_ms),
        })
    }
}

/// How answers from `base` are checked under `config`: a key is required
/// for any endpoint that is not loopback unless `verify_responses = false`.
pub fn verification(config: &Config, base: &Url) -> Result<ResponseVerification, ClientError> {
    let api = &config.api;
    match (&api.alipay_public_key, api.verify_responses) {
        (_, false) => Ok(ResponseVerification::DisabledByConfig),
        (Some(_), true) => Ok(ResponseVerification::Verified),
        (None, true) if is_loopback(base) => Ok(ResponseVerification::LoopbackWithoutKey),
        (None, true) => Err(ClientError::NoPublicKey {
            endpoint: base.to_string(),
        }),
    }
}

/// The signer of `[api]`: `DECLARE_PRIVATE_KEY` (key text, or a path) wins
/// over `private_key`. Errors name the variable, never its value.
fn signer_from_config(api: &ApiConfig) -> Result<MessageSigner, ClientError> {
    let variable = format!("the environment variable {PRIVATE_KEY_VARIABLE}");
    let key = match &api.private_key_env {
        Some(EnvPrivateKey::Text(text)) => private_key_from_text(text, &variable)?,
        Some(EnvPrivateKey::Path(path)) => load_private_key(path).map_err(|error| match error {
            KeyError::Read { source, .. } => KeyError::Unusable {
                origin: variable.clone(),
                reason: format!(
                    "it is taken as a path (it has no newline and no -----BEGIN), and that \
                     file cannot be read ({})",
                    source
                ),
            },
            _ => KeyError::Invalid {
                origin: format!("the file named by {variable}"),
                kind: "private",
            },
        })?,
        None => match (&api.private_key_text, &api.private_key) {
            (Some(key), _) => private_key_from_text(&key.text, &key.origin)?,
            (None, Some(path)) => load_private_key(path)?,
            (None, None) => {
                return Err(ClientError::Missing {
                    key: "private_key",
                    env: PRIVATE_KEY_VARIABLE,
                });
            }
        },
    };
    MessageSigner::new(&key, api.key_version.clone()).map_err(|why| {
        let origin = match (&api.private_key_env, &api.private_key_text) {
            (Some(_), _) => variable,
            (None, Some(key)) => key.origin.clone(),
            (None, None) => "[api] private_key".to_owned(),
        };
        ClientError::Key(KeyError::Unusable {
            origin,
            reason: why.to_string(),
        })
    })
}

/// `Request-Time`: now, in China Standard Time, with milliseconds.
pub fn request_time() -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    Utc::now()
        .with_timezone(&beijing)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// A connection pool to one endpoint.
#[derive(Debug, Clone)]
pub struct DeclareClient {
    http: reqwest::Client,
    url: Url,
    settings: ApiSettings,
    signer: Arc<MessageSigner>,
}

impl DeclareClient {
    pub fn new(settings: ApiSettings) -> Result<DeclareClient, ClientError> {
        // Never followed: a redirect would carry the signed body (names,
        // certificate numbers) to wherever the answer points.
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!is_loopback(&settings.base))
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let mut url = settings.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), DECLARE_PATH);
        url.set_path(&joined);
        let signer = Arc::new(settings.signer.clone());
        Ok(DeclareClient {
            http,
            url,
            settings,
            signer,
        })
    }

    /// The full URL declares go to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Signs and sends one declare body; never fails, only classifies.
    pub async fn declare(&self, body: &[u8]) -> DeclareOutcome {
        self.exchange(&self.url, body).await
    }

    /// Asks for up to 10 declarations by request ID
    /// (`inquireDeclarationRequests`). `Err` holds the outcome when the
    /// answer is not a verified success.
    pub async fn inquire(&self, request_ids: &[&str]) -> Result<InquiryResponse, DeclareOutcome> {
        let body = serde_json::to_vec(&serde_json::json!({ "declarationRequestIds": request_ids }))
            .expect("a list of strings serialises");
        let mut url = self.settings.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), INQUIRE_PATH);
        url.set_path(&joined);
        let (outcome, answer) = self.exchange_raw(&url, &body).await;
        match outcome {
            DeclareOutcome::Success(_) => serde_json::from_slice(&answer).map_err(|error| {
                DeclareOutcome::unknown(
                    "INVALID_RESPONSE",
                    format!("not an inquiry response: {error}"),
                )
            }),
            other => Err(other),
        }
    }

    async fn exchange(&self, url: &Url, body: &[u8]) -> DeclareOutcome {
        self.exchange_raw(url, body).await.0
    }

    /// Signs and posts `body` to `url`; returns the classified outcome and
    /// the answer's bytes.
    async fn exchange_raw(&self, url: &Url, body: &[u8]) -> (DeclareOutcome, Vec<u8>) {
        let time = request_time();
        // Signed over the path actually requested: the API path, after any
        // prefix the endpoint has. RSA signing is milliseconds of CPU: it
        // runs on the blocking pool so that concurrent requests sign on
        // every core instead of queueing behind one async thread.
        let path = url.path();
        let signer = Arc::clone(&self.signer);
        let (content_path, client_id, signed_time) = (
            path.to_owned(),
            self.settings.client_id.clone(),
            time.clone(),
        );
        let owned_body = body.to_vec();
        let (signature, owned_body) = tokio::task::spawn_blocking(move || {
            let signature =
                signer.signature_header(&content_path, &client_id, &signed_time, &owned_body);
            (signature, owned_body)
        })
        .await
        .expect("signing does not panic");
        let sent = self
            .http
            .post(url.clone())
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("Client-Id", &self.settings.client_id)
            .header("Request-Time", &time)
            .header("Signature", signature)
            .body(owned_body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return (transport_outcome(&error), Vec::new()),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let (client_id, response_time, signature) = (
            header("Client-Id"),
            header("Response-Time"),
            header("Signature"),
        );
        if (300..400).contains(&status) {
            return (redirected(status, header("Location")), Vec::new());
        }
        let answer = match read_answer(response).await {
            Ok(answer) => answer,
            Err(outcome) => return (outcome, Vec::new()),
        };
        let received = ReceivedResponse {
            status,
            client_id: client_id.as_deref(),
            response_time: response_time.as_deref(),
            signature: signature.as_deref(),
            body: &answer,
        };
        let outcome = classify(path, &received, self.settings.verifier.as_ref());
        (outcome, answer)
    }
}

/// The longest answer read: a declare or inquiry answer is a few hundred
/// bytes; a longer one is not held.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The code of a redirect answer: a configuration-level answer (the
/// endpoint is not the API's address), never followed.
pub const REDIRECTED: &str = "REDIRECTED";

/// The answer's body, read up to `MAX_ANSWER_BYTES`; a longer one is a
/// transport failure, retried as any other.
async fn read_answer(mut response: reqwest::Response) -> Result<Vec<u8>, DeclareOutcome> {
    let too_long = || {
        DeclareOutcome::unknown(
            "RESPONSE_TOO_LARGE",
            format!(
                "the answer is longer than {} MB, which no declare answer is; it was not read",
                MAX_ANSWER_BYTES >> 20
            ),
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_long());
    }
    let mut answer = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(too_long());
                }
                answer.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(answer),
            Err(error) => return Err(transport_outcome(&error)),
        }
    }
}

/// A 3xx answer: the run stops (exit 1) with the status and where it
/// pointed, and the row stays unknown.
fn redirected(status: u16, location: Option<String>) -> DeclareOutcome {
    let location = location.map_or_else(
        || "no Location".to_owned(),
        |location| {
            format!(
                "Location: {}",
                crate::protocol::without_user_info(&location)
            )
        },
    );
    DeclareOutcome::Failed {
        code: REDIRECTED.to_owned(),
        message: format!(
            "the endpoint answered HTTP {status} ({location}); redirects are not followed, \
             since the signed body would go elsewhere: set [api] endpoint to the API's own \
             address"
        ),
        response: Default::default(),
    }
}

fn transport_outcome(error: &reqwest::Error) -> DeclareOutcome {
    let message = error_chain(error);
    if error.is_timeout() {
        DeclareOutcome::unknown("TIMEOUT", format!("no answer in time: {message}"))
    } else {
        DeclareOutcome::unknown("CONNECTION_ERROR", format!("the request failed: {message}"))
    }
}

/// An error and its causes on one line: reqwest's own message alone rarely
/// says what happened ("error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://open-sea-global.alipayplus.com",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9",
            "http://LOCALHOST:80/base",
        ] {
            assert!(parse_endpoint(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1",
            "http://example.com",
            "http://127.0.0.1.example.com",
        ] {
            assert!(
                matches!(parse_endpoint(refused), Err(ClientError::PlainHttp { .. })),
                "{refused}"
            );
        }
        assert!(matches!(
            parse_endpoint("ftp://127.0.0.1"),
            Err(ClientError::BadEndpoint { .. })
        ));
        assert!(matches!(
            parse_endpoint("sandbox"),
            Err(ClientError::BadEndpoint { .. })
        ));
    }

    #[test]
    fn request_time_is_iso_8601_with_offset() {
        let time = request_time();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&time).is_ok(),
            "{time}"
        );
        assert!(time.ends_with("+08:00"), "{time}");
    }
}
