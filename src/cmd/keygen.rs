//! `declare-batch keygen DIR [--name NAME]`: writes a fresh RSA-2048 key
//! pair, `DIR/NAME_private.pem` (PKCS#8, owner-only) and
//! `DIR/NAME_public.pem` (SPKI), the public half to register with Alipay+.

use std::path::PathBuf;

use crate::exit;
use crate::protocol::keys::{generate_key_pair, write_key_pair};

#[derive(Debug, clap::Args)]
pub struct KeygenOpts {
    /// Folder to write the key pair into (created if missing).
    pub dir: PathBuf,
    /// File name prefix.
    #[arg(long, default_value = "client")]
    pub name: String,
}

impl KeygenOpts {
    pub fn exec(self, quiet: bool) -> anyhow::Result<u8> {
        let private = self.dir.join(format!("{}_private.pem", self.name));
        if private.exists() {
            anyhow::bail!(
                "{} already exists; keygen never overwrites a private key: choose another folder or --name",
                private.display()
            );
        }
        let key = generate_key_pair();
        let (private, public) = write_key_pair(&key, &self.dir, &self.name)?;
        if !quiet {
            println!("wrote {} (keep it secret)", private.display());
            println!("wrote {} (register it with Alipay+)", public.display());
        }
        Ok(exit::SUCCESS)
    }
}
