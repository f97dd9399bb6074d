#!/usr/bin/env python3
"""Chaos soak of `declare-batch run` (issue 5; not part of CI's test run).

Declares ROWS generated orders to a local sandbox that misbehaves (10 % U
before recording, 5 % U after recording, 5 % HTTP 500, 2 % dropped
connections, 2 % answers delayed past the client's timeout), kills the
run with SIGKILL at KILLS or more seeded random moments (the last few
during the final rewrite of the outputs) and restarts it until it
finishes, then feeds retry.csv back until it is empty. Each row gets one
attempt per run (max_attempts = 1), so that every resumed run re-sends
rows in doubt and the finished run still leaves rows for retry.csv.

Everything checked is counted by the sandbox or read from the output
files, not taken from the tool's own summary:
  rows lost, rows reported twice, rows whose S was journaled and that were
  sent again, IDs with more than one distinct body, and
  REPEAT_REQ_INCONSISTENT / DUPLICATED_DECLARATION answers, and S rows on
  which the ledger (declare-batch.db beside the config) and the outputs
  disagree.
Exits 1 when any of them is not 0.

  scripts/chaos_soak.py [--rows 100000] [--kills 24] [--seed 7]
"""

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/release/declare-batch"
GEN = ROOT / "target/release/examples/gen_bench"
FINAL_REWRITE_FILES = ("results.csv.tmp", "retry.csv.tmp", "summary.json.tmp")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_sandbox(work, payments, seed, timeout_ms):
    endpoint_file = work / "sandbox.endpoint"
    sandbox = subprocess.Popen(
        [
            BIN, "sandbox", "--addr", "127.0.0.1:0", "--keys", work / "keys",
            "--payments", payments, "--seed", str(seed),
            "--fail-u-before", "0.10", "--fail-u-after", "0.05",
            "--fail-http-500", "0.05", "--fail-drop", "0.02",
            "--slow", "0.02", "--latency-ms", str(timeout_ms + 500),
        ],
        stdout=open(endpoint_file, "w"), stderr=subprocess.DEVNULL,
    )
    while not endpoint_file.read_text().strip():
        time.sleep(0.05)
    return sandbox, endpoint_file.read_text().split()[0]


def stats(endpoint):
    with urllib.request.urlopen(f"{endpoint}/stats") as answer:
        return json.load(answer)


def journaled_successes(out):
    ids = set()
    journal = out / "journal.jsonl"
    if not journal.exists():
        return ids
    with open(journal, encoding="utf-8") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if entry.get("t") == "final" and entry["result"]["resultStatus"] == "S":
                ids.add(entry["result"]["customsDeclarationRequestId"])
    return ids


def rows_listed(path):
    """Row numbers in the first column of a CSV output (BOM allowed)."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file)
        next(reader)
        return [int(record[0]) for record in reader]


def run(orders, config, out, extra=()):
    return subprocess.Popen(
        [BIN, "run", orders, "--config", config, "--out", out, "--quiet", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--rewrite-kills", type=int, default=3,
                        help="how many of the kills wait for the final rewrite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    subprocess.run(["cargo", "build", "--release", "--quiet", "--bins", "--examples"],
                   cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    orders, payments = work / "orders.csv", work / "payments.csv"
    subprocess.run([GEN, "csv", str(args.rows), orders], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([GEN, "payments", str(args.rows), payments], check=True,
                   stdout=subprocess.DEVNULL)
    timeout_ms = 1000
    sandbox, endpoint = start_sandbox(work, payments, args.seed, timeout_ms)
    config = work / "run.toml"
    config.write_text(f"""[api]
