//! Alipay+ RSA256 message signing: RSASSA-PKCS1-v1_5 with SHA-256 over
//! `"POST <path>\n<Client-Id>.<time>.<body>"`, carried in a `Signature`
//! header as `algorithm=RSA256,keyVersion=<v>,signature=<URL-encoded
//! Base64>`. Requests are signed with the client's key and responses with
//! Alipay+'s (or the sandbox's); the same code does both. `aws-lc-rs`
//! performs the private-key operation (constant-time, at OpenSSL's speed:
//! it is AWS-LC, BoringSSL's descendant) and the verification; `rsa` only
//! reads keys in every form and generates them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::{PrivateKey, PublicKey};

use super::keys::{private_key_der, public_key_der};

/// Why a parsed key cannot sign or verify (aws-lc-rs takes RSA keys of 2048 to
/// 8192 bits for both).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct UnusableKey(String);

/// The bytes that are signed: method and path, then Client-Id, time and
/// body joined by dots.
pub fn content_to_sign(path: &str, client_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let mut content =
        Vec::with_capacity(path.len() + client_id.len() + time.len() + body.len() + 8);
    content.extend_from_slice(b"POST ");
    content.extend_from_slice(path.as_bytes());
    content.push(b'\n');
    content.extend_from_slice(client_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(time.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// Signs messages with a private key.
#[derive(Clone)]
pub struct MessageSigner {
    key: Arc<RsaKeyPair>,
    random: SystemRandom,
    key_version: String,
}

impl std::fmt::Debug for MessageSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("MessageSigner")
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl MessageSigner {
    pub fn new(
        key: &PrivateKey,
        key_version: impl Into<String>,
    ) -> Result<MessageSigner, UnusableKey> {
        let der = private_key_der(key)
            .ok_or_else(|| UnusableKey("it cannot be encoded as PKCS#8".into()))?;
        let key = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|rejected| {
            UnusableKey(format!(
                "{rejected} (RSA keys of 2048 to 8192 bits sign; Alipay+ uses RSA-2048)"
            ))
        })?;
        Ok(MessageSigner {
            key: Arc::new(key),
            random: SystemRandom::new(),
            key_version: key_version.into(),
        })
    }

    /// The `Signature` header value for a message.
    pub fn signature_header(&self, path: &str, client_id: &str, time: &str, body: &[u8]) -> String {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.random,
                &content_to_sign(path, client_id, time, body),
                &mut signature,
            )
            .expect("the buffer has the modulus's length and PKCS#1 v1.5 needs no randomness");
        format_signature_header(&self.key_version, &signature)
    }
}

/// `algorithm=RSA256,keyVersion=<v>,signature=<URL-encoded Base64>`.
pub fn format_signature_header(key_version: &str, signature: &[u8]) -> String {
    let base64 = STANDARD.encode(signature);
    format!(
        "algorithm=RSA256,keyVersion={key_version},signature={}",
        utf8_percent_encode(&base64, NON_ALPHANUMERIC)
    )
}

/// A parsed `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub algorithm: String,
    pub key_version: Option<String>,
    pub signature: Vec<u8>,
}

/// Parses a `Signature` header; the error says what is wrong with it.
pub fn parse_signature_header(value: &str) -> Result<SignatureHeader, String> {
    let mut algorithm = None;
    let mut key_version = None;
    let mut signature = None;
    for part in value.split(',') {
        let (name, field) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("malformed part \"{part}\""))?;
        match name.trim() {
            "algorithm" => algorithm = Some(field.trim().to_owned()),
            "keyVersion" => key_version = Some(field.trim().to_owned()),
            "signature" => signature = Some(field.trim().to_owned()),
            _ => {}
        }
    }
    let signature = signature.ok_or("no signature= part")?;
    let decoded = percent_decode_str(&signature)
        .decode_utf8()
        .map_err(|_| "signature is not URL-encoded text".to_owned())?;
    let signature = STANDARD
        .decode(decoded.as_bytes())
        .map_err(|_| "signature is not Base64".to_owned())?;
    Ok(SignatureHeader {
        algorithm: algorithm.unwrap_or_default(),
        key_version,
        signature,
    })
}

