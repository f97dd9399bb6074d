#!/usr/bin/env python3
"""Peak memory of declare-batch on the hostile files of issue 18, at full
size: small workbooks that inflate to gigabytes, CSV files without line
breaks or with a gigabyte of blank lines, a 16,384-column workbook, an
upload of the worst one to the page, and an API answer without end.

Each file is generated into a temporary folder (about 1.3 GB of disk) and
each command is run with DECLARE_LOG=declare_batch::memory=info, so that
the binary reports its own peak (VmHWM). Prints a Markdown table.

    cargo build --release
    python3 scripts/hostile_memory.py [target/release/declare-batch]
"""

import http.server
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile

BINARY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/declare-batch")
HEADERS = ("paymentRequestId,customsDeclarationRequestId,customs.customsCode,customs.region,"
           "merchantCustomsInfo.merchantCustomsCode,merchantCustomsInfo.merchantCustomsName,"
           "declarationAmount.value,declarationAmount.currency,isSplit").split(",")
ROW = "PAY2026112200{},DCL2026112200{},ZONGSHU,CN,3102460XYZ,上海海淘供应链管理有限公司,5990,CNY,false"
GIB = 1 << 30


def column(index):
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cells(row, values):
    return f'<row r="{row}">' + "".join(
        f'<c r="{column(i)}{row}" t="inlineStr"><is><t>{v}</t></is></c>'
        for i, v in enumerate(values) if v) + "</row>"


def rows(first, count):
    return "".join(cells(first + n, ROW.format(n, n).split(",")) for n in range(count))


RELS = ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>')


