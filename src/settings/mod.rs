//! Settings resolved once: the config file (or its absence), the
//! environment's secrets and the command line's overrides become the typed
//! settings every command and the page use — where requests go
//! ([`Endpoint`]), who signs them, how fast they go, where the ledger is,
//! how the input is read and which language messages speak. Nothing below
//! `cmd/` and `serve/` reads the raw config; a rule about settings lives
//! here, once (ripgrep's low-level → high-level arguments).

mod api;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use api::{ApiKeys, PrivateKeySource};

use crate::client::{ApiSettings, ClientError, ResponseVerification};
use crate::config::{Config, ConfigError};
use crate::declare::RunSettings;
use crate::fields::{Field, FieldSettings};
use crate::i18n::Language;
use crate::input::{EncodingChoice, HeaderSearch, InputOptions};
use crate::protocol::{EMBEDDED_CLIENT_ID, EMBEDDED_ENDPOINT, Endpoint, EndpointError};
use crate::validate::AmountUnit;

/// Unknown answers in a row (traffic limits aside) that stop a run.
const BREAKER_THRESHOLD: u32 = 20;

/// What the command line sets over the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--sheet`, over `[input] sheet`.
    pub sheet: Option<String>,
    /// `--header-row`, over `[input] header_row`.
    pub header_row: Option<u64>,
    /// `--rate`, over `[run] rate_per_sec`.
    pub rate: Option<u32>,
    /// `--concurrency`, over `[run] concurrency`.
    pub concurrency: Option<NonZeroUsize>,
    /// `--ledger`, over `[ledger] path` (and over the ledger a run recorded).
    pub ledger: Option<PathBuf>,
    /// `--outage-wait`, over `[run] outage_wait_secs`.
    pub outage_wait: Option<Duration>,
    /// The page's language, over `[output] language`.
    pub language: Option<Language>,
}

impl Overrides {
    /// Only `--ledger` (or nothing), as the commands that read a ledger give.
    pub fn with_ledger(ledger: Option<PathBuf>) -> Overrides {
        Overrides {
            ledger,
            ..Overrides::default()
        }
    }
}

/// How inquiries are paced and retried.
#[derive(Debug, Clone)]
pub struct InquirySettings {
    /// Calls started per second; 0 = no limit.
    pub rate_per_sec: u32,
    pub max_attempts: u32,
    pub backoff_base: Duration,
}

/// How the input is read and checked, and what of it makes a run's
/// identity.
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// The XLSX sheet; empty: the first.
    pub sheet: String,
    pub encoding: EncodingChoice,
    pub amount_unit: AmountUnit,
    /// `[columns]` and `[defaults]` by field.
    pub fields: FieldSettings,
    /// The allowed customs codes, upper-cased like the input's.
    pub customs_codes: Vec<String>,
    /// `[input] header_row`; 0: found.
    pub header_row: u64,
    /// `[columns]` and `[defaults]` as written, for a run's identity.
    pub columns_as_written: BTreeMap<String, String>,
    pub defaults_as_written: BTreeMap<String, String>,
    /// Cells corrected on the page, read in place of the file's.
    pub edits: Option<std::sync::Arc<crate::input::CellEdits>>,
}

impl InputSettings {
    /// What makes a row of the input its header row: the headers of every
    /// required field without a default, or `[input] header_row`.
    pub fn header_search(&self) -> HeaderSearch {
        let required = Field::ALL
            .iter()
            .filter(|field| {
                field.always_required() && self.fields.defaults[field.index()].is_none()
            })
            .map(|&field| self.fields.header_for(field).to_owned())
            .collect();
        HeaderSearch {
            required,
            fixed_row: (self.header_row > 0).then_some(self.header_row),
        }
    }

    /// How to open the input.
    pub fn open_options(&self) -> InputOptions {
        InputOptions {
            encoding: self.encoding,
            sheet: self.sheet.clone(),
            header: self.header_search(),
            edits: self.edits.clone(),
        }
    }
}

