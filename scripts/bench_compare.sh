#!/usr/bin/env bash
# Benchmark of one change (not a test; results go in BENCHMARKS.md): two
# builds of declare-batch side by side, interleaved, on the same inputs —
# the unthrottled run (no rate limit, concurrency 32, a sandbox answering
# unsigned; a fresh out folder and ledger each time) and `validate` of a
# CSV of many rows.
#   BEFORE=/path/to/old/declare-batch ROWS=10000 VALIDATE_ROWS=1000000 ROUNDS=3 scripts/bench_compare.sh
set -euo pipefail
before=${BEFORE:?set BEFORE to the declare-batch binary to compare with}
validate_rows=${VALIDATE_ROWS:-1000000}
rounds=${ROUNDS:-3}
source "$(dirname "$0")/bench_setup.sh"
after=$bin
"$gen" csv "$validate_rows" "$work/big.csv"

measure() { # label round command...
    local label=$1 round=$2; shift 2
    local start end user sys rss
    start=$(date +%s.%N)
    /usr/bin/time -f "%U %S %M" -o "$work/time" "$@" > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    read -r user sys rss < <(tail -1 "$work/time")
    echo "$label $round $start $end $user $sys $rss"
}

for round in $(seq "$rounds"); do
    for which in before after; do
        bin=$before; [ "$which" = after ] && bin=$after
        out="$work/out-$which-$round"
        read -r _ _ s e u y r < <(measure "$which" "$round" "$bin" run "$work/orders.csv" \
            --config "$work/fast.toml" --out "$out" --quiet --ledger "$out.db")
        sent=$(grep -o '"requests_sent": [0-9]*' "$out/summary.json" | grep -o '[0-9]*$')
        awk -v w="$which" -v s="$s" -v e="$e" -v n="$sent" -v u="$u" -v y="$y" -v r="$r" -v k="$round" \
            'BEGIN { printf "run      %-6s round %d: %d sent in %.2f s = %.0f/s, CPU %.2f s per 1,000, RSS %d MB\n",
                     w, k, n, e - s, n / (e - s), (u + y) * 1000 / n, r / 1024 }'
        read -r _ _ s e u y r < <(measure "$which" "$round" "$bin" validate "$work/big.csv" \
            --out "$work/v-$which-$round")
        awk -v w="$which" -v s="$s" -v e="$e" -v u="$u" -v y="$y" -v r="$r" -v k="$round" -v n="$validate_rows" \
            'BEGIN { printf "validate %-6s round %d: %d rows in %.2f s, CPU %.2f s, RSS %d MB\n",
                     w, k, n, e - s, u + y, r / 1024 }'
    done
done
