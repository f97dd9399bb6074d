#!/usr/bin/env bash
# Benchmarks of `declare-batch run` (not tests; results go in BENCHMARKS.md):
#  1. declares per second with no rate limit and concurrency 32 against a
#     sandbox that answers without signing, and CPU seconds per 1,000
#     declares of the run process;
#     the same command again, a resume with every row final, shows the
#     memory of replaying the journal;
#  1c. the Python client of scripts/py_client.py (requests + cryptography,
#     16 threads) against a fresh sandbox of the same kind, same rows;
#  2. the achieved rate at 50/s over 30 s, and the busiest second as the
#     sandbox counted it.
# Everything runs on this machine over loopback; the sandbox shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --examples --quiet
bin=target/release/declare-batch
gen=target/release/examples/gen_bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start_sandbox() { # NAME EXTRA-ARGS...
    local name=$1; shift
    "$bin" sandbox --addr 127.0.0.1:0 --keys "$work/keys" --payments "$work/payments.csv" "$@" \
        > "$work/$name.endpoint" 2> /dev/null &
    until [ -s "$work/$name.endpoint" ]; do sleep 0.1; done
    head -1 "$work/$name.endpoint"
}

config() { # ENDPOINT RATE CONCURRENCY VERIFY
    cat <<TOML
[api]
endpoint = "$1"
client_id = "SANDBOX_CLIENT"
private_key = "$work/keys/client_private.pem"
$( [ "$4" = yes ] && echo "alipay_public_key = \"$work/keys/sandbox_public.pem\"" )
timeout_ms = 10000
[run]
rate_per_sec = $2
concurrency = $3
TOML
}

rows=${ROWS:-10000}
"$gen" csv "$rows" "$work/orders.csv"
"$gen" payments "$rows" "$work/payments.csv"

# This VM runs in fast and slow periods: our signer's speed, saved for the
# per-declare figure below, and OpenSSL's say which this was.
. scripts/bench_machine_state.sh
machine_state "$bin" "$work" | tee "$work/sign-speed"
echo "== 1. no limit, concurrency 32, unsigned answers, $rows rows"
endpoint=$(start_sandbox unsigned --unsigned-answers)
config "$endpoint" 0 32 no > "$work/fast.toml"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, max RSS %M KB" -o "$work/time-fast" \
    "$bin" run "$work/orders.csv" --config "$work/fast.toml" --out "$work/out-fast" --quiet || true
tail -1 "$work/time-fast"
python3 - "$work/out-fast/summary.json" "$work/time-fast" "$work/sign-speed" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
print(f"requests {s['requests_sent']}, S {s['results']['S']}, F {s['results']['F']}, U {s['results']['U']}, "
      f"{s['duration_ms']/1000:.2f} s, {s['achieved_rate_per_sec']:.0f} declares/s")
# CPU per 1,000 declares, and per declare in units of one signature on one
# core in this period: the second figure moves less with the machine.
times = open(sys.argv[2]).read().splitlines()[-1]
user, system = (float(x) for x in re.search(r"user ([0-9.]+) s, sys ([0-9.]+) s", times).groups())
cpu_per_1000 = (user + system) * 1000 / s["requests_sent"]
sign_ms = float(re.search(r"our signer:\s+([0-9.]+) ms", open(sys.argv[3]).read()).group(1))
print(f"CPU {cpu_per_1000:.3f} s per 1,000 declares = {cpu_per_1000 / sign_ms:.2f} signatures' time "
      f"per declare (one signature: {sign_ms} ms)")
PY

echo "== 1b. the same command again: a resume that replays every final from the journal"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, max RSS %M KB" \
    "$bin" run "$work/orders.csv" --config "$work/fast.toml" --out "$work/out-fast" --quiet || true

echo "== 1c. the Python client against a fresh sandbox with unsigned answers, same rows"
endpoint=$(start_sandbox python --unsigned-answers)
python3 scripts/py_client.py "$endpoint" "$work/keys/client_private.pem" "$work/orders.csv" 16

echo "== 2. rate 50/s for 30 s (1500 rows), signed and verified answers"
head -1501 "$work/orders.csv" > "$work/orders-1500.csv"
endpoint=$(start_sandbox paced)
config "$endpoint" 50 8 yes > "$work/paced.toml"
"$bin" run "$work/orders-1500.csv" --config "$work/paced.toml" --out "$work/out-paced" --quiet || true
python3 - "$work/out-paced/summary.json" "$endpoint/stats" <<'PY'
import json, sys, urllib.request
s = json.load(open(sys.argv[1]))
stats = json.load(urllib.request.urlopen(sys.argv[2]))
rate = s['achieved_rate_per_sec']
full = stats['per_second'][1:-1]  # the first and last seconds are partial
print(f"requests {s['requests_sent']} in {s['duration_ms']/1000:.2f} s: {rate:.2f}/s = {rate/50*100:.1f} % of 50; "
      f"busiest second at the sandbox {stats['max_per_second']}; full seconds min {min(full)} max {max(full)}")
PY