endpoint = "{endpoint}"
client_id = "SANDBOX_CLIENT"
private_key = "{work}/keys/client_private.pem"
alipay_public_key = "{work}/keys/sandbox_public.pem"
timeout_ms = {timeout_ms}
[run]
rate_per_sec = 0
concurrency = 32
max_attempts = 1
backoff_base_ms = 50
""")
    out = work / "out"
    log(f"{args.rows} rows, sandbox {endpoint}, work folder {work}")

    # The journaled successes and the sandbox's per-ID request counts as
    # they stood at the last kill: none of those IDs may be sent again.
    journaled, counts_then = set(), {}
    resent_after_success = set()

    def check_no_journaled_success_resent():
        nonlocal journaled, counts_then
        now = stats(endpoint)["requests_per_id"]
        for request_id in journaled:
            if now.get(request_id, 0) != counts_then.get(request_id, 0):
                resent_after_success.add(request_id)
        journaled, counts_then = journaled_successes(out), now

    started = time.monotonic()
    kills, runs, timed_kills = 0, 0, args.kills - args.rewrite_kills
    while True:
        runs += 1
        child_started = time.time()
        child = run(orders, config, out)
        wants_rewrite_kill = kills >= timed_kills and kills < args.kills
        delay = rng.uniform(0.05, 6.0)
        deadline = time.monotonic() + delay
        killed = False
        while child.poll() is None:
            if kills < timed_kills and time.monotonic() >= deadline:
                killed = True
            elif wants_rewrite_kill and rewriting(out, child_started):
                killed = True
            if killed:
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        code = child.wait()
        stderr = child.stderr.read()
        if killed and code == -signal.SIGKILL:
            kills += 1
            moment = "during the final rewrite" if wants_rewrite_kill else f"after {delay:.2f} s"
            log(f"run {runs}: killed {moment} ({len(journaled_successes(out))} S journaled)")
            check_no_journaled_success_resent()
            continue
        log(f"run {runs}: exit {code}")
        check_no_journaled_success_resent()
        if code not in (0, 3, 4):
            print(stderr, file=sys.stderr)
            sys.exit(f"run ended with exit {code}")
        if kills >= args.kills:
            break
    soak_seconds = time.monotonic() - started

    # Every input row exactly once across results.csv and rejected.csv.
    listed = rows_listed(out / "results.csv") + rows_listed(out / "rejected.csv")
    expected = set(range(2, args.rows + 2))
    lost = len(expected - set(listed))
    twice = len(listed) - len(set(listed))
    strangers = len(set(listed) - expected)

    # retry.csv fed back until it is empty.
    retry_rounds, retry = 0, out / "retry.csv"
    while data_rows(retry) > 0:
        retry_rounds += 1
        if retry_rounds > 20:
            sys.exit("retry.csv does not converge")
        round_out = work / f"retry-{retry_rounds}"
        child = run(retry, config, round_out)
        code = child.wait()
        log(f"retry round {retry_rounds}: {data_rows(retry)} rows, exit {code}")
        if code not in (0, 4):
            print(child.stderr.read(), file=sys.stderr)
            sys.exit(f"retry round ended with exit {code}")
        retry = round_out / "retry.csv"
    final = stats(endpoint)
    sandbox.send_signal(signal.SIGTERM)

    # The ledger agrees with the outputs: the IDs it holds as S are those
    # S in results.csv of the run and of its retry rounds.
    s_in_results = set()
    for results in [out / "results.csv"] + [work / f"retry-{n}" / "results.csv"
                                            for n in range(1, retry_rounds + 1)]:
        with open(results, encoding="utf-8-sig", newline="") as file:
            for row in csv.DictReader(file):
                if row["resultStatus"] == "S":
                    s_in_results.add(row["customsDeclarationRequestId"])
    export = subprocess.run([BIN, "ledger", "export", "--config", config, "--status", "S"],
                            check=True, capture_output=True, text=True).stdout
    s_in_ledger = {row["customsDeclarationRequestId"]
                   for row in csv.DictReader(export.splitlines())}

    checks = {
        "rows lost": lost,
        "rows reported twice": twice,
        "rows reported that are not in the input": strangers,
        "rows whose S was journaled, sent again": len(resent_after_success),
        "IDs with more than one distinct body": final["request_ids_with_distinct_bodies"],
        "REPEAT_REQ_INCONSISTENT answers": final["by_code"].get("REPEAT_REQ_INCONSISTENT", 0),
        "DUPLICATED_DECLARATION answers": final["by_code"].get("DUPLICATED_DECLARATION", 0),
        "S in results, not S in the ledger": len(s_in_results - s_in_ledger),
        "S in the ledger, not S in results": len(s_in_ledger - s_in_results),
    }
    summary = json.load(open(out / "summary.json"))
    print()
    print(f"rows {args.rows}: {summary['results']} final in results.csv, "
          f"{summary['rows']['rejected']} rejected")
    print(f"runs {runs}, of them killed with SIGKILL {kills} "
          f"({args.rewrite_kills} during the final rewrite), "
          f"{soak_seconds:.0f} s until a run finished; then {retry_rounds} retry round(s)")
    print(f"sandbox: {final['requests']} requests for {final['request_ids']} IDs, "
          f"answers {final['by_code']}")
    for name, count in checks.items():
        print(f"{name:45} {count}")
    if not args.keep:
        subprocess.run(["rm", "-rf", work])
    sys.exit(0 if all(count == 0 for count in checks.values()) else 1)


def data_rows(path):
    """Data rows of a CSV file with a header row; 0 when it is missing."""
    if not path.exists():
        return 0
    with open(path, encoding="utf-8-sig", newline="") as file:
        return max(sum(1 for _ in csv.reader(file)) - 1, 0)


def rewriting(out, since):
    """Whether the run started at `since` is writing its final outputs (a
    temporary file of a killed run before it may still lie there)."""
    for name in FINAL_REWRITE_FILES:
        try:
            if os.stat(out / name).st_mtime >= since:
                return True
        except FileNotFoundError:
            pass
    return False


if __name__ == "__main__":
    main()
