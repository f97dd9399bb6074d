//! Who may use the page, checked before every handler: requests only to
//! the server's own names (`Host`), with the token (a bearer header, or
//! the random session ID that signing in with it gives) when the server is
//! not on loopback, failed sign-ins throttled, state-changing requests
//! only from this page; and the security headers on every response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::views::{LoginPage, error_page_in, render};
use super::{
    AppState, BODY_IDLE_TIMEOUT, FAILED_SIGN_INS_PER_MINUTE, MAX_THROTTLED_ADDRESSES, PAGE_POLICY,
    SESSION_COOKIE, SESSION_LIFETIME, Shared, language_of, new_id,
};
use crate::i18n::page::PageWords;

/// Failed sign-ins in the current minute.
pub struct SignInFailures {
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

/// The checks before every handler (host, token or session, cross-site
/// posts) and the security headers on every response.
pub async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
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
                return too_many_sign_ins(language_of(headers, None));
            }
            let language = language_of(headers, None);
            let mut page = render(&LoginPage::new(language));
            *page.status_mut() = StatusCode::UNAUTHORIZED;
            return page;
        }
    }
    if request.method() != Method::GET && !same_origin(headers) {
        let language = language_of(headers, None);
        return error_page_in(
            language,
            StatusCode::FORBIDDEN,
            PageWords::of(language).from_this_page_only,
        );
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

fn too_many_sign_ins(language: crate::i18n::Language) -> Response {
    let mut page = error_page_in(
        language,
        StatusCode::TOO_MANY_REQUESTS,
        PageWords::of(language).too_many_sign_ins,
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    page
}

/// The address a request came from, for handlers (the guard adds it).
#[derive(Debug, Clone, Copy)]
pub struct Peer(Option<std::net::IpAddr>);

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

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn login(
    State(state): State<Shared>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let Some(token) = &state.settings.token else {
        return Redirect::to("/").into_response();
    };
    let language = language_of(&headers, None);
    if !state.sign_in_allowed(peer, false) {
        return too_many_sign_ins(language);
    }
    if !bool::from(form.token.as_bytes().ct_eq(token.as_bytes())) {
        state.sign_in_allowed(peer, true);
        return error_page_in(
            language,
            StatusCode::UNAUTHORIZED,
            PageWords::of(language).token_wrong,
        );
    }
    let secure = secure_attribute(&state, &headers);
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

/// Sign-ins and sessions.
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
}

/// `; Secure` for a cookie set over TLS, here or at a proxy that says so,
/// so that it is never sent in clear text. (A client that claims TLS
/// falsely only locks itself out.)
pub fn secure_attribute(state: &Shared, headers: &HeaderMap) -> &'static str {
    let behind_tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    if state.settings.secure_cookies || behind_tls {
        "; Secure"
    } else {
        ""
    }
}
