//! `declare-batch serve`: starts the web page for finance teams (see
//! `crate::serve`) and runs until stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::say;
use crate::serve::{
    MIN_TOKEN_CHARS, ServeSettings, TOKEN_VARIABLE, allowed_hosts, is_loopback, router,
};

#[derive(Debug, clap::Args)]
pub struct ServeOpts {
    /// Folder of the profiles: every *.toml in it is one.
    #[arg(long, default_value = ".")]
    pub config_dir: PathBuf,
    /// Folder for uploads and run folders (created, owner-only).
    #[arg(long, default_value = "./declare-batch-data")]
    pub data: PathBuf,
    /// Address to listen on; any but loopback needs DECLARE_SERVE_TOKEN.
    #[arg(long, default_value = "127.0.0.1:8686")]
    pub addr: SocketAddr,
    /// Another name the page is reached by (a machine name, or the name a
    /// TLS proxy forwards): requests whose Host is neither the bound
    /// address nor such a name are refused (421). Repeat for several.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
}

impl ServeOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let token = std::env::var(TOKEN_VARIABLE)
            .ok()
            .filter(|token| !token.is_empty());
        if !is_loopback(&self.addr) && token.is_none() {
            bail!(
                "{} is not a loopback address: set {TOKEN_VARIABLE} to a long random secret \
                 (every request must then carry it), or listen on 127.0.0.1",
                self.addr
            );
        }
        if let Some(token) = &token
            && token.chars().count() < MIN_TOKEN_CHARS
        {
            bail!(
                "{TOKEN_VARIABLE} has {} characters; it must have at least {MIN_TOKEN_CHARS}, \
                 random (for example: openssl rand -hex 32)",
                token.chars().count()
            );
        }
        if !is_loopback(&self.addr) {
            tracing::warn!(
                "{} is not a loopback address and the page is served over plain HTTP: the \
                 token and the uploads travel in clear text. Put it behind a TLS proxy (README, \
                 \"Security\") and listen on 127.0.0.1 instead",
                self.addr
            );
        }
        let runtime = super::runtime()?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(self.addr)
                .await
                .with_context(|| format!("cannot listen on {}", self.addr))?;
            let local = listener.local_addr()?;
            let app = router(ServeSettings {
                config_dir: self.config_dir,
                data: self.data,
                token,
                allowed_hosts: allowed_hosts(&local, &self.allow_hosts),
                secure_cookies: false,
            })?;
            // The address, on stdout, for whoever started the server.
            println!("http://{local}/");
            if !quiet {
                say!("declare-batch: serving the page on http://{local}/ (Ctrl-C stops it)");
            }
            crate::serve::serve(listener, app, super::interrupt_signal()).await;
            anyhow::Ok(())
        })?;
        Ok(crate::exit::SUCCESS)
    }
}
