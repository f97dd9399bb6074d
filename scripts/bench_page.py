#!/usr/bin/env python3
"""Benchmark of the page's fixing loop (not a test; results go in
BENCHMARKS.md): `serve` (release) with a sandbox profile, an upload of
ROWS generated orders (a few of them invalid), then what the clerk waits
for: the upload's check, the mapping page, one row saved in the grid (the
whole file checked again with every rule), and one find-and-replace; with
serve's peak memory.

    ROWS=100000 scripts/bench_page.py
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ROWS = int(os.environ.get("ROWS", "100000"))
subprocess.run(["cargo", "build", "--release", "--bins", "--examples", "--quiet"],
               cwd=ROOT, check=True)
BIN = os.path.join(ROOT, "target/release/declare-batch")
GEN = os.path.join(ROOT, "target/release/examples/gen_bench")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(base, path, data=None, headers=None):
    headers = dict(headers or {}, Origin=base)
    req = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with OPENER.open(req, timeout=600) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers, answer.read().decode()


def timed(what, call):
    started = time.monotonic()
    result = call()
    print(f"{what}: {time.monotonic() - started:.2f} s", flush=True)
    return result


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


with tempfile.TemporaryDirectory() as work:
    orders = os.path.join(work, "orders.csv")
    payments = os.path.join(work, "payments.csv")
    subprocess.run([GEN, "csv", str(ROWS), orders], check=True)
    subprocess.run([GEN, "payments", str(ROWS), payments], check=True)
    os.makedirs(os.path.join(work, "profiles"))
    with open(os.path.join(work, "profiles/try.toml"), "w") as profile:
        profile.write(f'[api]\nendpoint = "sandbox"\n[sandbox]\npayments = "{payments}"\n')
    serve = subprocess.Popen([BIN, "serve", "--config-dir", os.path.join(work, "profiles"),
                              "--data", os.path.join(work, "data"), "--addr", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = serve.stdout.readline().strip().rstrip("/")
        with open(orders, "rb") as file:
            body = file.read()
        boundary = uuid.uuid4().hex
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\ntry\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"orders.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode() + body + \
            f"\r\n--{boundary}--\r\n".encode()
        status, headers, _ = timed(
            f"upload and check, {ROWS:,} rows ({len(body) / 1e6:.1f} MB)",
            lambda: request(base, "/uploads", form,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"}))
        job = headers["Location"]
        _, _, page = request(base, job)
        valid = re.search(r'id="valid">(\d+)', page).group(1)
        rejected = re.search(r'id="rejected">(\d+)', page).group(1)
        print(f"  {valid} valid, {rejected} rejected")
        _, _, grid = timed("the grid's first page", lambda: request(base, job + "/fix"))
        row = re.search(r'id="row-(\d+)"', grid).group(1)
        cell = re.search(rf'<tr id="row-{row}">.*?name="c(\d+)" value="([^"]*)"', grid, re.S)
        column, value = cell.group(1), cell.group(2)
        data = urllib.parse.urlencode({"row": row, f"c{column}": value + "1"}).encode()
        status, _, _ = timed("one row saved (the file checked again)",
                             lambda: request(base, job + "/fix", data))
        assert status == 303, status
        data = urllib.parse.urlencode({"column": "2", "find": "NOWHERE", "replace": "ZONGSHU"})
        timed("a find-and-replace that finds nothing", lambda: request(base, job + "/replace",
                                                                       data.encode()))
        print(f"serve's peak memory: {peak_rss_mb(serve.pid):.0f} MB")
    finally:
        serve.kill()
        serve.wait()
