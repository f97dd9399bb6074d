//! The ledger's keyed fingerprints: the key made with the ledger and kept
//! beside it (owner-only), the HMAC of a request's exact bytes and of its
//! bytes without the fields a retransmission may change, and the masking
//! of certificate numbers, which are never stored in full.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::hmac;

use super::LedgerError;
use crate::protocol::DeclareRequest;

/// Keyed fingerprints of a request: of its exact bytes, and of its bytes
/// with the fields a retransmission may change left out. Each is the first
/// 64 bits of an HMAC-SHA256, kept as an integer: two different requests
/// share one by a chance of 2^-64 per comparison, and eight bytes instead
/// of thirty-two keep the ledger small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprints {
    pub body: i64,
    pub fixed: i64,
}

/// A certificate number as messages and the ledger keep it: the first 6
/// and the last 4 characters, e.g. `110105********002X`.
pub fn mask_certificate(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let mut masked: String = chars[..6].iter().collect();
    masked.extend(std::iter::repeat_n('*', chars.len() - 10));
    masked.extend(&chars[chars.len() - 4..]);
    masked
}

/// The fingerprint key beside a ledger: `<ledger>.key`.
pub fn key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

pub(super) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Reads the fingerprint key, making it (and an empty, owner-only ledger
/// file) when the ledger is new.
pub(super) fn load_key(path: &Path) -> Result<hmac::Key, LedgerError> {
    let key_file = key_path(path);
    let key_error = |source| LedgerError::Key {
        path: key_file.clone(),
        source,
    };
    let ledger_exists = path.exists();
    let read_key = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .map(|bytes| hmac::Key::new(hmac::HMAC_SHA256, &bytes))
            .ok_or_else(|| {
                key_error(std::io::Error::other(
                    "not a 32-byte key in Base64; restore it from a backup",
                ))
            })
    };
    match std::fs::read_to_string(&key_file) {
        Ok(text) => read_key(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if ledger_exists {
                return Err(LedgerError::KeyMissing {
                    path: path.to_owned(),
                    key: key_file,
                });
            }
            // Written whole beside it, then linked into place: a second
            // process making the same ledger at the same moment reads one
            // complete key, whichever came first.
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| key_error(std::io::Error::other(e)))?;
            let mut salt = [0u8; 8];
            getrandom::fill(&mut salt).map_err(|e| key_error(std::io::Error::other(e)))?;
            let mut partial = key_file.clone().into_os_string();
            partial.push(format!(".{}", crate::report::hex(&salt)));
            let partial = PathBuf::from(partial);
            let written = (|| {
                use base64::Engine;
                let mut file = create_private(&partial)?;
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                file.write_all(text.as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
                std::fs::hard_link(&partial, &key_file)
            })();
            let _ = std::fs::remove_file(&partial);
            let key = match written {
                Ok(()) => hmac::Key::new(hmac::HMAC_SHA256, &bytes),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_key(&std::fs::read_to_string(&key_file).map_err(key_error)?)?
                }
                Err(error) => return Err(key_error(error)),
            };
            // The ledger file itself, owner-only before SQLite opens it
            // (its -wal and -shm files take the same permissions).
            match create_private(path) {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(LedgerError::Key {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
            Ok(key)
        }
        Err(error) => Err(key_error(error)),
    }
}

/// A request's certificate number, masked.
pub(super) fn masked_certificate(request: &DeclareRequest) -> String {
    request
        .buyer_certificate
        .as_ref()
        .map(|c| mask_certificate(&c.certificate_no))
        .unwrap_or_default()
}

/// A request with what a retransmission may change (the spec) left out.
pub(super) fn fixed_part(request: &DeclareRequest) -> DeclareRequest {
    let mut fixed = request.clone();
    fixed.merchant_customs_info.merchant_customs_code.clear();
    fixed.merchant_customs_info.merchant_customs_name.clear();
    fixed.customs.customs_code.clear();
    fixed.declaration_amount.value.clear();
    fixed.declaration_amount.currency.clear();
    fixed
}

/// The keyed fingerprints of a request and its exact bytes.
pub(super) fn fingerprints(key: &hmac::Key, request: &DeclareRequest, body: &[u8]) -> Fingerprints {
    Fingerprints {
        body: fingerprint(key, body),
        fixed: fingerprint(key, &fixed_part(request).to_body()),
    }
}

/// The first 64 bits of the HMAC of `bytes`, as an integer.
pub(super) fn fingerprint(key: &hmac::Key, bytes: &[u8]) -> i64 {
    let tag = hmac::sign(key, bytes);
    leading_integer(tag.as_ref())
}

/// The first 8 bytes of a digest as a big-endian integer.
pub(super) fn leading_integer(digest: &[u8]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}
