#!/usr/bin/env bash
# Benchmark of `validate` against Python's `csv` module merely reading the
# same file (not a test; results go in BENCHMARKS.md): a CSV of ROWS rows
# (1,000,000 by default) from examples/gen_bench.rs, then ROUNDS rounds,
# each running, one after another, BEFORE's `validate` (when BEFORE names
# another build), ours, and `for row in csv.reader(f)` in Python. Prints
# each side's wall time, user + system CPU and peak memory as
# minimum-maximum (median). The machine's speed moves between periods, so
# only figures of the same invocation compare; one core's signing speed
# (ours, and OpenSSL's when it is installed) says which period it was.
#   ROWS=1000000 ROUNDS=6 [BEFORE=/path/to/old/declare-batch] scripts/bench_validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --examples --quiet
bin=target/release/declare-batch
gen=target/release/examples/gen_bench
rows=${ROWS:-1000000}
rounds=${ROUNDS:-6}
before=${BEFORE:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$gen" csv "$rows" "$work/orders.csv"
. scripts/bench_machine_state.sh
machine_state "$bin" "$work"
cat > "$work/parse.py" <<'PY'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    for row in csv.reader(f):
        pass
PY

timed() { # LABEL COMMAND...: one line "LABEL wall user sys rss_kb"
    local label=$1; shift
    /usr/bin/time -f "$label %e %U %S %M" -o "$work/time" "$@" > /dev/null 2>&1 || true
    tail -1 "$work/time" >> "$work/times"
}

echo "== $rows rows ($(( $(stat -c %s "$work/orders.csv") / 1000000 )) MB), $rounds rounds, interleaved"
for _ in $(seq "$rounds"); do
    if [ -n "$before" ]; then
        timed before "$before" validate "$work/orders.csv" --out "$work/out-before" --quiet
    fi
    timed ours "$bin" validate "$work/orders.csv" --out "$work/out-ours" --quiet
    timed python python3 "$work/parse.py" "$work/orders.csv"
done
python3 - "$work/times" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, wall, user, system, rss = line.split()
    runs[label].append((float(wall), float(user) + float(system), int(rss)))
def spread(values, unit):
    return f"{min(values):.2f}-{max(values):.2f} {unit} ({statistics.median(values):.2f})"
for label in ("before", "ours", "python"):
    if label in runs:
        walls, cpus, rss = zip(*runs[label])
        print(f"{label:7} wall {spread(walls, 's')}, CPU {spread(cpus, 's')}, peak {max(rss) // 1024} MB")
PY