/// Where the ledger is, by the one rule every command and the page follow:
/// `--ledger`, else `[ledger] path`, else beside the config file; a run of
/// the embedded sandbox keeps it inside its out folder (its declarations
/// are gone with that sandbox).
#[derive(Debug, Clone)]
pub struct LedgerPlace {
    flag: Option<PathBuf>,
    configured: Option<PathBuf>,
    config_folder: Option<PathBuf>,
}

impl LedgerPlace {
    /// The ledger a run into `out` declaring to `endpoint` records in.
    pub fn for_run(&self, endpoint: &Endpoint, out: &Path) -> PathBuf {
        if let Some(path) = self.flag.as_ref().or(self.configured.as_ref()) {
            return path.clone();
        }
        match (endpoint, &self.config_folder) {
            (Endpoint::Remote(_), Some(folder)) => folder.join(crate::ledger::DEFAULT_FILE),
            _ => out.join(crate::ledger::DEFAULT_FILE),
        }
    }

    /// The ledger of a finished run, which recorded where it was: `--ledger`
    /// wins, then the run's record.
    pub fn for_recorded_run(&self, recorded: Option<&Path>) -> PathBuf {
        match (&self.flag, recorded) {
            (Some(flag), _) => flag.clone(),
            (None, Some(recorded)) => recorded.to_owned(),
            (None, None) => self.standing(),
        }
    }

    /// The ledger of this config's runs, for reading it outside a run.
    pub fn standing(&self) -> PathBuf {
        self.flag
            .clone()
            .or_else(|| self.configured.clone())
            .unwrap_or_else(|| {
                self.config_folder
                    .as_deref()
                    .unwrap_or(Path::new("."))
                    .join(crate::ledger::DEFAULT_FILE)
            })
    }
}

/// Everything a command or the page needs, resolved from one config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file, if one was given (named in messages).
    pub config_path: Option<PathBuf>,
    endpoint: Result<Endpoint, EndpointError>,
    pub api: ApiKeys,
    pub run: RunSettings,
    /// A changed row under an already declared ID is sent as a
    /// retransmission only this long after the last call for that ID.
    pub retransmit_wait: Duration,
    pub inquiry: InquirySettings,
    pub ledger: LedgerPlace,
    pub input: InputSettings,
    /// The language of row messages, reports and the end-of-run table.
    pub language: Language,
    /// `[sandbox] payments`: the payments the embedded sandbox knows.
    pub sandbox_payments: Option<PathBuf>,
    /// Where the embedded sandbox remembers what it accepted across runs
    /// (the page's sandbox profiles); `None`: each run's sandbox is new.
    pub sandbox_memory: Option<PathBuf>,
    /// `[output] metrics`: where a run writes its figures for Prometheus.
    pub metrics: Option<PathBuf>,
    /// `[ledger] keep_raw_answers_days`: raw answers older than this are
    /// dropped from the ledger.
    pub keep_raw_answers: Duration,
}

impl Settings {
    /// The settings of a config file (`DECLARE_CLIENT_ID` and
    /// `DECLARE_PRIVATE_KEY` win over it), or the defaults without one.
    pub fn load(config_path: Option<&Path>, overrides: Overrides) -> Result<Settings, ConfigError> {
        let config = match config_path {
            Some(path) => Config::load(path)?,
            None => Config::without_file(),
        };
        Ok(Settings::resolve(config, config_path, overrides))
    }

    /// The settings of a profile of the page: `DECLARE_*` variables are
    /// ignored, each profile brings its own secrets.
    pub fn load_profile(path: &Path, overrides: Overrides) -> Result<Settings, ConfigError> {
        Ok(Settings::resolve(
            Config::load_profile(path)?,
            Some(path),
            overrides,
        ))
    }

