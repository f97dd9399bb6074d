//! The TOML configuration file of the contract (`[api]`, `[run]`, `[input]`,
//! `[output]`, `[ledger]`, `[validate]`, `[columns]`, `[defaults]`, `[sandbox]`): parsing with every
//! key's default, rejection of unknown keys and unknown field names, paths
//! made relative to the file, and the environment overrides for secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fields::{Field, FieldSettings};
use crate::i18n::Language;
use crate::input::EncodingChoice;
use crate::protocol::SPEC_CUSTOMS_CODES;
use crate::validate::AmountUnit;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "config file {path} is not UTF-8 text (byte {offset} is not); save it as UTF-8 (in \
         Notepad: Save As, Encoding UTF-8)"
    )]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "config file {path}: [{section}] names unknown field \"{name}\"; the fields are: {known}"
    )]
    UnknownField {
        path: PathBuf,
        section: &'static str,
        name: String,
        known: String,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration, every key defaulted as the contract says.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub api: ApiConfig,
    pub run: RunConfig,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub ledger: LedgerConfig,
    pub validate: ValidateConfig,
    /// canonical field name → the header used in the input
    pub columns: BTreeMap<String, String>,
    /// canonical field name → value used when the column is missing or empty
    pub defaults: BTreeMap<String, String>,
    pub sandbox: SandboxConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub endpoint: Option<String>,
    pub client_id: Option<String>,
    pub private_key: Option<PathBuf>,
    /// `private_key` when the config gives the key's text (PEM or bare
    /// Base64) rather than a file's path; moved here when the file is read.
    #[serde(skip)]
    pub private_key_text: Option<KeyText>,
    /// `DECLARE_PRIVATE_KEY`, which wins over `private_key`.
    #[serde(skip)]
    pub private_key_env: Option<EnvPrivateKey>,
    pub alipay_public_key: Option<PathBuf>,
    pub verify_responses: bool,
    pub key_version: String,
    pub timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            endpoint: None,
            client_id: None,
            private_key: None,
            private_key_text: None,
            private_key_env: None,
            alipay_public_key: None,
            verify_responses: true,
            key_version: "1".to_owned(),
            timeout_ms: 10_000,
        }
    }
}

/// The environment variable that may hold the private key or its path.
pub const PRIVATE_KEY_VARIABLE: &str = "DECLARE_PRIVATE_KEY";

/// What `DECLARE_PRIVATE_KEY` holds: the key itself (a value with a newline
/// or `-----BEGIN`) or a path. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvPrivateKey {
    Text(String),
    Path(PathBuf),
}

impl EnvPrivateKey {
    pub fn from_value(value: String) -> EnvPrivateKey {
        if value.contains('\n') || value.contains("-----BEGIN") {
            EnvPrivateKey::Text(value)
        } else {
            EnvPrivateKey::Path(PathBuf::from(value))
        }
    }
}

impl std::fmt::Debug for EnvPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvPrivateKey::Text(_) => f.write_str("EnvPrivateKey::Text(..)"),
            EnvPrivateKey::Path(_) => f.write_str("EnvPrivateKey::Path(..)"),
        }
    }
}

/// A private key given as text in a config file, with where it was given
/// (the file and key name) for messages. Its `Debug` never shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyText {
    pub text: String,
    pub origin: String,
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyText({})", self.origin)
    }
}

/// Whether a `private_key` value is the key itself rather than a path:
/// PEM armour, several lines, or 64 characters and more of Base64 (file
/// names have a dot or an underscore, and are shorter).
fn is_key_text(value: &str) -> bool {
    let value = value.trim();
    value.contains("-----BEGIN")
        || value.contains('\n')
        || (value.len() >= 64
            && value.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || b.is_ascii_whitespace()
                    || matches!(b, b'+' | b'/' | b'=')
            }))
}

