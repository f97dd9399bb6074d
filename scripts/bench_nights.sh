#!/usr/bin/env bash
# Benchmark of an unattended night (not a test; results go in
# BENCHMARKS.md):
#  1. the ledger's write-ahead log during an unthrottled run of ROWS rows
#     (default 100,000): its peak (sampled every 20 ms), the ledger's and
#     the log's size at the end, time and peak memory;
#  2. riding out an outage: 3,000 rows at 100/s; OUTAGE seconds (default
#     60) after the run starts sending... the sandbox is killed 5 s in and
#     brought back on its port OUTAGE s later; the run's time against the
#     same run without an outage, and when sending resumed.
#   ROWS=100000 OUTAGE=60 scripts/bench_nights.sh
set -euo pipefail
outage=${OUTAGE:-60}
ROWS=${ROWS:-100000}
source "$(dirname "$0")/bench_setup.sh"
endpoint=$(head -1 "$work/endpoint")
addr=${endpoint#http://}
addr=${addr%/}

echo "== 1. $rows rows, unthrottled: the ledger's write-ahead log"
db="$work/night.db"
/usr/bin/time -f "%e %U %S %M" -o "$work/time" \
    "$bin" run "$work/orders.csv" --config "$work/fast.toml" --out "$work/out-1" --quiet \
    --ledger "$db" > /dev/null 2>&1 &
run=$!
peak=0
while kill -0 "$run" 2> /dev/null; do
    size=$(stat -c %s "$db-wal" 2> /dev/null || echo 0)
    [ "$size" -gt "$peak" ] && peak=$size
    sleep 0.02
done
wait "$run" || true
read -r wall user sys rss < <(tail -1 "$work/time")
sent=$(grep -o '"requests_sent": [0-9]*' "$work/out-1/summary.json" | grep -o '[0-9]*$')
awk -v n="$sent" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v p="$peak" \
    'BEGIN { printf "%d sent in %.1f s = %.0f/s, CPU %.2f s per 1,000, RSS %d MB, -wal peak %.1f MB\n",
             n, w, n / w, (u + s) * 1000 / n, r / 1024, p / 1048576 }'
for file in "$db" "$db-wal"; do
    [ -e "$file" ] && stat -c "%n %s" "$file" | awk -v n="$sent" \
        '{ printf "    %s %.1f MB (%.0f bytes per declaration)\n", $1, $2 / 1048576, $2 / n }'
done

# A year later: every raw answer older than keep_raw_answers_days dropped
# (0 days here, by a one-row run), then the file compacted.
{ cat "$work/fast.toml"; printf '[ledger]\nkeep_raw_answers_days = 0\n'; } > "$work/keep0.toml"
head -2 "$work/orders.csv" > "$work/one.csv"
"$bin" run "$work/one.csv" --config "$work/keep0.toml" --out "$work/out-one" --quiet \
    --ledger "$db" > /dev/null 2>&1 || true
"$bin" ledger vacuum --config "$work/keep0.toml" --ledger "$db" 2>&1 | sed 's/^[^ ]* //'
stat -c "%n %s" "$db" | awk -v n="$sent" \
    '{ printf "    without raw answers: %s %.1f MB (%.0f bytes per declaration)\n", $1, $2 / 1048576, $2 / n }'

echo "== 2. 3,000 rows at 100/s, with and without a ${outage}-second outage"
"$gen" csv 3000 "$work/small.csv"
sed 's/^rate_per_sec = 0/rate_per_sec = 100/' "$work/fast.toml" > "$work/paced.toml"
start=$(date +%s.%N)
"$bin" run "$work/small.csv" --config "$work/paced.toml" --out "$work/out-calm" --quiet \
    --ledger "$work/calm.db" > /dev/null 2>&1 || true
calm=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
"$bin" run "$work/small.csv" --config "$work/paced.toml" --out "$work/out-outage" \
    --ledger "$work/outage.db" --log "$work/outage.log" > /dev/null 2>&1 &
run=$!
sleep 5
kill "$(jobs -p | head -1)" 2> /dev/null || true
pkill -f -- "--addr $addr" 2> /dev/null || true
sleep "$outage"
back=$(date +%s.%N)
"$bin" sandbox --addr "$addr" --keys "$work/keys" --payments "$work/payments.csv" \
    --unsigned-answers > /dev/null 2>&1 &
wait "$run" || true
end=$(date +%s.%N)
grep -o 'exit=[0-9]* S=[0-9]* F=[0-9]* U=[0-9]*' "$work/outage.log" | tail -1
grep -o 'answers again after [0-9.]* s' "$work/outage.log" || echo "(no resume line)"
awk -v c="$calm" -v t="$(echo "$end - $start" | bc)" -v b="$(echo "$end - $back" | bc)" -v o="$outage" \
    'BEGIN { printf "without an outage %.1f s; with a %d s outage %.1f s (%.1f s more); %.1f s from the endpoint coming back to the end\n",
             c, o, t, t - c, b }'
grep -o '"outage_seconds": [0-9.]*' "$work/out-outage/summary.json"
