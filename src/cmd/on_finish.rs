//! `run --on-finish CMD`: a command run by `sh -c` once a run's outputs
//! are written, for mail or chat alerts. It finds the run in its
//! environment (`DECLARE_BATCH_SUMMARY`, `DECLARE_BATCH_EXIT`,
//! `DECLARE_BATCH_OUT`); what it prints joins the run's log, each line
//! timestamped and bounded; it may take at most five minutes; and its
//! failure is logged, never the run's exit code.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::say;

/// How long the command may take before it is killed.
const TIME_LIMIT: Duration = Duration::from_secs(300);
/// What is kept of each of its output streams.
const OUTPUT_LIMIT: u64 = 64 * 1024;

/// Runs `command` for a run that ended with `exit` in `out`.
pub fn run(command: &str, out: &Path, exit: u8) {
    // Absolute, so that the command may change folder.
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_owned());
    let summary = out.join("summary.json");
    let mut command_line = Command::new("sh");
    // A group of its own, so that a command that overstays is killed with
    // everything it started (which would otherwise hold its pipes open).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command_line, 0);
    let spawned = command_line
        .arg("-c")
        .arg(command)
        .env(
            "DECLARE_BATCH_SUMMARY",
            if summary.exists() {
                summary.as_os_str()
            } else {
                "".as_ref()
            },
        )
        .env("DECLARE_BATCH_EXIT", exit.to_string())
        .env("DECLARE_BATCH_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            say!("declare-batch: the --on-finish command could not start: {error}");
            return;
        }
    };
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|pipe| std::thread::spawn(move || bounded_text(pipe)))
    .collect();
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < TIME_LIMIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) | Err(_) => {
                kill_group(&mut child);
                break None;
            }
        }
    };
    for reader in readers {
        let text = reader.join().unwrap_or_default();
        for line in text.lines() {
            say!("declare-batch: on-finish: {line}");
        }
    }
    match status {
        Some(status) if status.success() => {}
        Some(status) => say!(
            "declare-batch: the --on-finish command failed ({status}); the run's exit code \
             stands"
        ),
        None => say!(
            "declare-batch: the --on-finish command took more than {} s and was killed; the \
             run's exit code stands",
            TIME_LIMIT.as_secs()
        ),
    }
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: killpg only sends a signal to the group the child leads.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The first `OUTPUT_LIMIT` bytes of a stream as text; the rest is read
/// and dropped, so that the command never blocks on a full pipe.
fn bounded_text(pipe: Box<dyn Read + Send>) -> String {
    let mut kept = Vec::new();
    let mut pipe = pipe;
    let _ = (&mut pipe).take(OUTPUT_LIMIT).read_to_end(&mut kept);
    let _ = std::io::copy(&mut pipe, &mut std::io::sink());
    String::from_utf8_lossy(&kept).into_owned()
}
