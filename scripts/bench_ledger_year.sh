#!/usr/bin/env bash
# Benchmark of a ledger after a year (issue 22; not a test, results go in
# BENCHMARKS.md): fills a ledger with NIGHTS nights of PER_NIGHT
# declarations through the ledger's own writer (examples/fill_ledger.rs),
# times the send decision of 10,000 new rows against it and against an
# empty ledger, then the unthrottled run of ROWS rows against a copy of it
# and against an empty ledger, interleaved, and `ledger status` / `ledger
# export` (all, and --since a week ago) over it.
#   NIGHTS=333 PER_NIGHT=3000 ROWS=10000 ROUNDS=3 scripts/bench_ledger_year.sh
set -euo pipefail
nights=${NIGHTS:-333}
per_night=${PER_NIGHT:-3000}
rounds=${ROUNDS:-3}
source "$(dirname "$0")/bench_setup.sh"
fill=target/release/examples/fill_ledger
endpoint=$(head -1 "$work/endpoint")
year="$work/year.db"

/usr/bin/time -f "fill: %e s wall, %U s user, %S s sys, %M KB peak" \
    "$fill" fill "$year" "$endpoint" SANDBOX_CLIENT "$nights" "$per_night"
ls -l "$year"* | awk '{ printf "  %s %.1f MB\n", $9, $5 / 1e6 }'

for round in $(seq "$rounds"); do
    rm -f "$work/empty.db"*
    echo "lookups round $round:"
    echo -n "  empty: " && "$fill" lookups "$work/empty.db" "$endpoint" SANDBOX_CLIENT 10000
    echo -n "  year:  " && "$fill" lookups "$year" "$endpoint" SANDBOX_CLIENT 10000
done

for round in $(seq "$rounds"); do
    for which in empty year; do
        out="$work/out-$which-$round"
        ledger="$work/run-$which-$round.db"
        if [ "$which" = year ]; then
            cp "$year" "$ledger"
            cp "$year.key" "$ledger.key"
        fi
        start=$(date +%s.%N)
        /usr/bin/time -f "%U %S %M" -o "$work/time" \
            "$bin" run "$work/orders.csv" --config "$work/fast.toml" --out "$out" --quiet \
            --ledger "$ledger" || true
        end=$(date +%s.%N)
        read -r user sys rss < <(tail -1 "$work/time")
        sent=$(grep -o '"requests_sent": [0-9]*' "$out/summary.json" | grep -o '[0-9]*$')
        awk -v w="$which" -v s="$start" -v e="$end" -v n="$sent" -v u="$user" -v y="$sys" -v r="$rss" \
            'BEGIN { printf "run %-5s round %d: %d sent in %.2f s = %.0f/s, CPU %.2f s per 1,000, RSS %d MB\n",
                     w, '"$round"', n, e - s, n / (e - s), (u + y) * 1000 / n, r / 1024 }'
        rm -f "$ledger"*
    done
done

week_ago=$(date -d '7 days ago' +%F)
for round in $(seq "$rounds"); do
    /usr/bin/time -f "ledger status: %e s wall, %U s user, %M KB peak" \
        "$bin" ledger status --config "$work/fast.toml" --ledger "$year" > "$work/status.txt"
    /usr/bin/time -f "ledger export --since $week_ago: %e s wall, %U s user, %M KB peak" \
        "$bin" ledger export --config "$work/fast.toml" --ledger "$year" --since "$week_ago" \
        > "$work/week.csv"
    /usr/bin/time -f "ledger export (all): %e s wall, %U s user, %M KB peak" \
        "$bin" ledger export --config "$work/fast.toml" --ledger "$year" > "$work/all.csv"
    echo "  rows: $(($(wc -l < "$work/week.csv") - 1)) since a week ago, $(($(wc -l < "$work/all.csv") - 1)) in all; status: $(wc -l < "$work/status.txt") lines"
done
