//! The Alipay+ wire format shared by the client and the sandbox: the
//! declare request body (serialised once, in a fixed field order, so that
//! the same row always yields the same bytes), RSA256 signing and
//! verification, key loading, and the response with its classification.

mod body;
pub mod endpoint;
pub mod keys;
mod response;
pub mod signing;

pub use body::{
    Amount, BODY_FORMAT_VERSION, BuyerCertificate, Customs, DeclareRequest, HolderName, IsSplit,
    MerchantCustomsInfo,
};
pub use endpoint::{
    EMBEDDED_CLIENT_ID, EMBEDDED_ENDPOINT, Endpoint, EndpointError, parse_endpoint,
};
pub use response::{
    DeclarationRecord, DeclareOutcome, DeclareResponse, InquiryResponse, ReceivedResponse,
    ResultInfo, classify,
};
pub use signing::{MessageSigner, MessageVerifier};

/// The customs codes the declare spec lists.
pub const SPEC_CUSTOMS_CODES: [&str; 4] = ["ZONGSHU", "ZHENGZHOU", "NINGBO", "SHANGHAI_CBT"];

/// Path of the declare API, appended to the configured endpoint.
pub const DECLARE_PATH: &str = "/aps/api/v1/customs/declare";

/// Path of the inquiry API.
pub const INQUIRE_PATH: &str = "/aps/api/v1/customs/inquireDeclarationRequests";

/// The `user:password@` of a URL-like `text`, if it has one: read from the
/// text itself, so that a URL too broken to parse is caught too.
pub fn user_info(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(user_info, _)| user_info)
}

/// `text` with the user name and password of a URL in it replaced by
/// `***`, for messages: a URL from an answer or a config is shown this way.
pub fn without_user_info(text: &str) -> String {
    match user_info(text) {
        Some(user_info) => text.replacen(&format!("{user_info}@"), "***@", 1),
        None => text.to_owned(),
    }
}

/// Makes aws-lc-rs the process's TLS provider (once; a provider already
/// chosen stays): reqwest is built without one of its own, so that the
/// build has one crypto library.
pub fn use_aws_lc_for_tls() {
    static CHOSEN: std::sync::Once = std::sync::Once::new();
    CHOSEN.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
