//! Where requests go: the embedded sandbox started in the process, or a
//! remote base URL (https, or plain http to loopback only), and the names
//! the ledger, `run.json` and the summaries give each. Decided once by the
//! settings, so that every command and the page agree on what is the
//! sandbox.

use std::net::IpAddr;

use url::Url;

/// The endpoint name of the embedded sandbox in `summary.json` and `run.json`.
pub const EMBEDDED_ENDPOINT: &str = "embedded-sandbox";
/// The client ID the embedded sandbox knows.
pub const EMBEDDED_CLIENT_ID: &str = "SANDBOX_CLIENT";

/// Where a run declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The sandbox started inside the process with fresh keys: nothing is
    /// declared for real.
    EmbeddedSandbox,
    /// An Alipay+ (or stand-in) base URL; the API paths are appended.
    Remote(Url),
}

impl Endpoint {
    /// The endpoint as the ledger, `run.json` and the summaries name it.
    pub fn name(&self) -> String {
        match self {
            Endpoint::EmbeddedSandbox => EMBEDDED_ENDPOINT.to_owned(),
            Endpoint::Remote(url) => url.to_string(),
        }
    }

    pub fn is_sandbox(&self) -> bool {
        matches!(self, Endpoint::EmbeddedSandbox)
    }
}

/// Why a config names no usable endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "[api] endpoint is not set: set endpoint = \"sandbox\" to try the tool (nothing is \
         declared for real), or the Alipay+ base URL (https://...) to declare"
    )]
    NotSet,
    #[error("[api] endpoint \"{endpoint}\" is not a URL: {message}")]
    NotAUrl { endpoint: String, message: String },
    #[error(
        "[api] endpoint \"{endpoint}\" uses plain http:// to a host that is not loopback; use \
         https:// (http:// is allowed only for 127.0.0.0/8, ::1 and localhost)"
    )]
    PlainHttp { endpoint: String },
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

/// Parses a base URL, refusing plain http:// except to loopback.
pub fn parse_endpoint(endpoint: &str) -> Result<Url, EndpointError> {
    let url = Url::parse(endpoint).map_err(|e| EndpointError::NotAUrl {
        endpoint: super::without_user_info(endpoint),
        message: e.to_string(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(EndpointError::PlainHttp {
            endpoint: super::without_user_info(endpoint),
        }),
        other => Err(EndpointError::NotAUrl {
            endpoint: super::without_user_info(endpoint),
            message: format!("scheme {other}: is not http or https"),
        }),
    }
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
                matches!(
                    parse_endpoint(refused),
                    Err(EndpointError::PlainHttp { .. })
                ),
                "{refused}"
            );
        }
        assert!(matches!(
            parse_endpoint("ftp://127.0.0.1"),
            Err(EndpointError::NotAUrl { .. })
        ));
        assert!(matches!(
            parse_endpoint("sandbox"),
            Err(EndpointError::NotAUrl { .. })
        ));
    }

    #[test]
    fn names() {
        assert_eq!(Endpoint::EmbeddedSandbox.name(), EMBEDDED_ENDPOINT);
        let url = parse_endpoint("https://example.com/x").unwrap();
        assert_eq!(Endpoint::Remote(url).name(), "https://example.com/x");
    }
}
