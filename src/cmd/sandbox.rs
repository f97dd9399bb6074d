//! `declare-batch sandbox`: a local server that behaves like the Alipay+
//! declare endpoint, for trying the tool and for tests. Nothing is declared
//! for real. Prints the address it bound (so `--addr 127.0.0.1:0` works)
//! and where the keys for the client's config are.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::exit;
use crate::sandbox::{
    FaultPlan, Payments, RunningSandbox, SAMPLE_PAYMENTS, Sandbox, SandboxSettings, prepare_keys,
};

fn share(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is not a share between 0 and 1"))
    }
}

#[derive(Debug, clap::Args)]
pub struct SandboxOpts {
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Folder of key files: client_public.pem verifies requests, sandbox_private.pem
    /// signs answers; missing ones are generated (with client_private.pem and
    /// sandbox_public.pem for the client's config).
    #[arg(long, default_value = "sandbox-keys")]
    pub keys: PathBuf,
    /// The Client-Id requests must carry.
    #[arg(long, default_value = "SANDBOX_CLIENT")]
    pub client_id: String,
    /// Payments CSV: paymentRequestId,amount,payerCertificateNo,payerName,status
    /// (amount in fen; status OK or a word for a payment that may not be declared).
    /// Default: the sample payments built in, matching samples/orders.csv.
    #[arg(long)]
    pub payments: Option<PathBuf>,
    /// Seed for the faults: a request ID meets the same faults on the same attempt in every run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of declare requests answered U before anything is recorded.
    #[arg(long, default_value_t = 0.0, value_parser = share, value_name = "SHARE")]
    pub fail_u_before: f64,
    /// Share of declare requests recorded, then answered U anyway.
    #[arg(long, default_value_t = 0.0, value_parser = share, value_name = "SHARE")]
    pub fail_u_after: f64,
    /// Share of declare requests answered HTTP 500 without processing.
    #[arg(long, default_value_t = 0.0, value_parser = share, value_name = "SHARE")]
    pub fail_http_500: f64,
    /// Share of declare requests processed, then their connection dropped mid-answer.
    #[arg(long, default_value_t = 0.0, value_parser = share, value_name = "SHARE")]
    pub fail_drop: f64,
    /// Share of declare requests delayed by --latency-ms before processing.
    #[arg(long, default_value_t = 0.0, value_parser = share, value_name = "SHARE")]
    pub slow: f64,
    /// Delay of the slow requests, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Declare requests per second above which the answer is U
    /// REQUEST_TRAFFIC_EXCEED_LIMIT; 0 = no limit.
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u64,
    /// Time after the last call with a request ID before a changed request
    /// counts as a retransmission, in milliseconds (Alipay+: 5 minutes).
    #[arg(long, default_value_t = 300_000)]
    pub retransmit_window_ms: u64,
    /// How long customs takes after a declaration is accepted, in
    /// milliseconds: inquiries see WAITING_FOR_PROCESSING for the first
    /// half, IN_PROCESS for the second, then the customs result (refused
    /// where the buyer's identity check did not pass).
    #[arg(long, default_value_t = 10_000)]
    pub customs_delay_ms: u64,
    /// Answer without signing, to measure a client's own cost (a client
    /// with alipay_public_key set refuses unsigned successes).
    #[arg(long)]
    pub unsigned_answers: bool,
    /// The keyVersion the sandbox knows; others get KEY_NOT_FOUND.
    #[arg(long, default_value = "1")]
    pub key_version: String,
}

impl SandboxOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let (client_key, signer, made) = prepare_keys(&self.keys, &self.key_version)?;
        let payments = match &self.payments {
            Some(path) => Payments::load(path).map_err(anyhow::Error::msg)?,
            None => Payments::read(SAMPLE_PAYMENTS.as_bytes())
                .map_err(anyhow::Error::msg)
                .context("the built-in sample payments")?,
        };
        let mut settings = SandboxSettings::new(client_key, signer, payments);
        settings.client_id = self.client_id.clone();
        settings.key_version = self.key_version.clone();
        settings.rate_limit = (self.rate_limit > 0).then_some(self.rate_limit);
        settings.retransmit_window = Duration::from_millis(self.retransmit_window_ms);
        settings.customs_delay = Duration::from_millis(self.customs_delay_ms);
        settings.sign_answers = !self.unsigned_answers;
        settings.faults = FaultPlan {
            seed: self.seed,
            unknown_before: self.fail_u_before,
            unknown_after: self.fail_u_after,
            http_500: self.fail_http_500,
            drop: self.fail_drop,
            slow: self.slow,
            latency: Duration::from_millis(self.latency_ms),
        };
        let runtime = super::runtime()?;
        runtime.block_on(async move {
            let sandbox = Arc::new(Sandbox::new(settings));
            let running = RunningSandbox::start(sandbox, self.addr)
                .await
                .with_context(|| format!("cannot listen on {}", self.addr))?;
            // The first line is for scripts and tests: the endpoint to use.
            println!("{}", running.endpoint());
            if !quiet {
                eprintln!(
                    "declare-batch sandbox: listening on {} as Alipay+ would; nothing is declared for real",
                    running.endpoint()
                );
                if !made.is_empty() {
                    eprintln!("generated in {}: {}", self.keys.display(), made.join(", "));
                }
                eprintln!(
                    "client config: endpoint = \"{}\", client_id = \"{}\", private_key = \"{}\", \
                     alipay_public_key = \"{}\"",
                    running.endpoint(),
                    self.client_id,
                    self.keys.join("client_private.pem").display(),
                    self.keys.join("sandbox_public.pem").display()
                );
            }
            super::interrupt_signal().await;
            running.stop().await;
            anyhow::Ok(())
        })?;
        Ok(exit::SUCCESS)
    }
}
