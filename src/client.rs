//! The declare API client: one pooled reqwest (rustls) client that signs
//! each body as it is (the bytes signed are the bytes sent), sends it with a
//! timeout, and classifies whatever comes back. Transport failures become
//! Unknown outcomes with their own codes (`TIMEOUT`, `CONNECTION_ERROR`),
//! so that the run retries them with the same ID and bytes.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::protocol::endpoint::{EndpointError, is_loopback};
use crate::protocol::keys::KeyError;
use crate::protocol::{
    DECLARE_PATH, DeclareOutcome, INQUIRE_PATH, InquiryResponse, MessageSigner, MessageVerifier,
    ReceivedResponse, classify,
};
use crate::signing_pool::SigningPool;

/// Why the API settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("[api] {key} is not set (config file or {env})")]
    Missing {
        key: &'static str,
        env: &'static str,
    },
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(
        "[api] alipay_public_key is not set, so answers from {endpoint} could not be verified \
         and a forged S would be believed: set alipay_public_key to the Alipay+ public key \
         file (or, at your own risk, verify_responses = false)"
    )]
    NoPublicKey { endpoint: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
    #[error("cannot start the signing threads")]
    SigningThreads(#[source] std::io::Error),
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

/// A connection pool to one endpoint.
#[derive(Debug, Clone)]
pub struct DeclareClient {
    http: reqwest::Client,
    url: Url,
    settings: ApiSettings,
    signer: Arc<MessageSigner>,
    signing_threads: Arc<SigningPool>,
}

impl DeclareClient {
    pub fn new(settings: ApiSettings) -> Result<DeclareClient, ClientError> {
        crate::protocol::use_aws_lc_for_tls();
        // Never followed: a redirect would carry the signed body (names,
        // certificate numbers) to wherever the answer points.
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!is_loopback(&settings.base))
            .build()
            .map_err(ClientError::Http)?;
        let mut url = settings.base.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), DECLARE_PATH);
        url.set_path(&joined);
        let signer = Arc::new(settings.signer.clone());
        let signing_threads = SigningPool::for_requests().map_err(ClientError::SigningThreads)?;
        Ok(DeclareClient {
            http,
            url,
            settings,
            signer,
            signing_threads,
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
        let time = crate::protocol::signing::request_time();
        // Signed over the path actually requested: the API path, after any
        // prefix the endpoint has. RSA signing is a third of a millisecond
        // of CPU: it runs on the signing threads, so that concurrent
        // requests sign on every core without stalling the connections of
        // an async thread.
        let path = url.path();
        let signer = Arc::clone(&self.signer);
        let (content_path, client_id, signed_time) = (
            path.to_owned(),
            self.settings.client_id.clone(),
            time.clone(),
        );
        let owned_body = body.to_vec();
        let (signature, owned_body) = self
            .signing_threads
            .run(move || {
                let signature =
                    signer.signature_header(&content_path, &client_id, &signed_time, &owned_body);
                (signature, owned_body)
            })
            .await;
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
    let message = crate::error_chain(error);
    if error.is_timeout() {
        DeclareOutcome::unknown("TIMEOUT", format!("no answer in time: {message}"))
    } else {
        DeclareOutcome::unknown("CONNECTION_ERROR", format!("the request failed: {message}"))
    }
}
