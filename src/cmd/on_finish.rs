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
/// How long its output is waited for once it has ended (a process it left
/// behind may hold the pipes open).
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

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
    // Each stream read on a thread of its own, line by line over a
    // channel, so that its lines join the log as they come and a process
    // the command left behind holding a pipe never holds the run.
    let (lines, read) = std::sync::mpsc::channel::<Option<String>>();
    let mut streams = 0;
    for pipe in [
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
    {
        let lines = lines.clone();
        streams += 1;
        std::thread::spawn(move || send_lines(pipe, &lines));
    }
    drop(lines);
    let say_line = |line: Option<String>, open: &mut usize| match line {
        Some(line) => say!("declare-batch: on-finish: {line}"),
        None => *open -= 1,
    };
    let mut open = streams;
    let started = Instant::now();
    let status = loop {
        while let Ok(line) = read.try_recv() {
            say_line(line, &mut open);
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < TIME_LIMIT => {
                if let Ok(line) = read.recv_timeout(Duration::from_millis(20)) {
                    say_line(line, &mut open);
                }
            }
            Ok(None) | Err(_) => {
                kill_group(&mut child);
                break None;
            }
        }
    };
    // Its last lines, for a few seconds more at most once it has ended.
    let output_deadline = Instant::now() + OUTPUT_GRACE;
    while open > 0 {
        let left = output_deadline.saturating_duration_since(Instant::now());
        match read.recv_timeout(left) {
            Ok(line) => say_line(line, &mut open),
            Err(_) => {
                say!(
                    "declare-batch: the --on-finish command left a process holding its \
                     output; not waiting for it"
                );
                break;
            }
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

/// Sends the stream's lines, then `None` at its end; past `OUTPUT_LIMIT`
/// bytes the rest is read and dropped, so that the command never blocks on
/// a full pipe.
fn send_lines(pipe: Box<dyn Read + Send>, lines: &std::sync::mpsc::Sender<Option<String>>) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(pipe);
    let mut kept = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        // One line at most the limit: a line without an end is cut.
        match (&mut reader)
            .take(OUTPUT_LIMIT + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                kept += read as u64;
                if kept <= OUTPUT_LIMIT {
                    let text = String::from_utf8_lossy(&line);
                    let _ = lines.send(Some(text.trim_end_matches(['\n', '\r']).to_owned()));
                }
            }
        }
    }
    let _ = lines.send(None);
}