    /// Resolves a loaded config (checked as it was parsed) under the
    /// command line's overrides. Without a config file, and with
    /// `endpoint = "sandbox"`, requests go to the embedded sandbox; a
    /// config file without an endpoint declares nowhere.
    pub fn resolve(config: Config, config_path: Option<&Path>, overrides: Overrides) -> Settings {
        let endpoint = match (config_path, config.api.endpoint.as_deref()) {
            (None, _) | (Some(_), Some("sandbox")) => Ok(Endpoint::EmbeddedSandbox),
            (Some(_), None) => Err(EndpointError::NotSet),
            (Some(_), Some(url)) => crate::protocol::parse_endpoint(url).map(Endpoint::Remote),
        };
        let max_attempts = config.run.max_attempts.max(1);
        let backoff_base = Duration::from_millis(config.run.backoff_base_ms);
        let rate_per_sec = overrides.rate.unwrap_or(config.run.rate_per_sec);
        let fields = config
            .field_settings(config_path.unwrap_or(Path::new("(no config)")))
            // Checked when the file was parsed.
            .unwrap_or_default();
        Settings {
            config_path: config_path.map(Path::to_owned),
            endpoint,
            api: ApiKeys::from_config(&config.api),
            run: RunSettings {
                rate_per_sec,
                burst: config.run.burst,
                concurrency: overrides
                    .concurrency
                    .map_or(config.run.concurrency, usize::from)
                    .max(1),
                max_attempts,
                backoff_base,
                breaker_threshold: BREAKER_THRESHOLD,
                outage_wait: overrides
                    .outage_wait
                    .unwrap_or(Duration::from_secs(config.run.outage_wait_secs)),
            },
            retransmit_wait: Duration::from_secs(config.run.retransmit_wait_secs),
            inquiry: InquirySettings {
                rate_per_sec,
                max_attempts,
                backoff_base,
            },
            ledger: LedgerPlace {
                flag: overrides.ledger,
                configured: config.ledger.path.clone(),
                config_folder: config_path
                    .map(|path| path.parent().unwrap_or(Path::new(".")).to_owned()),
            },
            input: InputSettings {
                sheet: overrides.sheet.unwrap_or(config.input.sheet.clone()),
                encoding: config.input.encoding,
                amount_unit: config.input.amount_unit,
                customs_codes: config.customs_codes(),
                header_row: overrides.header_row.unwrap_or(config.input.header_row),
                fields,
                columns_as_written: config.columns,
                defaults_as_written: config.defaults,
                edits: None,
            },
            language: overrides.language.unwrap_or(config.output.language),
            sandbox_payments: config.sandbox.payments,
            sandbox_memory: None,
            metrics: config.output.metrics.clone(),
            keep_raw_answers: Duration::from_secs(
                86_400 * u64::from(config.ledger.keep_raw_answers_days.unwrap_or(90)),
            ),
        }
    }

    /// Where requests go, or why the config names nowhere.
    pub fn endpoint(&self) -> Result<&Endpoint, EndpointError> {
        self.endpoint.as_ref().map_err(Clone::clone)
    }

    /// The endpoint and client ID as the ledger, `run.json` and the
    /// summaries name them: the scope of the ledger's declarations.
    pub fn scope(&self) -> Result<(String, String), ClientError> {
        Ok(match self.endpoint()? {
            Endpoint::EmbeddedSandbox => {
                (EMBEDDED_ENDPOINT.to_owned(), EMBEDDED_CLIENT_ID.to_owned())
            }
            Endpoint::Remote(url) => (url.to_string(), self.api.client_id()?.to_owned()),
        })
    }

    /// The client settings of the remote endpoint, keys loaded.
    pub fn remote_api(&self) -> Result<ApiSettings, ClientError> {
        match self.endpoint()? {
            Endpoint::Remote(url) => self.api.client_settings(url.clone(), self.api.client_id()?),
            Endpoint::EmbeddedSandbox => Err(ClientError::Endpoint(EndpointError::NotAUrl {
                endpoint: "sandbox".to_owned(),
                message: "the embedded sandbox makes its own keys".to_owned(),
            })),
        }
    }

