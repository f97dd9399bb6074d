//! Alipay+ RSA256 message signing: RSASSA-PKCS1-v1_5 with SHA-256 over
//! `"POST <path>\n<Client-Id>.<time>.<body>"`, carried in a `Signature`
//! header as `algorithm=RSA256,keyVersion=<v>,signature=<URL-encoded
//! Base64>`. Requests are signed with the client's key and responses with
//! Alipay+'s (or the sandbox's); the same code does both.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

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
    key: SigningKey<Sha256>,
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
    pub fn new(key: RsaPrivateKey, key_version: impl Into<String>) -> MessageSigner {
        MessageSigner {
            key: SigningKey::new(key),
            key_version: key_version.into(),
        }
    }

    /// The `Signature` header value for a message.
    pub fn signature_header(&self, path: &str, client_id: &str, time: &str, body: &[u8]) -> String {
        let signature = self
            .key
            .sign(&content_to_sign(path, client_id, time, body))
            .to_vec();
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
    key: VerifyingKey<Sha256>,
}

impl std::fmt::Debug for MessageVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageVerifier").finish_non_exhaustive()
    }
}

impl MessageVerifier {
    pub fn new(key: RsaPublicKey) -> MessageVerifier {
        MessageVerifier {
            key: VerifyingKey::new(key),
        }
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
        let Ok(signature) = Signature::try_from(signature) else {
            return false;
        };
        self.key
            .verify(&content_to_sign(path, client_id, time, body), &signature)
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::protocol::keys::{load_private_key, load_public_key, parse_private_key};
    use crate::protocol::{DECLARE_PATH, ReceivedResponse, classify};

    fn vectors_dir() -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/vectors");
        assert!(
            dir.is_dir(),
            "the shared spec must sit beside the repository: {dir:?}"
        );
        dir
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
            let key = load_private_key(&vectors_dir().join(file)).unwrap();
            let signer = MessageSigner::new(key, "1");
            let header = signer.signature_header(
                text(request, "path"),
                text(request, "client_id"),
                text(request, "request_time"),
                text(request, "body").as_bytes(),
            );
            assert_eq!(header, text(request, "signature_header"), "{file}");
        }
        let public = load_public_key(&vectors_dir().join("client_public.pem")).unwrap();
        let verifier = MessageVerifier::new(public);
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
        let key = load_private_key(&vectors_dir().join("client_private_pkcs8.pem")).unwrap();
        let debug = format!("{:?}", MessageSigner::new(key, "1"));
        assert_eq!(debug, "MessageSigner { key_version: \"1\", .. }");
    }

    #[test]
    fn response_vector_verifies_and_tampering_is_detected() {
        let vectors = vectors();
        let response = &vectors["response"];
        let public = load_public_key(&vectors_dir().join("alipay_public.pem")).unwrap();
        let verifier = MessageVerifier::new(public);
        let received = ReceivedResponse {
            status: 200,
            client_id: Some(text(response, "client_id_header")),
            response_time: Some(text(response, "response_time_header")),
            signature: Some(text(response, "signature_header")),
            body: text(response, "body").as_bytes(),
        };
        let outcome = classify(DECLARE_PATH, &received, Some(&verifier));
        assert_eq!(outcome.status(), "S", "{outcome:?}");
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
        assert_eq!(classify(DECLARE_PATH, &unsigned, None).status(), "S");
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
            (outcome.status(), outcome.code().to_owned())
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
            ("U", "INVALID_RESPONSE".into())
        );
        // Unsigned F and U are accepted even when a key is configured.
        let public = load_public_key(&vectors_dir().join("alipay_public.pem")).unwrap();
        let verifier = MessageVerifier::new(public);
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

    fn openssl(args: &[&str]) -> std::process::Output {
        Command::new("openssl")
            .args(args)
            .output()
            .expect("the openssl command-line tool is installed (.ci/run installs it)")
    }

    /// An independent implementation checks our signatures, and we check
    /// its signatures.
    #[test]
    fn signatures_agree_with_the_openssl_command_line_tool() {
        let dir = tempfile::tempdir().unwrap();
        let vectors = vectors_dir();
        let private = vectors.join("client_private_pkcs8.pem");
        let public = vectors.join("client_public.pem");
        let content = content_to_sign(
            DECLARE_PATH,
            "CLIENT",
            "2026-11-23T12:00:00+08:00",
            "{\"a\":\"张三\"}".as_bytes(),
        );
        let content_path = dir.path().join("content.bin");
        std::fs::write(&content_path, &content).unwrap();

        let signer = MessageSigner::new(load_private_key(&private).unwrap(), "1");
        let header = signer.signature_header(
            DECLARE_PATH,
            "CLIENT",
            "2026-11-23T12:00:00+08:00",
            "{\"a\":\"张三\"}".as_bytes(),
        );
        let ours = parse_signature_header(&header).unwrap().signature;
        let ours_path = dir.path().join("ours.sig");
        std::fs::write(&ours_path, &ours).unwrap();
        let verified = openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            public.to_str().unwrap(),
            "-signature",
            ours_path.to_str().unwrap(),
            content_path.to_str().unwrap(),
        ]);
        assert!(
            String::from_utf8_lossy(&verified.stdout).contains("Verified OK"),
            "{verified:?}"
        );

        let theirs_path = dir.path().join("theirs.sig");
        let signed = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            private.to_str().unwrap(),
            "-out",
            theirs_path.to_str().unwrap(),
            content_path.to_str().unwrap(),
        ]);
        assert!(signed.status.success(), "{signed:?}");
        let theirs = std::fs::read(&theirs_path).unwrap();
        let verifier = MessageVerifier::new(load_public_key(&public).unwrap());
        assert!(verifier.verify(
            DECLARE_PATH,
            "CLIENT",
            "2026-11-23T12:00:00+08:00",
            "{\"a\":\"张三\"}".as_bytes(),
            &theirs
        ));
        assert_eq!(theirs, ours, "PKCS#1 v1.5 is deterministic");
        assert!(!verifier.verify(
            DECLARE_PATH,
            "CLIENT",
            "2026-11-23T12:00:00+08:00",
            "{\"a\":\"张三\"} ".as_bytes(),
            &theirs
        ));
    }
}
