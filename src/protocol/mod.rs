//! The Alipay+ wire format shared by the client and the sandbox: the
//! declare request body (serialised once, in a fixed field order, so that
//! the same row always yields the same bytes), RSA256 signing and
//! verification, key loading, and the response with its classification.

mod body;
pub mod keys;
mod response;
pub mod signing;

pub use body::{
    Amount, BODY_FORMAT_VERSION, BuyerCertificate, Customs, DeclareRequest, HolderName,
    MerchantCustomsInfo,
};
pub use response::{
    DeclarationRecord, DeclareOutcome, DeclareResponse, InquiryResponse, ReceivedResponse,
    ResultInfo, Status, classify,
};
pub use signing::{MessageSigner, MessageVerifier};

/// Path of the declare API, appended to the configured endpoint.
pub const DECLARE_PATH: &str = "/aps/api/v1/customs/declare";

/// Path of the inquiry API.
pub const INQUIRE_PATH: &str = "/aps/api/v1/customs/inquireDeclarationRequests";

/// `text` with the user name and password of a URL in it replaced by
/// `***`, for messages: a URL from an answer or a config is shown this way.
pub fn without_user_info(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("***");
            let _ = url.set_password(None);
            url.to_string()
        }
        _ => text.to_owned(),
    }
}