/// Verifies messages against a public key.
#[derive(Clone)]
pub struct MessageVerifier {
    /// Parsed once: parsing it for every message (its Montgomery set-up
    /// included) cost the sandbox a tenth of each request.
    key: Arc<aws_lc_rs::signature::ParsedPublicKey>,
}

impl std::fmt::Debug for MessageVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageVerifier").finish_non_exhaustive()
    }
}

impl MessageVerifier {
    pub fn new(key: &PublicKey) -> Result<MessageVerifier, UnusableKey> {
        use rsa::traits::PublicKeyParts;
        let bits = key.n().bit_width();
        if !(2048..=8192).contains(&bits) {
            return Err(UnusableKey(format!(
                "it has {bits} bits; RSA keys of 2048 to 8192 bits verify"
            )));
        }
        let spki = public_key_der(key)
            .ok_or_else(|| UnusableKey("it cannot be encoded as SubjectPublicKeyInfo".into()))?;
        let pkcs1 = spki_subject_public_key(spki.as_bytes())
            .ok_or_else(|| UnusableKey("its encoding has no public key bits".into()))?;
        let key = aws_lc_rs::signature::ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pkcs1)
            .map_err(|refused| UnusableKey(format!("AWS-LC refuses it: {refused}")))?;
        Ok(MessageVerifier { key: Arc::new(key) })
    }

    /// Whether `signature` signs the message with this key.
    pub fn verify(
        &self,
        path: &str,
        client_id: &str,
        time: &str,
        body: &[u8],
        signature: &[u8],
    ) -> bool {
        self.key
            .verify_sig(&content_to_sign(path, client_id, time, body), signature)
            .is_ok()
    }

    /// Whether a whole `Signature` header value signs the message, with
    /// algorithm RSA256.
    pub fn verify_header(
        &self,
        path: &str,
        client_id: &str,
        time: &str,
        body: &[u8],
        header: &str,
    ) -> bool {
        match parse_signature_header(header) {
            Ok(parsed) if parsed.algorithm == "RSA256" => {
                self.verify(path, client_id, time, body, &parsed.signature)
            }
            _ => false,
        }
    }
}

/// The `subjectPublicKey` BIT STRING's content of a SubjectPublicKeyInfo:
/// for RSA, the PKCS#1 `RSAPublicKey` that aws-lc-rs takes.
fn spki_subject_public_key(spki: &[u8]) -> Option<Vec<u8>> {
    use rsa::pkcs8::der::Decode;
    let info = rsa::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    info.subject_public_key.as_bytes().map(<[u8]>::to_vec)
}

