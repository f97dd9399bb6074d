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
pub mod init;
pub mod input;
pub mod ledger;
pub mod messages;
pub mod outdir;
pub mod protocol;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod validate;
