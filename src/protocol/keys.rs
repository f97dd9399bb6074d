//! Loading RSA keys the way the Alipay+ SDKs store them: PKCS#8 PEM,
//! PKCS#1 PEM, or the bare Base64 body without armour (either DER form).
//! The `rsa` crate reads every form and generates keys, which `aws-lc-rs` cannot
//! do; `aws-lc-rs` then signs and verifies (see `signing`). One loader serves the
//! client and the sandbox. Errors name the file or the environment variable
//! and never echo what it holds: key material is never printed.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::{PrivateKey, PublicKey};

use super::{MessageSigner, MessageVerifier};

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{origin} does not hold an RSA {kind} key (accepted: PKCS#8 PEM, PKCS#1 PEM, or \
         the bare Base64 body); check that it is the whole {kind} key"
    )]
    Invalid { origin: String, kind: &'static str },
    #[error("{origin} holds an RSA key that cannot be used: {reason}")]
    Unusable { origin: String, reason: String },
    #[error("cannot write key file {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// The Base64 body of a key file without PEM armour, decoded.
fn bare_der(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.split_whitespace().collect();
    STANDARD.decode(compact).ok()
}

/// An RSA private key from PKCS#8 PEM, PKCS#1 PEM or bare Base64 text.
pub fn parse_private_key(text: &str) -> Option<PrivateKey> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return PrivateKey::from_pkcs8_pem(text)
            .ok()
            .or_else(|| PrivateKey::from_pkcs1_pem(text).ok());
    }
    let der = bare_der(text)?;
    PrivateKey::from_pkcs8_der(&der)
        .ok()
        .or_else(|| PrivateKey::from_pkcs1_der(&der).ok())
}

/// An RSA public key from SPKI PEM, PKCS#1 PEM or bare Base64 text.
pub fn parse_public_key(text: &str) -> Option<PublicKey> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return PublicKey::from_public_key_pem(text)
            .ok()
            .or_else(|| PublicKey::from_pkcs1_pem(text).ok());
    }
    let der = bare_der(text)?;
    PublicKey::from_public_key_der(&der)
        .ok()
        .or_else(|| PublicKey::from_pkcs1_der(&der).ok())
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

fn file_origin(path: &Path) -> String {
    format!("key file {}", path.display())
}

pub fn load_private_key(path: &Path) -> Result<PrivateKey, KeyError> {
    parse_private_key(&read(path)?).ok_or_else(|| KeyError::Invalid {
        origin: file_origin(path),
        kind: "private",
    })
}

/// A private key given as text rather than a file (`DECLARE_PRIVATE_KEY`);
/// `origin` names where it came from, never what it holds.
pub fn private_key_from_text(text: &str, origin: &str) -> Result<PrivateKey, KeyError> {
    parse_private_key(text).ok_or_else(|| KeyError::Invalid {
        origin: origin.to_owned(),
        kind: "private",
    })
}

pub fn load_public_key(path: &Path) -> Result<PublicKey, KeyError> {
    parse_public_key(&read(path)?).ok_or_else(|| KeyError::Invalid {
        origin: file_origin(path),
        kind: "public",
    })
}

/// A signer for the private key in `path`.
pub fn load_signer(path: &Path, key_version: &str) -> Result<MessageSigner, KeyError> {
    MessageSigner::new(&load_private_key(path)?, key_version).map_err(|why| KeyError::Unusable {
        origin: file_origin(path),
        reason: why.to_string(),
    })
}

/// A verifier for the public key in `path`.
pub fn load_verifier(path: &Path) -> Result<MessageVerifier, KeyError> {
    MessageVerifier::new(&load_public_key(path)?).map_err(|why| KeyError::Unusable {
        origin: file_origin(path),
        reason: why.to_string(),
    })
}

/// The PKCS#8 DER of a private key, for `aws-lc-rs`; wiped when dropped.
pub(crate) fn private_key_der(key: &PrivateKey) -> Option<rsa::pkcs8::SecretDocument> {
    key.to_pkcs8_der().ok()
}

/// The SubjectPublicKeyInfo DER of a public key.
pub(crate) fn public_key_der(key: &PublicKey) -> Option<rsa::pkcs8::Document> {
    key.to_public_key_der().ok()
}

/// A fresh RSA-2048 key pair.
pub fn generate_key_pair() -> PrivateKey {
    PrivateKey::new(&mut getrandom::SysRng, 2048).expect("2048-bit RSA generation succeeds")
}

/// Writes `DIR/NAME_private.pem` (PKCS#8, readable by the owner only) and
/// `DIR/NAME_public.pem` (SPKI).
pub fn write_key_pair(
    key: &PrivateKey,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let private_path = dir.join(format!("{name}_private.pem"));
    let public_path = dir.join(format!("{name}_public.pem"));
    let write_error = |path: &Path, message: String| KeyError::Write {
        path: path.to_owned(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e.to_string()))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| write_error(&private_path, e.to_string()))?;
    write_private(&private_path, private_pem.as_bytes())
        .map_err(|e| write_error(&private_path, e.to_string()))?;
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| write_error(&public_path, e.to_string()))?;
    std::fs::write(&public_path, public_pem)
        .map_err(|e| write_error(&public_path, e.to_string()))?;
    Ok((private_path, public_path))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