/// Whether a URL has a user name or password, parsed or not.
fn has_user_info(endpoint: &str) -> bool {
    crate::protocol::user_info(endpoint).is_some()
        || url::Url::parse(endpoint)
            .is_ok_and(|url| !url.username().is_empty() || url.password().is_some())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub rate_per_sec: u32,
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    /// A changed row under an already declared ID is sent as a
    /// retransmission only this long after the last call for that ID.
    pub retransmit_wait_secs: u64,
    /// How long a run waits for an endpoint that stopped answering
    /// (probing it with backoff) before it stops; 0: stop at once.
    pub outage_wait_secs: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            rate_per_sec: 20,
            burst: 1,
            concurrency: 8,
            max_attempts: 3,
            backoff_base_ms: 500,
            retransmit_wait_secs: 300,
            outage_wait_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// The SQLite ledger, relative to the config file. Default: beside the
    /// config file; with the embedded sandbox, inside the out folder.
    pub path: Option<PathBuf>,
    /// Raw answer bodies older than this many days are dropped (their
    /// fields stay); `None` in the file: the default of 90.
    pub keep_raw_answers_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    pub sheet: String,
    /// The header row's number; 0: found (the first row, among the first
    /// 30 non-blank ones, holding every required header).
    pub header_row: u64,
    pub encoding: EncodingChoice,
    pub amount_unit: AmountUnit,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// The language of row messages: `en` or `zh-CN`.
    pub language: Language,
    /// A run's figures in the Prometheus text format, relative to the
    /// config file; empty: none.
    pub metrics: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateConfig {
    pub customs_codes: Vec<String>,
}

impl Default for ValidateConfig {
    fn default() -> Self {
        ValidateConfig {
            customs_codes: SPEC_CUSTOMS_CODES.iter().map(|&c| c.to_owned()).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    pub payments: Option<PathBuf>,
}

impl Config {
    /// Reads and checks a config file; relative key paths become relative
    /// to the file's folder; `DECLARE_CLIENT_ID` and `DECLARE_PRIVATE_KEY`
    /// override the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::load_file(path)?;
        config.apply_environment();
        Ok(config)
    }

    /// Reads a config file as `load` does, but ignores `DECLARE_*`
    /// variables: a profile of the web page brings its own secrets.
    pub fn load_profile(path: &Path) -> Result<Config, ConfigError> {
        Config::load_file(path)
    }

    fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|error| ConfigError::NotUtf8 {
            path: path.to_owned(),
            offset: error.utf8_error().valid_up_to(),
        })?;
        // Notepad saves UTF-8 with a BOM.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut config = Config::parse(text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for key in [
            &mut config.api.private_key,
            &mut config.api.alipay_public_key,
        ] {
            if let Some(relative) = key.as_ref().filter(|p| p.is_relative()) {
                *key = Some(base.join(relative));
            }
        }
        if let Some(relative) = config.sandbox.payments.as_ref().filter(|p| p.is_relative()) {
            config.sandbox.payments = Some(base.join(relative));
        }
        // `metrics = ""` writes none.
        config.output.metrics = config
            .output
            .metrics
            .take()
            .filter(|path| !path.as_os_str().is_empty())
            .map(|path| base.join(path));
        if let Some(relative) = config.ledger.path.as_ref().filter(|p| p.is_relative()) {
            config.ledger.path = Some(base.join(relative));
        }
        Ok(config)
    }

    /// The configuration used when no file is given.
    pub fn without_file() -> Config {
        let mut config = Config::default();
        config.apply_environment();
        config
    }

    /// Parses config text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // The parser's message without its quote of the line: the line
        // may hold a key.
        let mut config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: match error.span() {
                Some(span) => format!(
                    "line {}: {}",
                    text[..span.start.min(text.len())].matches('\n').count() + 1,
                    error.message()
                ),
                None => error.message().to_owned(),
            },
        })?;
        if let Some(value) = config.api.private_key.as_ref().and_then(|key| key.to_str())
            && is_key_text(value)
        {
            config.api.private_key_text = Some(KeyText {
                text: value.to_owned(),
                origin: format!("[api] private_key in {}", path.display()),
            });
            config.api.private_key = None;
        }
        if config.api.endpoint.as_deref().is_some_and(has_user_info) {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: "[api] endpoint has a user name or password in it (before an @); \
                          remove them: requests are signed with [api] private_key, and a \
                          password there would be written to logs, reports and the ledger \
                          (it is not shown here)"
                    .into(),
            });
        }
        config.field_settings(path)?;
        if config.validate.customs_codes.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: "[validate] customs_codes is empty: no row could be declared".into(),
            });
        }
        Ok(config)
    }

    fn apply_environment(&mut self) {
        if let Some(id) = std::env::var_os("DECLARE_CLIENT_ID").filter(|v| !v.is_empty()) {
            self.api.client_id = Some(id.to_string_lossy().into_owned());
        }
        if let Some(key) = std::env::var_os(PRIVATE_KEY_VARIABLE).filter(|v| !v.is_empty()) {
            self.api.private_key_env = Some(EnvPrivateKey::from_value(
                key.to_string_lossy().into_owned(),
            ));
        }
    }

    /// `[columns]` and `[defaults]` by field, refusing names that are not
    /// canonical fields (a typo there would silently drop a column).
    pub fn field_settings(&self, path: &Path) -> Result<FieldSettings, ConfigError> {
        let mut settings = FieldSettings::default();
        let known = || {
            Field::ALL
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (section, table, slots) in [
            ("columns", &self.columns, &mut settings.columns),
            ("defaults", &self.defaults, &mut settings.defaults),
        ] {
            for (name, value) in table {
                let field = Field::from_name(name).ok_or_else(|| ConfigError::UnknownField {
                    path: path.to_owned(),
                    section,
                    name: name.clone(),
                    known: known(),
                })?;
                let value = value.trim();
                if !value.is_empty() {
                    slots[field.index()] = Some(value.to_owned());
                }
            }
        }
        // Region and currency have exactly one legal value each, so an input
        // that leaves them out means that value.
        for (field, value) in [(Field::Region, "CN"), (Field::AmountCurrency, "CNY")] {
            settings.defaults[field.index()].get_or_insert_with(|| value.to_owned());
        }
        Ok(settings)
    }

    /// The allowed customs codes, upper-cased like the input's.
    pub fn customs_codes(&self) -> Vec<String> {
        self.validate
            .customs_codes
            .iter()
            .map(|code| code.trim().to_uppercase())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_contract_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.run.rate_per_sec, 20);
        assert_eq!(config.run.burst, 1);
        assert_eq!(config.run.concurrency, 8);
        assert_eq!(config.run.max_attempts, 3);
        assert_eq!(config.run.backoff_base_ms, 500);
        assert_eq!(config.api.key_version, "1");
        assert_eq!(config.api.timeout_ms, 10_000);
        assert_eq!(config.input.encoding, EncodingChoice::Auto);
        assert_eq!(config.input.amount_unit, AmountUnit::Fen);
        assert_eq!(config.customs_codes(), SPEC_CUSTOMS_CODES);
        let settings = config.field_settings(Path::new("t")).unwrap();
        assert_eq!(
            settings.defaults[Field::Region.index()].as_deref(),
            Some("CN")
        );
        assert_eq!(settings.header_for(Field::IsSplit), "isSplit");
    }

    #[test]
    fn columns_and_defaults_resolve_to_fields() {
        let config = parse(
            "[input]\nencoding = \"gb18030\"\namount_unit = \"yuan\"\n\
             [columns]\n\"paymentRequestId\" = \"支付单号\"\n\
             [defaults]\n\"isSplit\" = \" false \"\n",
        )
        .unwrap();
        assert_eq!(config.input.encoding, EncodingChoice::Gb18030);
        assert_eq!(config.input.amount_unit, AmountUnit::Yuan);
        let settings = config.field_settings(Path::new("t")).unwrap();
        assert_eq!(settings.header_for(Field::PaymentRequestId), "支付单号");
        assert_eq!(
            settings.defaults[Field::IsSplit.index()].as_deref(),
            Some("false")
        );
    }

    #[test]
    fn unknown_names_and_keys_are_refused() {
        let err = parse("[columns]\n\"customsCode\" = \"海关\"\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field \"customsCode\""),
            "{err}"
        );
        assert!(err.to_string().contains("customs.customsCode"), "{err}");
        let err = parse("[run]\nrate = 5\n").unwrap_err();
        assert!(err.to_string().contains("rate"), "{err}");
        let err = parse("[input]\nencoding = \"latin1\"\n").unwrap_err();
        assert!(err.to_string().contains("latin1"), "{err}");
        let err = parse("[validate]\ncustoms_codes = []\n").unwrap_err();
        assert!(err.to_string().contains("customs_codes"), "{err}");
        let err = parse("[output]\nlanguage = \"fr\"\n").unwrap_err();
        assert!(err.to_string().contains("zh-CN"), "{err}");
    }

    #[test]
    fn output_language() {
        assert_eq!(parse("").unwrap().output.language, Language::En);
        let config = parse("[output]\nlanguage = \"zh-CN\"\n").unwrap();
        assert_eq!(config.output.language, Language::ZhCn);
    }
}
