#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs):
# formatting, lints with warnings as errors, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
