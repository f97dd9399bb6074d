//! What every integration test uses: a fresh folder per test and a way to
//! run the real `declare-batch` binary in it.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one run of the binary may take before the test fails (a
/// wait for a point within a run has `DEADLINE`).
pub const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// Every child a test starts is free of the developer's DECLARE_* settings.
pub trait WithoutDeclareEnv {
    fn without_declare_env(&mut self) -> &mut Self;
}

impl WithoutDeclareEnv for Command {
    fn without_declare_env(&mut self) -> &mut Self {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DECLARE_") {
                self.env_remove(&name);
            }
        }
        self
    }
}

/// Waits until `ready()` holds, failing the test if `child` exits first or
/// `deadline` passes (the child is then killed).
pub fn wait_until(
    child: &mut Child,
    deadline: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) {
    let started = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().expect("poll the child") {
            panic!("the child exited ({status}) before {what}");
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not happen within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child's exit status and what it wrote to a piped stderr, failing
/// the test (and killing the child) after `deadline`.
pub fn finish_with_deadline(mut child: Child, deadline: Duration) -> (ExitStatus, String) {
    use std::io::Read;
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let status = wait_with_deadline(&mut child, deadline);
    let stderr = stderr
        .map(|reader| reader.join().expect("the reader does not panic"))
        .unwrap_or_default();
    (status, stderr)
}

pub const BOM: &str = "\u{feff}";

/// A fresh folder to run the binary in.
pub struct Workdir {
    dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code 1 with a message on stderr naming each of `needles`.
    pub fn expect_fatal(&self, needles: &[&str]) {
        assert_eq!(self.code, 1, "{}", self.stderr);
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "no {needle:?} in: {}",
                self.stderr
            );
        }
    }
}

impl Workdir {
    /// `declare-batch validate ARGS` checked in this process, without
    /// starting the binary: the arguments parsed by the command's own
    /// parser, paths taken relative to this folder, then the same settings
    /// and library call the command makes. Stdout stays empty (the table is
    /// the binary's); a fatal error is stderr's `error:` line and exit 1.
    pub fn validate_in_process(&self, args: &[&str]) -> Run {
        use clap::Parser;
        use declare_batch::cmd::{Cli, Command};
        use declare_batch::settings::Overrides;
        let cli = Cli::try_parse_from(std::iter::once("declare-batch").chain(args.iter().copied()))
            .expect("arguments of validate");
        let Command::Validate(opts) = cli.command else {
            panic!("only validate is checked in this process")
        };
        let mut input = opts.input;
        input.input = self.dir.path().join(&input.input);
        input.config = input.config.map(|config| self.dir.path().join(config));
        input.out = self.dir.path().join(&input.out);
        let validated = input.settings(Overrides::default()).and_then(|settings| {
            declare_batch::run::validate::validate_input(&input.input, &settings, &input.out)
        });
        match validated {
            Ok(summary) => Run {
                code: i32::from(summary.exit_code),
                stdout: String::new(),
                stderr: String::new(),
            },
            Err(error) => Run {
                code: 1,
                stdout: String::new(),
                stderr: format!("error: {error:#}"),
            },
        }
    }

    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("temporary folder"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a fixture, making its folder.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("make the fixture's folder");
        }
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(&[], args)
    }

    /// Runs the binary with every file it writes capped at `kib` KiB
    /// (RLIMIT_FSIZE), as a cron job with `ulimit -f` does: SIGXFSZ keeps
    /// its default action, and the binary itself makes a write past the
    /// cap fail with EFBIG, as on a full disk.
    pub fn run_with_file_limit(&self, kib: u32, args: &[&str]) -> Run {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(format!("ulimit -f {kib} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_declare-batch"))
            .args(args);
        self.finish(command)
    }

    /// Runs the binary with `env` set (and no other DECLARE_* variable).
    pub fn run_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_declare-batch"));
        command.args(args).envs(env.iter().copied());
        self.finish(command)
    }

    /// Runs the binary to its end and returns its peak resident memory in
    /// bytes, as it logs it at the end (its own `VmHWM`: the kernel's
    /// `wait4` figure would also count the test process's memory, which the
    /// child shares until it starts the binary).
    pub fn run_measuring_memory(&self, args: &[&str]) -> (Run, u64) {
        let run = self.run_with_env(&[("DECLARE_LOG", "declare_batch::memory=info")], args);
        let kib: u64 = run
            .stderr
            .lines()
            .find_map(|line| line.split("peak memory: ").nth(1))
            .and_then(|rest| rest.strip_suffix(" KiB"))
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no peak memory logged: {}", run.stderr));
        (run, kib * 1024)
    }

    /// Runs `command` in this folder to its end, within `RUN_DEADLINE`.
    fn finish(&self, mut command: Command) -> Run {
        use std::io::Read;
        let mut child = command
            .current_dir(self.dir.path())
            .without_declare_env()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start declare-batch");
        let mut stdout = child.stdout.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stdout.read_to_end(&mut text);
            text
        });
        let (status, stderr) = finish_with_deadline(child, RUN_DEADLINE);
        Run {
            code: status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&stdout.join().expect("reader")).into_owned(),
            stderr,
        }
    }

    /// A CSV output: must start with a BOM; returned without it.
    pub fn read_csv_output(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.path(name)).expect("output file");
        text.strip_prefix(BOM)
            .unwrap_or_else(|| panic!("{name} must start with a UTF-8 BOM"))
            .to_owned()
    }

    pub fn summary(&self) -> serde_json::Value {
        self.summary_of("out")
    }

    /// `summary.json` of the out folder `folder`.
    pub fn summary_of(&self, folder: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(&format!("{folder}/summary.json")))
            .expect("summary.json");
        assert!(!text.starts_with(BOM), "summary.json has no BOM");
        serde_json::from_str(&text).expect("summary.json is JSON")
    }
}