/// `Request-Time`: now, in China Standard Time, with milliseconds.
pub fn request_time() -> String {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    chrono::Utc::now()
        .with_timezone(&beijing)
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    #[test]
    fn request_time_is_iso_8601_with_offset() {
        let time = request_time();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&time).is_ok(),
            "{time}"
        );
        assert!(time.ends_with("+08:00"), "{time}");
    }
    use crate::protocol::keys::{
        load_private_key, load_public_key, load_signer, load_verifier, parse_private_key,
    };
    use crate::protocol::{DECLARE_PATH, ReceivedResponse, classify};

    /// The official SDK's vectors, kept in the repository (see its README).
    fn vectors_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vectors")
    }

    fn vectors() -> serde_json::Value {
        let text = std::fs::read_to_string(vectors_dir().join("vectors.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn text<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("vector has no {key}"))
    }

    #[test]
    fn request_signature_matches_the_vector_with_both_key_forms() {
        let vectors = vectors();
        let request = &vectors["request"];
        let content = content_to_sign(
            text(request, "path"),
            text(request, "client_id"),
            text(request, "request_time"),
            text(request, "body").as_bytes(),
        );
        assert_eq!(content, text(request, "content_to_sign").as_bytes());
        for file in ["client_private_pkcs8.pem", "client_private_pkcs1.pem"] {
            let signer = load_signer(&vectors_dir().join(file), "1").unwrap();
            let header = signer.signature_header(
                text(request, "path"),
                text(request, "client_id"),
                text(request, "request_time"),
                text(request, "body").as_bytes(),
            );
            assert_eq!(header, text(request, "signature_header"), "{file}");
        }
        let verifier = load_verifier(&vectors_dir().join("client_public.pem")).unwrap();
        assert!(verifier.verify_header(
            text(request, "path"),
            text(request, "client_id"),
            text(request, "request_time"),
            text(request, "body").as_bytes(),
            text(request, "signature_header"),
        ));
    }

    #[test]
    fn bare_base64_keys_load_like_pem() {
        let pem = std::fs::read_to_string(vectors_dir().join("client_private_pkcs8.pem")).unwrap();
        let bare: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert_eq!(parse_private_key(&bare), parse_private_key(&pem));
        assert!(parse_private_key(&bare).is_some());
        let pkcs1 =
            std::fs::read_to_string(vectors_dir().join("client_private_pkcs1.pem")).unwrap();
        let bare1: String = pkcs1
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert_eq!(parse_private_key(&bare1), parse_private_key(&pem));
        assert!(parse_private_key("not a key").is_none());
    }

    #[test]
    fn bad_key_files_name_the_file_and_hide_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_private.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let message = load_private_key(&path).unwrap_err().to_string();
        assert!(message.contains("client_private.pem"), "{message}");
        assert!(!message.contains("SECRETSTUFF"), "{message}");
        let signer = load_signer(&vectors_dir().join("client_private_pkcs8.pem"), "1").unwrap();
        let debug = format!("{signer:?}");
        assert_eq!(debug, "MessageSigner { key_version: \"1\", .. }");
    }

    #[test]
    fn response_vector_verifies_and_tampering_is_detected() {
        let vectors = vectors();
        let response = &vectors["response"];
        let verifier = load_verifier(&vectors_dir().join("alipay_public.pem")).unwrap();
        let received = ReceivedResponse {
            status: 200,
            client_id: Some(text(response, "client_id_header")),
            response_time: Some(text(response, "response_time_header")),
            signature: Some(text(response, "signature_header")),
            body: text(response, "body").as_bytes(),
        };
        let outcome = classify(DECLARE_PATH, &received, Some(&verifier));
        assert_eq!(outcome.status().as_str(), "S", "{outcome:?}");
        let tampered = ReceivedResponse {
            body: text(response, "tampered_body_fails").as_bytes(),
            ..received
        };
        let outcome = classify(DECLARE_PATH, &tampered, Some(&verifier));
        assert_eq!(outcome.code(), "RESPONSE_SIGNATURE_INVALID");
        // Signed but without Response-Time: not trusted.
        let no_time = ReceivedResponse {
            response_time: None,
            ..received
        };
        assert_eq!(
            classify(DECLARE_PATH, &no_time, Some(&verifier)).code(),
            "RESPONSE_SIGNATURE_INVALID"
        );
        // An unsigned S is not trusted; without a key it is taken as is.
        let unsigned = ReceivedResponse {
            signature: None,
            ..received
        };
        assert_eq!(
            classify(DECLARE_PATH, &unsigned, Some(&verifier)).code(),
            "RESPONSE_SIGNATURE_INVALID"
        );
        assert_eq!(
            classify(DECLARE_PATH, &unsigned, None).status().as_str(),
            "S"
        );
    }

    #[test]
    fn responses_classify_as_s_f_or_unknown() {
        let body = |status: &str, code: &str| {
            format!(
                r#"{{"result":{{"resultCode":"{code}","resultStatus":"{status}","resultMessage":"m"}}}}"#
            )
        };
        let outcome = |status: u16, body: &str| {
            let received = ReceivedResponse {
                status,
                client_id: None,
                response_time: None,
                signature: None,
                body: body.as_bytes(),
            };
            let outcome = classify(DECLARE_PATH, &received, None);
            (outcome.status().as_str(), outcome.code().to_owned())
        };
        assert_eq!(
            outcome(200, &body("F", "ORDER_NOT_EXIST")),
            ("F", "ORDER_NOT_EXIST".into())
        );
        assert_eq!(
            outcome(200, &body("U", "REQUEST_TRAFFIC_EXCEED_LIMIT")),
            ("U", "REQUEST_TRAFFIC_EXCEED_LIMIT".into())
        );
        assert_eq!(
            outcome(503, &body("S", "SUCCESS")),
            ("U", "HTTP_503".into())
        );
        assert_eq!(outcome(200, "<html>"), ("U", "INVALID_RESPONSE".into()));
        assert_eq!(
            outcome(200, &body("X", "SUCCESS")),
            ("U", "UNKNOWN_RESULT_STATUS".into())
        );
        // Unsigned F and U are accepted even when a key is configured.
        let verifier = load_verifier(&vectors_dir().join("alipay_public.pem")).unwrap();
        let failed = body("F", "PROCESS_FAIL");
        let received = ReceivedResponse {
            status: 200,
            client_id: None,
            response_time: None,
            signature: None,
            body: failed.as_bytes(),
        };
        assert_eq!(
            classify(DECLARE_PATH, &received, Some(&verifier)).code(),
            "PROCESS_FAIL"
        );
    }

    /// A second implementation, the `rsa` crate's PKCS#1 v1.5, checks
    /// aws-lc-rs's signatures, and aws-lc-rs checks its signatures.
    #[test]
    fn signatures_agree_with_a_second_implementation() {
        use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
        use rsa::sha2::Sha256;
        use rsa::signature::{SignatureEncoding, Signer, Verifier};

        let private = load_private_key(&vectors_dir().join("client_private_pkcs8.pem")).unwrap();
        let public = load_public_key(&vectors_dir().join("client_public.pem")).unwrap();
        let body = "{\"a\":\"张三\"}".as_bytes();
        let time = "2026-11-23T12:00:00+08:00";
        let content = content_to_sign(DECLARE_PATH, "CLIENT", time, body);

        let ours = MessageSigner::new(&private, "1").unwrap();
        let ours =
            parse_signature_header(&ours.signature_header(DECLARE_PATH, "CLIENT", time, body))
                .unwrap()
                .signature;
        let second_verifier = VerifyingKey::<Sha256>::new(public.clone());
        second_verifier
            .verify(&content, &Signature::try_from(ours.as_slice()).unwrap())
            .expect("the rsa crate verifies aws-lc-rs's signature");

        let theirs = SigningKey::<Sha256>::new(private).sign(&content).to_vec();
        let verifier = MessageVerifier::new(&public).unwrap();
        assert!(verifier.verify(DECLARE_PATH, "CLIENT", time, body, &theirs));
        assert_eq!(theirs, ours, "PKCS#1 v1.5 is deterministic");
        let mut tampered = body.to_vec();
        tampered.push(b' ');
        assert!(!verifier.verify(DECLARE_PATH, "CLIENT", time, &tampered, &theirs));
    }

    #[test]
    fn keys_aws_lc_cannot_use_are_refused_with_the_reason() {
        let small = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
        let error = MessageSigner::new(&small, "1").unwrap_err().to_string();
        assert!(error.contains("2048"), "{error}");
        let error = MessageVerifier::new(small.as_public_key())
            .unwrap_err()
            .to_string();
        assert!(error.contains("1024 bits"), "{error}");
    }
}
