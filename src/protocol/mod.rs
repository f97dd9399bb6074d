//! The Alipay+ wire format shared by the client and the sandbox. So far:
//! the declare request body, serialised once in a fixed field order so that
//! the same row always yields the same bytes.

mod body;

pub use body::{
    Amount, BuyerCertificate, Customs, DeclareRequest, HolderName, MerchantCustomsInfo,
};

/// Path of the declare API, appended to the configured endpoint.
pub const DECLARE_PATH: &str = "/aps/api/v1/customs/declare";
