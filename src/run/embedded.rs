//! Where a run declares: Alipay+ (or any endpoint a config names), or the
//! sandbox started inside the process with fresh keys, which knows the
//! sample payments and takes the input's own as paid.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::client::ApiSettings;
use crate::protocol::keys::generate_key_pair;
use crate::protocol::{
    EMBEDDED_CLIENT_ID, EMBEDDED_ENDPOINT, Endpoint, MessageSigner, MessageVerifier, parse_endpoint,
};
use crate::sandbox::{Payments, RunningSandbox, SAMPLE_PAYMENTS, Sandbox, SandboxSettings};
use crate::settings::Settings;

/// Where the run declares to.
pub enum Target {
    Remote(Box<ApiSettings>),
    /// The embedded sandbox, with the payments it knows and where it
    /// remembers what it accepted (if it does).
    Embedded(Payments, Option<std::path::PathBuf>),
}

impl Target {
    /// The target of the settings' endpoint, its keys or payments loaded.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Target> {
        Ok(if settings.endpoint()? == &Endpoint::EmbeddedSandbox {
            let payments = match &settings.sandbox_payments {
                Some(path) => Payments::load(path).map_err(anyhow::Error::msg)?,
                // The samples, and the input's own payments taken as paid.
                None => Payments::read(SAMPLE_PAYMENTS.as_bytes())
                    .map_err(anyhow::Error::msg)?
                    .taking_unknown_as_paid(),
            };
            Target::Embedded(payments, settings.sandbox_memory.clone())
        } else {
            Target::Remote(Box::new(settings.remote_api()?))
        })
    }

    /// The endpoint and client ID as the ledger, `run.json` and the
    /// summary name them.
    pub fn names(&self) -> (String, String) {
        match self {
            Target::Remote(api) => (api.base.to_string(), api.client_id.clone()),
            Target::Embedded(..) => (EMBEDDED_ENDPOINT.to_owned(), EMBEDDED_CLIENT_ID.to_owned()),
        }
    }
}

/// Starts the embedded sandbox with fresh keys; returns it and the client
/// settings that reach it.
pub async fn start_embedded_sandbox(
    payments: Payments,
    memory: Option<std::path::PathBuf>,
    timeout: Duration,
) -> anyhow::Result<(RunningSandbox, ApiSettings)> {
    let (client_key, sandbox_key) =
        tokio::task::spawn_blocking(|| (generate_key_pair(), generate_key_pair()))
            .await
            .context("key generation")?;
    let mut settings = SandboxSettings::new(
        MessageVerifier::new(client_key.as_public_key())?,
        MessageSigner::new(&sandbox_key, "1")?,
        payments,
    );
    settings.memory = memory;
    let sandbox = Arc::new(
        tokio::task::spawn_blocking(move || Sandbox::remembering(settings))
            .await
            .context("reading the sandbox's memory")?
            .context("cannot read the embedded sandbox's memory")?,
    );
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let running = RunningSandbox::start(sandbox, addr)
        .await
        .context("cannot start the embedded sandbox")?;
    let api = ApiSettings {
        base: parse_endpoint(&running.endpoint())?,
        client_id: EMBEDDED_CLIENT_ID.to_owned(),
        signer: MessageSigner::new(&client_key, "1")?,
        verifier: Some(MessageVerifier::new(sandbox_key.as_public_key())?),
        timeout,
    };
    Ok((running, api))
}