    /// How answers from the remote endpoint are checked (the embedded
    /// sandbox's always are), with the warning to log when they are not.
    pub fn response_verification(&self) -> Result<ResponseVerification, ClientError> {
        match self.endpoint()? {
            Endpoint::EmbeddedSandbox => Ok(ResponseVerification::Verified),
            Endpoint::Remote(url) => self.api.verification(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str, path: Option<&str>) -> Settings {
        let config = Config::parse(text, Path::new("t.toml")).unwrap();
        Settings::resolve(config, path.map(Path::new), Overrides::default())
    }

    #[test]
    fn the_sandbox_is_decided_once() {
        assert_eq!(
            settings("", None).endpoint(),
            Ok(&Endpoint::EmbeddedSandbox)
        );
        let with_file = "[api]\nendpoint = \"sandbox\"\n";
        assert_eq!(
            settings(with_file, Some("c.toml")).endpoint(),
            Ok(&Endpoint::EmbeddedSandbox)
        );
        // A config file without an endpoint declares nowhere: not the sandbox.
        assert_eq!(
            settings("", Some("c.toml")).endpoint(),
            Err(EndpointError::NotSet)
        );
        let remote = settings(
            "[api]\nendpoint = \"https://example.com\"\nclient_id = \"C\"\n",
            Some("c.toml"),
        );
        assert!(matches!(remote.endpoint(), Ok(Endpoint::Remote(_))));
        assert_eq!(
            remote.scope().unwrap(),
            ("https://example.com/".to_owned(), "C".to_owned())
        );
    }

    #[test]
    fn overrides_win_over_the_file() {
        let config = Config::parse(
            "[run]\nrate_per_sec = 5\nconcurrency = 2\n[input]\nsheet = \"A\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let settings = Settings::resolve(
            config,
            Some(Path::new("dir/c.toml")),
            Overrides {
                sheet: Some("B".into()),
                header_row: Some(2),
                rate: Some(0),
                concurrency: NonZeroUsize::new(3),
                ledger: None,
                outage_wait: Some(Duration::from_secs(7)),
                language: Some(Language::ZhCn),
            },
        );
        assert_eq!(settings.run.outage_wait, Duration::from_secs(7));
        assert_eq!(settings.input.sheet, "B");
        assert_eq!(settings.input.header_row, 2);
        assert_eq!(settings.run.rate_per_sec, 0);
        assert_eq!(settings.inquiry.rate_per_sec, 0);
        assert_eq!(settings.run.concurrency, 3);
        assert_eq!(settings.language, Language::ZhCn);
        assert_eq!(
            settings.ledger.standing(),
            Path::new("dir").join(crate::ledger::DEFAULT_FILE)
        );
    }

    #[test]
    fn the_ledger_place_follows_one_rule() {
        let remote = settings(
            "[api]\nendpoint = \"https://example.com\"\n",
            Some("dir/c.toml"),
        );
        let out = Path::new("out");
        let beside = Path::new("dir").join(crate::ledger::DEFAULT_FILE);
        assert_eq!(
            remote.ledger.for_run(remote.endpoint().unwrap(), out),
            beside
        );
        assert_eq!(
            remote.ledger.for_run(&Endpoint::EmbeddedSandbox, out),
            out.join(crate::ledger::DEFAULT_FILE)
        );
        assert_eq!(
            remote.ledger.for_recorded_run(Some(Path::new("kept.db"))),
            Path::new("kept.db")
        );
        let configured = settings("[ledger]\npath = \"/l.db\"\n", Some("dir/c.toml"));
        assert_eq!(
            configured.ledger.for_run(&Endpoint::EmbeddedSandbox, out),
            Path::new("/l.db")
        );
    }
}
