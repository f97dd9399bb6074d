//! declare-batch: reads order exports (CSV or XLSX), checks every row
//! against the Alipay+ customs `declare` spec, and declares the valid rows.
//! The binary is a thin shell over this library; see `cmd` for the
//! subcommands and `exit` for the exit codes users' scripts rely on.

pub mod client;
pub mod cmd;
pub mod config;
pub mod declare;
pub mod exit;
pub mod fields;
#[doc(hidden)]
pub mod fuzzing;
pub mod i18n;
pub mod init;
pub mod input;
pub mod ledger;
pub mod outcome;
pub mod outdir;
pub mod protocol;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod settings;
pub mod signing_pool;
pub mod validate;

/// An error and its causes on one line, for messages shown without
/// anyhow's `{:#}`: a library's own message alone rarely says what happened
/// ("error sending request"). A cause that only repeats the text before it
/// (as SQLite's code does its own error) is said once.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut last = message.clone();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if text != last {
            message.push_str(": ");
            message.push_str(&text);
        }
        last = text;
        source = inner.source();
    }
    message
}
