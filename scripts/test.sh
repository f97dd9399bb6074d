#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs):
# the browser test's programs when they are missing, formatting, lints with
# warnings as errors, then every test.
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
cargo test --locked
