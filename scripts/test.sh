#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs):
# the browser test's programs when they are missing, formatting, lints with
# warnings as errors, the dependency policy (deny.toml), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Headless Chromium and its WebDriver for the browser test of the web page,
# and a CJK font (without one Chromium draws Chinese as empty boxes).
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null ||
    ! fc-list 2> /dev/null | grep -qi "wenquanyi\|wqy"; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        chromium chromium-driver fonts-wqy-microhei
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The dependency policy: licenses, bans and sources always; advisories when
# the RustSec database can be fetched (CI reaches the package registries
# only, so there it is skipped with a warning).
if ! cargo deny --version 2> /dev/null | grep -q "0.20.2"; then
    cargo install cargo-deny --version 0.20.2 --locked
fi
cargo deny --locked check licenses bans sources
if cargo deny fetch db > /dev/null 2>&1; then
    cargo deny --locked check advisories
else
    echo "warning: the RustSec advisory database cannot be fetched (no network?):" \
        "advisories not checked; run 'cargo deny check advisories' where it can be" >&2
fi
cargo test --locked
