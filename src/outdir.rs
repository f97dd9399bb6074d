//! The out folder's guard, shared by `run` and `validate`: a lock file
//! (`.lock`, holding the process ID) that keeps a second command out of the
//! folder while one writes there, taken over when its process is gone, and
//! the check that `validate` never writes into a folder that holds a run.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The lock that keeps a second command out of the folder.
pub struct OutLock {
    path: PathBuf,
}

impl OutLock {
    /// Takes the lock of `dir` for `command` (named in the lock file), or
    /// says which live process holds it.
    pub fn take(dir: &Path, command: &str) -> anyhow::Result<OutLock> {
        let path = dir.join(".lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id())?;
                    writeln!(file, "{command}")?;
                    return Ok(OutLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = text.lines().next().unwrap_or_default().trim();
                    if holder_is_alive(holder) {
                        let other = text.lines().nth(1).unwrap_or("run").trim();
                        bail!(
                            "{} is in use by another declare-batch {other} (process {holder}, \
                             lock file {}); wait for it or use another --out folder",
                            dir.display(),
                            path.display()
                        );
                    }
                    tracing::warn!("removing the stale lock of process {holder}, which is gone");
                    std::fs::remove_file(&path)?;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        bail!("cannot take the lock {}", path.display())
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn holder_is_alive(pid: &str) -> bool {
    match pid.parse::<u32>() {
        // Without /proc, a lock is taken as held.
        Ok(pid) => !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}

/// Refuses a folder that holds a run (`run.json`): `validate` would
/// overwrite its `rejected.csv` and `summary.json`.
pub fn refuse_run_folder(dir: &Path) -> anyhow::Result<()> {
    if dir.join("run.json").exists() {
        bail!(
            "{} holds a run (run.json); validate into another --out folder, since validate's \
             rejected.csv and summary.json would replace the run's",
            dir.display()
        );
    }
    Ok(())
}

/// Creates a folder that will hold personal data (an out folder, the
/// page's `--data` and its jobs) when it is missing, readable by its owner
/// only; a folder that exists is the user's and left as it is.
pub fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    if folder.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(folder)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
