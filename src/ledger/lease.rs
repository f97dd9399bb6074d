//! One run per ledger scope (ledger file, endpoint, client ID) at a time.
//! A second `run` or `inquire` on the same scope would send the same orders
//! again, or settle rows the first is still sending. The lease is an
//! exclusive lock (`flock`) on a small file beside the ledger, named by the
//! scope; the kernel releases it when its holder exits, even by `kill -9`,
//! so a dead holder's lease is simply taken. The file says who holds it
//! (process, command, out folder, since when) for the message of the one
//! refused. On several machines sharing one client ID, the same lease would
//! be a PostgreSQL advisory lock on the scope's key.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What of a lease file names its holder, at most.
const HOLDER_BYTES: u64 = 1024;

/// How often a waiting command tries the lease again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Why a lease cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "the ledger {ledger} is in use for {endpoint} and client ID {client_id} by {holder}{waited}; \
         one run per ledger, endpoint and client ID at a time, so that no order is sent twice: \
         wait for it to finish, or give --wait SECS to wait for it"
    )]
    Held {
        ledger: PathBuf,
        endpoint: String,
        client_id: String,
        holder: String,
        waited: String,
    },
    #[error("cannot use the ledger's lease file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lease of one ledger scope, held until dropped.
#[derive(Debug)]
pub struct LedgerLease {
    _file: File,
}

/// The lease file of a scope: beside the ledger, named by the scope.
pub fn lease_path(ledger: &Path, endpoint: &str, client_id: &str) -> PathBuf {
    let scope = xxhash_rust::xxh3::xxh3_64(format!("{endpoint}\n{client_id}").as_bytes());
    let mut name = ledger.as_os_str().to_owned();
    name.push(format!(".{scope:016x}.lease"));
    PathBuf::from(name)
}

impl LedgerLease {
    /// Takes the lease of the scope for `command` writing to `out`, waiting
    /// up to `wait` for a live holder to let it go.
    pub fn take(
        ledger: &Path,
        endpoint: &str,
        client_id: &str,
        command: &str,
        out: &Path,
        wait: Duration,
    ) -> Result<LedgerLease, LeaseError> {
        let path = lease_path(ledger, endpoint, client_id);
        let io = |source| LeaseError::Io {
            path: path.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        // The ledger's folder, as opening the ledger makes it.
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(io)?;
        }
        let mut file = options.open(&path).map_err(io)?;
        let started = Instant::now();
        while !try_lock(&file).map_err(io)? {
            if started.elapsed() >= wait {
                // Our own line of a few hundred bytes: read no more than that.
                let mut holder = String::new();
                let _ = file
                    .rewind()
                    .and_then(|()| (&file).take(HOLDER_BYTES).read_to_string(&mut holder));
                let holder = match holder.trim() {
                    "" => "another declare-batch process".to_owned(),
                    holder => holder.to_owned(),
                };
                return Err(LeaseError::Held {
                    ledger: ledger.to_owned(),
                    endpoint: endpoint.to_owned(),
                    client_id: client_id.to_owned(),
                    holder,
                    waited: if wait.is_zero() {
                        String::new()
                    } else {
                        format!(" (waited {} s)", wait.as_secs())
                    },
                });
            }
            std::thread::sleep(RETRY_EVERY);
        }
        let out = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_owned());
        let holder = format!(
            "declare-batch {command} (process {}, out folder {}, since {})",
            std::process::id(),
            out.display(),
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S %:z")
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(LedgerLease { _file: file })
    }
}

/// Takes the file's exclusive lock if free; the kernel drops it when the
/// file is closed or the process ends.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid open descriptor, borrowed for the call.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if taken == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(code) if code == libc::EWOULDBLOCK => Ok(false),
        _ => Err(error),
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_scope_and_the_holder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("l.db");
        let out = dir.path();
        let first =
            LedgerLease::take(&ledger, "https://a/", "C", "run", out, Duration::ZERO).unwrap();
        let refused = LedgerLease::take(&ledger, "https://a/", "C", "inquire", out, Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("declare-batch run (process"), "{refused}");
        assert!(refused.contains("--wait"), "{refused}");
        // Another scope of the same ledger is free.
        let other = LedgerLease::take(&ledger, "https://a/", "D", "run", out, Duration::ZERO);
        assert!(other.is_ok());
        // A lease file grown huge (damaged, or written by another program)
        // is read no further than its holder's line.
        std::fs::write(lease_path(&ledger, "https://a/", "C"), "x".repeat(1 << 20)).unwrap();
        let refused = LedgerLease::take(&ledger, "https://a/", "C", "run", out, Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(refused.len() < 2048, "{} bytes", refused.len());
        drop(first);
        assert!(LedgerLease::take(&ledger, "https://a/", "C", "run", out, Duration::ZERO).is_ok());
    }
}
