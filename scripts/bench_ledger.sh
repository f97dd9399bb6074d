#!/usr/bin/env bash
# Benchmark of the ledger's cost (not a test; results go in BENCHMARKS.md):
# the unthrottled run (no rate limit, concurrency 32, unsigned answers) of
# the same rows by a binary without the ledger (BASE, built from the commit
# before it) and by this one, interleaved, each with a fresh out folder and
# ledger; then the ledger's size after the run.
#   BASE=/path/to/old/declare-batch ROWS=10000 ROUNDS=3 scripts/bench_ledger.sh
set -euo pipefail
base=${BASE:?set BASE to a declare-batch binary without the ledger}
rounds=${ROUNDS:-3}
source "$(dirname "$0")/bench_setup.sh"

for round in $(seq "$rounds"); do
    for which in base ledger; do
        out="$work/out-$which-$round"
        if [ "$which" = base ]; then
            cmd=("$base" run "$work/orders.csv" --config "$work/fast.toml" --out "$out" --quiet)
        else
            cmd=("$bin" run "$work/orders.csv" --config "$work/fast.toml" --out "$out" --quiet
                 --ledger "$out.db")
        fi
        start=$(date +%s.%N)
        /usr/bin/time -f "%U %S %M" -o "$work/time" "${cmd[@]}" || true
        end=$(date +%s.%N)
        read -r user sys rss < <(tail -1 "$work/time")
        sent=$(grep -o '"requests_sent": [0-9]*' "$out/summary.json" | grep -o '[0-9]*$')
        awk -v w="$which" -v s="$start" -v e="$end" -v n="$sent" -v u="$user" -v y="$sys" -v r="$rss" \
            'BEGIN { printf "%-6s round %d: %d sent in %.2f s = %.0f/s, CPU %.2f s per 1,000, RSS %d MB\n",
                     w, '"$round"', n, e - s, n / (e - s), (u + y) * 1000 / n, r / 1024 }'
        if [ "$which" = ledger ]; then
            ls -l "$out.db"* | awk '{ printf "    %s %.1f MB\n", $9, $5 / 1048576 }'
        fi
    done
done
