//! What an operations engineer meets first: key material never printed,
//! Ctrl-C that sends nothing more, files with personal data kept private,
//! log lines fit for a file or cron mail, `--quiet` that still says what to
//! do, usage errors, and error texts that say the fix.

use crate::common::{DEADLINE, config_for, listed_rows, orders, signal, spawn_run};
use crate::common::{SandboxProcess, Workdir, finish_with_deadline, wait_for_journal};

/// Every 16-character piece of a key's Base64 lines.
fn key_pieces(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| {
            let chars: Vec<char> = line.chars().collect();
            chars
                .chunks(16)
                .filter(|chunk| chunk.len() == 16)
                .map(|chunk| chunk.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Everything a run left: its stdout, stderr and every file in `out`.
fn everything_written(work: &Workdir, run: &crate::common::Run, out: &str) -> String {
    let mut all = format!("{}\n{}\n", run.stdout, run.stderr);
    if let Ok(entries) = std::fs::read_dir(work.path(out)) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
            }
        }
    }
    all
}

#[test]
fn no_output_or_message_ever_holds_key_material() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let key = std::fs::read_to_string(sandbox.keys.join("client_private.pem")).unwrap();
    let pieces = key_pieces(&key);
    assert!(pieces.len() > 50);
    let lines: Vec<&str> = key.lines().collect();
    let damaged = key.replacen(&lines[5][..10], "AAAAAAAAAA", 1);
    let truncated = lines[..lines.len() / 2].join("\n");
    let bare: String = lines
        .iter()
        .filter(|l| !l.starts_with("-----"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let config = config_for(&work, &sandbox, &[]);
    let cases = [
        ("whole", key.as_str(), 0),
        ("bare", bare.as_str(), 0),
        ("damaged", damaged.as_str(), 1),
        ("truncated", truncated.as_str(), 1),
    ];
    for (name, text, code) in cases {
        let out = format!("out-env-{name}");
        // The environment's key text wins over the file's path.
        let run = work.run_with_env(
            &[("DECLARE_PRIVATE_KEY", text)],
            &["run", &orders, "--config", &config, "--out", &out],
        );
        assert_eq!(run.code, code, "{name}: {}", run.stderr);
        if code == 1 {
            assert!(
                run.stderr.contains("DECLARE_PRIVATE_KEY"),
                "{name}: {}",
                run.stderr
            );
        }
        let written = everything_written(&work, &run, &out);
        for piece in &pieces {
            assert!(
                !written.contains(piece.as_str()),
                "{name}: key text {piece} in the output"
            );
        }
        // The same key in a file named by the config.
        let file = work.write(&format!("keys-{name}.pem"), text);
        let config = config_for(
            &work,
            &sandbox,
            &[("private_key", &format!("\"{}\"", file.display()))],
        );
        let out = format!("out-file-{name}");
        let run = work.run(&["run", &orders, "--config", &config, "--out", &out]);
        assert_eq!(run.code, code, "{name}: {}", run.stderr);
        let written = everything_written(&work, &run, &out);
        for piece in &pieces {
            assert!(
                !written.contains(piece.as_str()),
                "{name}: key text {piece} in the output"
            );
        }
    }
    // A path in the variable: named by the variable, not its value.
    let run = work.run_with_env(
        &[("DECLARE_PRIVATE_KEY", "/no/such/secret-key-path.pem")],
        &["run", &orders, "--config", &config, "--out", "out-path"],
    );
    run.expect_fatal(&["DECLARE_PRIVATE_KEY", "taken as a path"]);
    assert!(!run.stderr.contains("secret-key-path"), "{}", run.stderr);
}

#[test]
fn ctrl_c_sends_nothing_more() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 20);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // At 2 a second, the rows after the first wait for a rate token.
    let mut child = spawn_run(&work, &[&orders, "--config", &config, "--rate", "2"]);
    wait_for_journal(&mut child, &work, "\"t\":\"final\"");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sent_before = runtime.block_on(sandbox.stats()).requests;
    signal(&child, "-INT");
    let (status, stderr) = finish_with_deadline(child, DEADLINE);
    assert_eq!(status.code(), Some(4), "{stderr}");
    let sent = runtime.block_on(sandbox.stats()).requests;
    assert!(
        sent <= sent_before + 1,
        "{sent} requests, {sent_before} before the interrupt: rows waiting for a token went out"
    );
    let summary = work.summary();
    assert_eq!(
        summary["codes"]["NOT_SENT"].as_u64().unwrap() + sent,
        20,
        "{summary}"
    );
    assert_eq!(listed_rows(&work, "out/results.csv").len(), 20);
}

