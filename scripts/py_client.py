#!/usr/bin/env python3
"""A declare client in Python, for comparison with `declare-batch run` in
BENCHMARKS.md (not a test, not a product): requests + cryptography with 16
threads, each signing (RSA256, PKCS#1 v1.5 SHA-256) and posting one row at a
time the way a hand-written script would, against the same sandbox.

    scripts/py_client.py ENDPOINT CLIENT_PRIVATE_KEY.pem ORDERS.csv [THREADS]

Prints the declares per second and the CPU seconds per 1,000 declares of
this process. Rows that local validation would reject (an unlisted customs
code) are skipped, so that both clients send the same rows.
"""

import base64
import csv
import json
import resource
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

PATH = "/aps/api/v1/customs/declare"
CLIENT_ID = "SANDBOX_CLIENT"
CUSTOMS = {"ZONGSHU", "ZHENGZHOU", "NINGBO", "SHANGHAI_CBT"}


def body_of(row):
    """The request body, fields in the order the spec lists them."""
    body = {
        "paymentRequestId": row["paymentRequestId"],
        "customsDeclarationRequestId": row["customsDeclarationRequestId"],
        "customs": {"customsCode": row["customs.customsCode"], "region": "CN"},
        "merchantCustomsInfo": {
            "merchantCustomsCode": row["merchantCustomsInfo.merchantCustomsCode"],
            "merchantCustomsName": row["merchantCustomsInfo.merchantCustomsName"],
        },
        "declarationAmount": {"currency": "CNY", "value": row["declarationAmount.value"]},
        "isSplit": row["isSplit"],
    }
    if row["referenceOrderId"]:
        body["referenceOrderId"] = row["referenceOrderId"]
    if row["buyerCertificate.certificateNo"]:
        body["buyerCertificate"] = {
            "certificateType": row["buyerCertificate.certificateType"],
            "certificateNo": row["buyerCertificate.certificateNo"],
            "holderName": {"fullName": row["buyerCertificate.holderName.fullName"]},
            "effectiveDate": row["buyerCertificate.effectiveDate"] + "T00:00:00+08:00",
            "expireDate": row["buyerCertificate.expireDate"] + "T00:00:00+08:00",
        }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def main():
    endpoint, key_path, orders = sys.argv[1:4]
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    with open(key_path, "rb") as file:
        key = serialization.load_pem_private_key(file.read(), None)
    with open(orders, encoding="utf-8-sig", newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["customs.customsCode"] in CUSTOMS]
    url = endpoint.rstrip("/") + PATH
    local = threading.local()

    def declare(row):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        body = body_of(row)
        when = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600))
        content = f"POST {PATH}\n{CLIENT_ID}.{when}.".encode() + body
        signature = key.sign(content, padding.PKCS1v15(), hashes.SHA256())
        quoted = urllib.parse.quote(base64.b64encode(signature).decode(), safe="")
        answer = session.post(
            url,
            data=body,
            timeout=10,
            headers={
                "Content-Type": "application/json; charset=UTF-8",
                "Client-Id": CLIENT_ID,
                "Request-Time": when,
                "Signature": f"algorithm=RSA256,keyVersion=1,signature={quoted}",
            },
        )
        try:
            return answer.json()["result"]["resultStatus"]
        except (ValueError, KeyError):
            return "U"

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(declare, rows))
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    print(
        f"python ({threads} threads): {len(rows)} declares in {wall:.2f} s = "
        f"{len(rows) / wall:.0f} declares/s, {cpu / len(rows) * 1000:.2f} CPU s per 1,000, {counts}"
    )


if __name__ == "__main__":
    main()
