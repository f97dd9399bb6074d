//! The integration tests, one binary: each runs the real `declare-batch`
//! (and, for the API, the real sandbox over loopback TCP) on fixtures it
//! writes into its own temporary folder.

mod api;
mod browser;
mod common;
mod fixing;
mod hostile;
mod inquire;
mod ledger;
mod network;
mod nights;
mod ops;
mod run;
mod serve;
mod serve_security;
mod validate;
