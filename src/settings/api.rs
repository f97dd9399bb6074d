//! The `[api]` part of the settings: the client ID, where the private key
//! comes from (the environment, the config's text, or a file), how answers
//! are verified, and the [`ApiSettings`] the client is built from, with the
//! keys loaded once before any row is sent.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::client::{ApiSettings, ClientError, ResponseVerification};
use crate::config::{ApiConfig, EnvPrivateKey, KeyText, PRIVATE_KEY_VARIABLE};
use crate::protocol::MessageSigner;
use crate::protocol::endpoint::is_loopback;
use crate::protocol::keys::{KeyError, load_private_key, load_verifier, private_key_from_text};

/// Where the client's private key comes from; `DECLARE_PRIVATE_KEY` wins
/// over the config. Its `Debug` never shows key text.
#[derive(Debug, Clone)]
pub enum PrivateKeySource {
    Environment(EnvPrivateKey),
    Text(KeyText),
    File(PathBuf),
}

/// `[api]` resolved: who the client is and how requests and answers are
/// signed and checked.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    pub client_id: Option<String>,
    pub private_key: Option<PrivateKeySource>,
    pub alipay_public_key: Option<PathBuf>,
    pub verify_responses: bool,
    pub key_version: String,
    pub timeout: Duration,
}

impl ApiKeys {
    pub fn from_config(api: &ApiConfig) -> ApiKeys {
        let private_key = match (
            &api.private_key_env,
            &api.private_key_text,
            &api.private_key,
        ) {
            (Some(env), _, _) => Some(PrivateKeySource::Environment(env.clone())),
            (None, Some(text), _) => Some(PrivateKeySource::Text(text.clone())),
            (None, None, Some(path)) => Some(PrivateKeySource::File(path.clone())),
            (None, None, None) => None,
        };
        ApiKeys {
            client_id: api.client_id.clone(),
            private_key,
            alipay_public_key: api.alipay_public_key.clone(),
            verify_responses: api.verify_responses,
            key_version: api.key_version.clone(),
            timeout: Duration::from_millis(api.timeout_ms),
        }
    }

    /// The client ID, which every remote endpoint needs.
    pub fn client_id(&self) -> Result<&str, ClientError> {
        self.client_id.as_deref().ok_or(ClientError::Missing {
            key: "client_id",
            env: "DECLARE_CLIENT_ID",
        })
    }

    /// How answers from `base` are checked: a key is required for any
    /// endpoint that is not loopback unless `verify_responses = false`.
    pub fn verification(&self, base: &Url) -> Result<ResponseVerification, ClientError> {
        match (&self.alipay_public_key, self.verify_responses) {
            (_, false) => Ok(ResponseVerification::DisabledByConfig),
            (Some(_), true) => Ok(ResponseVerification::Verified),
            (None, true) if is_loopback(base) => Ok(ResponseVerification::LoopbackWithoutKey),
            (None, true) => Err(ClientError::NoPublicKey {
                endpoint: base.to_string(),
            }),
        }
    }

    /// The client's settings for `base` under `client_id`: the keys are
    /// loaded now, so that a bad key stops the run before any row.
    pub fn client_settings(&self, base: Url, client_id: &str) -> Result<ApiSettings, ClientError> {
        let signer = self.signer()?;
        let verifier = match (&self.alipay_public_key, self.verification(&base)?) {
            (Some(path), ResponseVerification::Verified) => Some(load_verifier(path)?),
            _ => None,
        };
        Ok(ApiSettings {
            base,
            client_id: client_id.to_owned(),
            signer,
            verifier,
            timeout: self.timeout,
        })
    }

    /// The signer: `DECLARE_PRIVATE_KEY` (key text, or a path) wins over
    /// `private_key`. Errors name the variable, never its value.
    fn signer(&self) -> Result<MessageSigner, ClientError> {
        let variable = format!("the environment variable {PRIVATE_KEY_VARIABLE}");
        let (key, origin) = match &self.private_key {
            Some(PrivateKeySource::Environment(EnvPrivateKey::Text(text))) => {
                (private_key_from_text(text, &variable)?, variable)
            }
            Some(PrivateKeySource::Environment(EnvPrivateKey::Path(path))) => {
                let key = load_private_key(path).map_err(|error| match error {
                    KeyError::Read { source, .. } => KeyError::Unusable {
                        origin: variable.clone(),
                        reason: format!(
                            "it is taken as a path (it has no newline and no -----BEGIN), and \
                             that file cannot be read ({source})"
                        ),
                    },
                    _ => KeyError::Invalid {
                        origin: format!("the file named by {variable}"),
                        kind: "private",
                    },
                })?;
                (key, variable)
            }
            Some(PrivateKeySource::Text(key)) => (
                private_key_from_text(&key.text, &key.origin)?,
                key.origin.clone(),
            ),
            Some(PrivateKeySource::File(path)) => {
                (load_private_key(path)?, "[api] private_key".to_owned())
            }
            None => {
                return Err(ClientError::Missing {
                    key: "private_key",
                    env: PRIVATE_KEY_VARIABLE,
                });
            }
        };
        MessageSigner::new(&key, self.key_version.clone()).map_err(|why| {
            ClientError::Key(KeyError::Unusable {
                origin,
                reason: why.to_string(),
            })
        })
    }
}
