//! The exit codes of the contract, in one place: cron jobs and scripts
//! branch on them.

/// `run`: every row declared with S; `validate`: every row valid.
pub const SUCCESS: u8 = 0;
/// Bad config, unreadable input, bad key, locked or foreign output
/// directory, or a configuration-level answer from the API.
pub const FATAL: u8 = 1;
/// Wrong command-line usage (clap exits with this itself).
pub const USAGE: u8 = 2;
/// Finished; some rows failed (F) or were rejected, none is unknown.
pub const SOME_FAILED: u8 = 3;
/// Finished, interrupted, or stopped because the endpoint kept failing;
/// some rows are in `retry.csv`.
pub const UNFINISHED: u8 = 4;

/// What a run came to, as far as its exit code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    AllDeclared,
    SomeFailed,
    Unfinished,
    Fatal,
}

/// The exit code of a run's end: the one mapping, used for the process's
/// exit and for `summary.json`'s `exit_code`.
pub fn of_run(end: Conclusion) -> u8 {
    match end {
        Conclusion::AllDeclared => SUCCESS,
        Conclusion::SomeFailed => SOME_FAILED,
        Conclusion::Unfinished => UNFINISHED,
        Conclusion::Fatal => FATAL,
    }
}
