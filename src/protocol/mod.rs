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
