//! `declare-batch serve`: starts the web page for finance teams (see
//! `crate::serve`) and runs until stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::say;
use crate::serve::{ServeSettings, TOKEN_VARIABLE, is_loopback, router};

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
        let app = router(ServeSettings {
            config_dir: self.config_dir,
            data: self.data,
            token,
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(self.addr)
                .await
                .with_context(|| format!("cannot listen on {}", self.addr))?;
            let local = listener.local_addr()?;
            // The address, on stdout, for whoever started the server.
            println!("http://{local}/");
            if !quiet {
                say!("declare-batch: serving the page on http://{local}/ (Ctrl-C stops it)");
            }
            axum::serve(listener, app)
                .with_graceful_shutdown(super::interrupt_signal())
                .await
                .context("the server stopped")
        })?;
        Ok(crate::exit::SUCCESS)
    }
}
