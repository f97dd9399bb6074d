# Shared set-up of the run benchmarks (sourced, not run): builds the
# release binaries, makes a work folder removed at exit, writes ROWS orders
# and their payments, starts a sandbox that answers unsigned, and writes
# fast.toml (no rate limit, concurrency 32). Sets bin, gen, rows and work.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bins --examples --quiet
bin=target/release/declare-batch
gen=target/release/examples/gen_bench
rows=${ROWS:-10000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

"$gen" csv "$rows" "$work/orders.csv"
"$gen" payments "$rows" "$work/payments.csv"
"$bin" sandbox --addr 127.0.0.1:0 --keys "$work/keys" --payments "$work/payments.csv" \
    --unsigned-answers > "$work/endpoint" 2> /dev/null &
until [ -s "$work/endpoint" ]; do sleep 0.1; done
cat > "$work/fast.toml" <<TOML
[api]
endpoint = "$(head -1 "$work/endpoint")"
client_id = "SANDBOX_CLIENT"
private_key = "$work/keys/client_private.pem"
timeout_ms = 10000
[run]
rate_per_sec = 0
concurrency = 32
TOML