pub fn rows(summary: &serde_json::Value) -> (u64, u64, u64, u64) {
    let rows = &summary["rows"];
    let get = |key: &str| rows[key].as_u64().expect("count");
    (get("read"), get("valid"), get("rejected"), get("blank"))
}

/// `declare-batch sandbox` running as a child process on a loopback port,
/// killed when dropped.
pub struct SandboxProcess {
    child: std::process::Child,
    pub endpoint: String,
    pub keys: PathBuf,
}

impl SandboxProcess {
    /// Starts the sandbox with keys in `keys` (made if missing) and `args`.
    pub fn start(keys: PathBuf, args: &[&str]) -> SandboxProcess {
        SandboxProcess::start_at("127.0.0.1:0", keys, args)
    }

    /// Starts the sandbox on `addr` (to bring one back where it was).
    pub fn start_at(addr: &str, keys: PathBuf, args: &[&str]) -> SandboxProcess {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_declare-batch"))
            .without_declare_env()
            .arg("sandbox")
            .args(["--addr", addr, "--keys"])
            .arg(&keys)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let line = line_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the sandbox did not print its endpoint within 60 s")
            });
        let endpoint = line.trim().to_owned();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint:?}");
        SandboxProcess {
            child,
            endpoint,
            keys,
        }
    }

    /// Where it listens, `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.endpoint.trim_start_matches("http://")
    }

    /// The sandbox's own counts, from `GET /stats`.
    pub async fn stats(&self) -> declare_batch::sandbox::StatsReport {
        let url = format!("{}/stats", self.endpoint);
        declare_batch::protocol::use_aws_lc_for_tls();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        client.get(&url).send().await.unwrap().json().await.unwrap()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, killing it and failing the test after
/// `deadline`: no test can hang on a child.
pub fn wait_with_deadline(child: &mut Child, deadline: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `headers` as text cells across sheet row `row` (0-based).
pub fn write_header<'a>(
    sheet: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    headers: impl IntoIterator<Item = &'a str>,
) {
    for (column, header) in headers.into_iter().enumerate() {
        sheet.write_string(row, column as u16, header).unwrap();
    }
}

/// The rows of a CSV output as maps of header to value.
pub fn csv_records(work: &Workdir, name: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = work.read_csv_output(name);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// How long a test waits for a child to reach a point or to exit.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A config (`run.toml`) that points at a running sandbox, with `changes`
/// to its keys' values.
pub fn config_for(work: &Workdir, sandbox: &SandboxProcess, changes: &[(&str, &str)]) -> String {
    let keys = sandbox.keys.display();
    let mut entries = vec![
        ("[api]", String::new()),
        ("endpoint", format!("\"{}\"", sandbox.endpoint)),
        ("client_id", "\"SANDBOX_CLIENT\"".to_owned()),
        ("private_key", format!("\"{keys}/client_private.pem\"")),
        (
            "alipay_public_key",
            format!("\"{keys}/sandbox_public.pem\""),
        ),
        ("verify_responses", "true".to_owned()),
        ("timeout_ms", "1000".to_owned()),
        ("[run]", String::new()),
        ("rate_per_sec", "0".to_owned()),
        ("concurrency", "8".to_owned()),
        ("max_attempts", "3".to_owned()),
        ("backoff_base_ms", "10".to_owned()),
        ("retransmit_wait_secs", "300".to_owned()),
        // A failing endpoint stops a test's run at once; the tests of
        // riding out an outage set a wait.
        ("outage_wait_secs", "0".to_owned()),
    ];
    for (key, value) in changes {
        let entry = entries
            .iter_mut()
            .find(|(name, _)| name == key)
            .expect("a known key");
        entry.1 = (*value).to_owned();
    }
    // An empty value leaves the key out.
    let text: String = entries
        .iter()
        .filter(|(key, value)| key.starts_with('[') || !value.is_empty())
        .map(|(key, value)| match key.starts_with('[') {
            true => format!("{key}\n"),
            false => format!("{key} = {value}\n"),
        })
        .collect();
    work.write("run.toml", text).display().to_string()
}

/// An export of `count` declarable orders, with payments to match.
pub fn orders(work: &Workdir, count: usize) -> (String, String) {
    let mut orders = String::from(
        "paymentRequestId,customsDeclarationRequestId,customs.customsCode,\
         merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,\
         declarationAmount.value,isSplit,note\n",
    );
    let mut payments =
        String::from("paymentRequestId,amount,payerCertificateNo,payerName,status\n");
    for n in 0..count {
        orders.push_str(&format!("P{n},D{n},ZONGSHU,M1,Shop,100,false,kept {n}\n"));
        payments.push_str(&format!("P{n},100,,,OK\n"));
    }
    let orders_path = work.write("orders.csv", orders).display().to_string();
    let payments_path = work.write("payments.csv", payments).display().to_string();
    (orders_path, payments_path)
}

/// The rows listed in a CSV output (first column), after its header.
pub fn listed_rows(work: &Workdir, name: &str) -> Vec<u64> {
    let text = work.read_csv_output(name);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect()
}

/// Waits until the run's journal in `work`'s `out` holds `needle` (an
/// attempt, a final answer), failing the test if the run ends first or
/// [`DEADLINE`] passes.
pub fn wait_for_journal(child: &mut Child, work: &Workdir, needle: &str) {
    wait_until(
        child,
        DEADLINE,
        &format!("the journal to hold {needle}"),
        || {
            std::fs::read_to_string(work.path("out/journal.jsonl"))
                .unwrap_or_default()
                .contains(needle)
        },
    );
}

pub fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn spawn_run(work: &Workdir, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_declare-batch"))
        .arg("run")
        .args(args)
        .current_dir(work.path(""))
        .without_declare_env()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}