#[cfg(unix)]
#[test]
fn outputs_with_personal_data_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let work = Workdir::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = root.join("samples/orders.csv");
    let run = work.run(&["run", input.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    for name in ["rejected.csv", "retry.csv", "journal.jsonl"] {
        let mode = std::fs::metadata(work.path(&format!("out/{name}")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name}: {mode:o}");
    }
    let run = work.run(&["validate", input.to_str().unwrap(), "--out", "checked"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let mode = std::fs::metadata(work.path("checked/rejected.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn without_a_terminal_log_lines_are_plain_and_timestamped() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    // A loopback endpoint without a key: one warning line.
    let config = config_for(&work, &sandbox, &[("alipay_public_key", "")]);
    let run = work.run(&["run", &orders, "--config", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{1b}'),
        "colour escapes: {:?}",
        run.stderr
    );
    assert!(!run.stderr.is_empty());
    assert_stamped(&run.stderr);
    // The table on stdout too, line by line.
    assert!(!run.stdout.is_empty());
    assert_stamped(&run.stdout);
    // The run starts with a line that says so and ends with one line to grep.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].contains("declare-batch: started input="),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("client_id=SANDBOX_CLIENT"),
        "{}",
        lines[0]
    );
    let last = lines.last().unwrap();
    assert!(
        last.contains(
            "declare-batch: finished exit=0 S=3 F=0 U=0 rejected=0 from_ledger=0 \
                       retransmitted=0 waiting=0 out=out"
        ),
        "{last}"
    );
}

#[test]
fn quiet_still_says_what_to_do_when_rows_are_left() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 40);
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &["--payments", &payments, "--fail-http-500", "1"],
    );
    let config = config_for(&work, &sandbox, &[]);
    let run = work.run(&["run", &orders, "--config", &config, "--quiet"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    // The start line, what to do, and the closing line: nothing else.
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].contains("declare-batch: started input=") && lines[0].contains("out=out"),
        "{}",
        lines[0]
    );
    let advice = lines[1..lines.len() - 1].join("\n");
    assert_eq!(lines.len(), 5, "resume, feed back, inquire: {}", run.stderr);
    for needle in [
        "40 rows are not settled",
        "HTTP_500",
        "run the same command again",
        "--quiet",
        "retry.csv",
        "--resolve-unknown",
    ] {
        assert!(advice.contains(needle), "no {needle:?} in {advice}");
    }
    let last = lines.last().unwrap();
    assert!(
        last.contains("declare-batch: finished exit=4 S=0 F=0 U=40 rejected=0"),
        "{last}"
    );
    // Exit 3 with --quiet: just the start line and the closing line.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = work.run(&[
        "run",
        root.join("samples/orders.csv").to_str().unwrap(),
        "--quiet",
        "--out",
        "samples",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(lines[0].contains("started"), "{}", lines[0]);
    assert!(
        lines[1].contains("finished exit=3 S=17 F=3 U=0 rejected=5")
            && lines[1].ends_with("out=samples"),
        "{}",
        lines[1]
    );
}

#[test]
fn usage_errors_help_and_error_texts() {
    let work = Workdir::new();
    let (orders, _) = orders(&work, 1);
    for bad in [["--concurrency", "0"], ["--rate", "-1"]] {
        let run = work.run(&["run", &orders, bad[0], bad[1]]);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }
    let run = work.run(&["run", "--help"]);
    assert_eq!(run.code, 0);
    for needle in ["Exit codes:", "4  finished", "else 20", "else 8"] {
        assert!(run.stdout.contains(needle), "no {needle:?} in --help");
    }
    // The OS error once, not twice.
    let run = work.run(&["validate", &orders, "--config", "missing.toml"]);
    run.expect_fatal(&["missing.toml"]);
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        run.stderr
    );
    // A config saved in another encoding.
    let config = work.write(
        "gbk.toml",
        b"[columns]\n\"paymentRequestId\" = \"\xd6\xa7\xb8\xb6\"\n",
    );
    let run = work.run(&["validate", &orders, "--config", config.to_str().unwrap()]);
    run.expect_fatal(&["gbk.toml", "save it as UTF-8"]);
    // run with a config that only maps columns.
    let config = work.write(
        "columns.toml",
        "[columns]\n\"paymentRequestId\" = \"paymentRequestId\"\n",
    );
    let run = work.run(&["run", &orders, "--config", config.to_str().unwrap()]);
    run.expect_fatal(&["endpoint is not set", "\"sandbox\""]);
}

/// A cron job with `ulimit -f`: the limit is a write failure like a full
/// disk (exit 1 naming the file), not a kill by SIGXFSZ (exit 153, an
/// empty log).
#[test]
fn a_file_size_limit_is_a_write_failure_naming_the_file() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3000);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[]);
    // 200 KiB: far less than the journal and results of 3,000 rows.
    let run = work.run_with_file_limit(200, &["run", &orders, "--config", &config]);
    assert_eq!(
        run.code, 1,
        "killed by a signal, or not stopped: {}",
        run.stderr
    );
    assert!(run.stderr.contains("cannot write"), "{}", run.stderr);
    // Named: the ledger (SQLite says "Error writing to disk") or an output.
    assert!(
        ["File too large", "Error writing to disk", "disk is full"]
            .iter()
            .any(|cause| run.stderr.contains(cause)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("declare-batch.db") || run.stderr.contains("out/"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Every line of `text` starts with an RFC 3339 time.
fn assert_stamped(text: &str) {
    for line in text.lines() {
        let stamp = line.split_whitespace().next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "no timestamp: {line:?}"
        );
    }
}

/// A command line as the binary printed it, run by a shell in the work
/// folder: its exit status and stderr.
fn run_as_printed(work: &Workdir, command: &str) -> (std::process::ExitStatus, String) {
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(work.path(""))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    finish_with_deadline(child, DEADLINE)
}

/// The commands an unfinished run prints, run exactly as printed: the
/// re-feed goes where the run went (not to the embedded sandbox), with its
/// ledger and its header row, until every row is settled.
#[test]
fn every_printed_command_runs_as_printed() {
    let work = Workdir::new();
    let (_, payments) = orders(&work, 60);
    // A title line above the header: `header_row = 2`.
    let export = std::fs::read_to_string(work.path("orders.csv")).unwrap();
    work.write("night.csv", format!("Orders of the night\n{export}"));
    let sandbox = SandboxProcess::start(
        work.path("keys"),
        &[
            "--payments",
            &payments,
            "--seed",
            "7",
            "--fail-u-before",
            "0.3",
        ],
    );
    let config = config_for(&work, &sandbox, &[("max_attempts", "1")]);
    let config_text = std::fs::read_to_string(&config).unwrap();
    work.write(
        "prod.toml",
        format!("{config_text}[input]\nheader_row = 2\n"),
    );
    let run = work.run(&[
        "run",
        "night.csv",
        "--config",
        "prod.toml",
        "--ledger",
        "nights.db",
        "--out",
        "night",
    ]);
    assert_eq!(run.code, 4, "some answers are U: {}", run.stderr);
    let printed = |stderr: &str, after: &str| -> String {
        let line = stderr
            .lines()
            .find(|line| line.contains(after))
            .unwrap_or_else(|| panic!("no {after:?} in {stderr}"));
        line.split_once(after).unwrap().1.trim().to_owned()
    };
    let resolve = printed(&run.stderr, "(inquireDeclarationRequests): ");
    assert!(resolve.ends_with("--resolve-unknown"), "{resolve}");
    let mut refeed = printed(&run.stderr, "into a folder of their own: ");
    for needed in ["--config prod.toml", "--ledger nights.db", "--header-row 0"] {
        assert!(refeed.contains(needed), "no {needed:?} in {refeed}");
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 10, "retry.csv does not converge");
        let (status, stderr) = run_as_printed(&work, &refeed);
        let code = status.code().unwrap_or(-1);
        assert!(code == 0 || code == 4, "{refeed}: {stderr}");
        let out = refeed
            .split(" --out ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let summary = work.summary_of(out);
        assert_eq!(summary["endpoint"], format!("{}/", sandbox.endpoint));
        assert!(
            summary["ledger"].as_str().unwrap().ends_with("nights.db"),
            "{summary}"
        );
        if code == 0 {
            break;
        }
        refeed = printed(&stderr, "into a folder of their own: ");
    }
    // The resolve command, as printed, resumes the night's folder and asks
    // Alipay+ about what stays unknown.
    let (status, stderr) = run_as_printed(&work, &resolve);
    assert!(matches!(status.code(), Some(0 | 4)), "{resolve}: {stderr}");
    let night = work.summary_of("night");
    assert_eq!(
        night["ledger"].as_str().map(|l| l.ends_with("nights.db")),
        Some(true)
    );
    if night["results"]["U"].as_u64().unwrap() > 0 {
        assert!(night.get("inquiry").is_some(), "{night}");
    }
    // The resume command, as printed, finds the night's folder its own.
    let resume = printed(&run.stderr, "run the same command again: ");
    let (status, stderr) = run_as_printed(&work, &resume);
    assert!(matches!(status.code(), Some(0 | 4)), "{resume}: {stderr}");
    let stats = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sandbox.stats());
    assert_eq!(stats.request_ids_with_distinct_bodies, 0, "one body per ID");
    assert!(!stats.by_code.contains_key("REPEAT_REQ_INCONSISTENT"));
    assert!(!stats.by_code.contains_key("DUPLICATED_DECLARATION"));
}

/// `--log FILE` appends every line of stdout and stderr to the file, each
/// with its time, run after run.
#[test]
fn log_appends_every_line_with_its_time() {
    let work = Workdir::new();
    let (orders, payments) = orders(&work, 3);
    let sandbox = SandboxProcess::start(work.path("keys"), &["--payments", &payments]);
    let config = config_for(&work, &sandbox, &[("alipay_public_key", "")]);
    let run = work.run(&["run", &orders, "--config", &config, "--log", "night.log"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = std::fs::read_to_string(work.path("night.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_stamped(&log);
    let said: Vec<&str> = run.stderr.lines().chain(run.stdout.lines()).collect();
    assert_eq!(
        lines.len(),
        said.len(),
        "log:\n{log}\nsaid:\n{}",
        said.join("\n")
    );
    assert!(log.contains("declare-batch: started input="), "{log}");
    assert!(log.contains("not verified"), "the warning too: {log}");
    assert!(log.contains("declared to "), "the table too: {log}");
    assert!(log.contains("declare-batch: finished exit=0"), "{log}");
    // The next night appends.
    let run = work.run(&[
        "run",
        &orders,
        "--config",
        &config,
        "--out",
        "out-2",
        "--log",
        "night.log",
        "--quiet",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = std::fs::read_to_string(work.path("night.log")).unwrap();
    assert!(again.starts_with(&log), "appended, not replaced");
    assert_eq!(again.matches("declare-batch: finished exit=0").count(), 2);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(work.path("night.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