def repeated(chunk, total):
    block = (chunk * max(1, (1 << 20) // len(chunk))).encode()
    for _ in range(total // len(block)):
        yield block


def workbook(path, sheet, shared=(), rels_padding=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="xml" ContentType='
                   '"application/xml"/></Types>')
        z.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
                   'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
                   'Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<workbook xmlns="http://schemas.openxmlformats.org/'
                   'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships"><sheets><sheet name="Orders" '
                   'sheetId="1" r:id="rId1"/></sheets></workbook>')
        for name, parts in (
            ("xl/_rels/workbook.xml.rels", [RELS, *rels_padding, "</Relationships>"]),
            ("xl/worksheets/sheet1.xml", ['<worksheet xmlns="http://schemas.openxmlformats.org/'
                                          'spreadsheetml/2006/main"><sheetData>', *sheet,
                                          "</sheetData></worksheet>"]),
            ("xl/sharedStrings.xml", ['<sst xmlns="http://schemas.openxmlformats.org/'
                                      'spreadsheetml/2006/main">', *shared, "</sst>"]),
        ):
            with z.open(name, "w", force_zip64=True) as part:
                for piece in parts:
                    part.write(piece if isinstance(piece, bytes) else piece.encode())


def wide_rows(count):
    yield cells(1, HEADERS) [:-len("</row>")] + '<c r="XFD1" t="inlineStr"><is><t>note</t></is></c></row>'
    batch = []
    for n in range(count):
        row = n + 2
        batch.append(cells(row, ROW.format(n, n).split(","))[:-len("</row>")]
                     + f'<c r="XFD{row}"><v>1</v></c></row>')
        if len(batch) == 1000:
            yield "".join(batch)
            batch = []
    yield "".join(batch)


def make_files(folder):
    files = {}
    def path(name):
        files[name] = os.path.join(folder, name)
        return files[name]
    workbook(path("cell-2gb.xlsx"), [cells(1, HEADERS), rows(2, 3),
             '<row r="5"><c r="A5" t="inlineStr"><is><t>', *repeated("A", 2 * GIB),
             "</t></is></c></row>"])
    workbook(path("shared-strings-2gb.xlsx"), [cells(1, HEADERS), rows(2, 10)],
             shared=list(repeated("<si><t>abcdefgh</t></si>", 2 * GIB)))
    workbook(path("rels-2gb.xlsx"), [cells(1, HEADERS), rows(2, 10)],
             rels_padding=list(repeated(" ", 2 * GIB)))
    workbook(path("blank-space-1gb.xlsx"), [cells(1, HEADERS), rows(2, 5),
             *repeated(" ", GIB), rows(7, 5)])
    workbook(path("16384-columns-100k-rows.xlsx"), wide_rows(100_000))
    header = (",".join(HEADERS) + "\n").encode()
    with open(path("no-newline-100mb.csv"), "wb") as out:
        out.write(header)
        for block in repeated("A", 100_000_000):
            out.write(block)
    with open(path("one-200mb-line.csv"), "wb") as out:
        out.write(header + (ROW.format(0, 0) + "\n").encode())
        for block in repeated("B", 200_000_000):
            out.write(block)
        out.write(b"\n" + (ROW.format(1, 1) + "\n").encode())
    with open(path("blank-lines-1gb.csv"), "wb") as out:
        out.write(header)
        for n in range(300):
            out.write((ROW.format(n, n) + "\n").encode())
        for block in repeated("\n", GIB):
            out.write(block)
    return files


def peak(stderr):
    found = re.search(r"peak memory: (\d+) KiB", stderr)
    return f"{int(found.group(1)) / 1024:.0f} MB" if found else "?"


def run(args, cwd):
    env = dict(os.environ, DECLARE_LOG="declare_batch::memory=info")
    done = subprocess.run([BINARY, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    first = next((l for l in done.stderr.splitlines() if " error: " in l), "")
    return done.returncode, peak(done.stderr), first.split(" error: ", 1)[-1][:90]


def endless_answer_server():
    class Endless(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()
            try:
                for block in repeated(" ", GIB):
                    self.wfile.write(block)
            except OSError:
                pass
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    print(f"| file or request | command | exit | peak memory | message |")
    print(f"| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        files = make_files(folder)
        for name, path in files.items():
            for command in (["validate", path, "--out", "out-" + name],
                            ["init", path, "--config-out", name + ".toml"]):
                code, memory, message = run(command, folder)
                print(f"| `{name}` ({os.path.getsize(path) / 1e6:.1f} MB) | {command[0]} | "
                      f"{code} | {memory} | {message} |")
        # The worst workbook uploaded to the page.
        os.makedirs(os.path.join(folder, "profiles"))
        with open(os.path.join(folder, "profiles", "try.toml"), "w") as out:
            out.write('[api]\nendpoint = "sandbox"\n')
        env = dict(os.environ, DECLARE_LOG="declare_batch::memory=info")
        serve = subprocess.Popen([BINARY, "serve", "--config-dir", "profiles", "--data", "data",
                                  "--addr", "127.0.0.1:0"], cwd=folder, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base = serve.stdout.readline().strip().rstrip("/")
        boundary = "hostile-boundary"
        with open(files["cell-2gb.xlsx"], "rb") as workbook_file:
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\n"
                    f"try\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename=\"bomb.xlsx\"\r\n\r\n").encode() + workbook_file.read() + \
                   f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(base + "/uploads", data=body, method="POST", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": base})
        try:
            status = urllib.request.urlopen(request, timeout=120).status
        except urllib.error.HTTPError as error:
            status = error.code
        serve.send_signal(2)
        _, stderr = serve.communicate(timeout=60)
        print(f"| `cell-2gb.xlsx` uploaded to the page | serve | HTTP {status} | {peak(stderr)} | |")
        # An API that answers without end.
        server = endless_answer_server()
        with open(os.path.join(folder, "orders.csv"), "w") as out:
            out.write(",".join(HEADERS) + "\n" + "\n".join(ROW.format(n, n) for n in range(3)) + "\n")
        key = os.path.abspath("tests/fixtures/vectors/client_private_pkcs8.pem")
        with open(os.path.join(folder, "endless.toml"), "w") as out:
            out.write(f'[api]\nendpoint = "http://127.0.0.1:{server.server_address[1]}"\n'
                      f'client_id = "C1"\nprivate_key = "{key}"\n[run]\nrate_per_sec = 0\n')
        code, memory, _ = run(["run", "orders.csv", "--config", "endless.toml", "--out", "endless"],
                              folder)
        print(f"| an API answer of 1 GB, 3 rows, 3 attempts each | run | {code} | {memory} | "
              "RESPONSE_TOO_LARGE, then U |")
        server.shutdown()


if __name__ == "__main__":
    main()
