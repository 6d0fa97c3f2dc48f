#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A misbehaving registry for the client's error paths (Python 3 stdlib only).

    badserver.py DIR     (started by tests/registry/start.sh bad DIR)

Listens on two free 127.0.0.1 ports, written to DIR/port (the registry) and DIR/port2 (a
"blob storage" origin that redirects point to). GET /v2/ answers 200. The repository name
picks the behaviour of /v2/REPO/manifests/REF and /v2/REPO/blobs/DIGEST:

  good         a small OCI manifest (with Docker-Content-Digest) / BLOB, honouring Range
  flaky500     the first request of each path answers 500, later ones as good
  flaky429     the same with 429 and Retry-After: 0
  flaky503     the same with 503
  always500    always 500
  hang         accepts the request and never answers (30 s)
  big          a manifest that never ends (no Content-Length), 64 KiB at a time
  biglen       a manifest announcing Content-Length: 100 MiB
  bigerror     404 with an error body that never ends
  wrongdigest  the manifest with a wrong Docker-Content-Digest
  trunc        the blob's Content-Length, then half of it, then close
  drop         the first request of each path as trunc (300000 bytes), later ones as good
  overflow     the blob plus 1000 more bytes (Content-Length says so)
  auth-*       as the rest of the name (after "auth-"), but only with Basic u:p (401 Basic
               challenge otherwise)
  auth-redir   307 to http://127.0.0.1:PORT2/storage/DIGEST, which answers 403 if an
               Authorization header arrives (it must be dropped for another origin)
  auth-redirsame  307 to /storage-same/DIGEST on this origin, which needs the Authorization

BLOB is 1 MiB + 123 bytes, byte i = (i * 31 + 7) % 256. GET /_count?p=PATH tells how many
requests PATH got, /_sent?p=PATH how many body bytes were written for it.
"""
import base64
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
BLOB = bytes((i * 31 + 7) % 256 for i in range(1024 * 1024 + 123))
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": BLOB_DIGEST, "size": len(BLOB)},
    "layers": [],
}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
COUNTS, SENT = {}, {}
LOCK = threading.Lock()
PORT2 = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("badserver: " + (fmt % args) + "\n")

    def reply(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error_json(self, code, ecode, msg, headers=()):
        body = json.dumps({"errors": [{"code": ecode, "message": msg}]}).encode()
        self.reply(code, body, headers=headers)

    def sent(self, path, n):
        with LOCK:
            SENT[path] = SENT.get(path, 0) + n

    def send_blob(self, path, data, limit=None, extra_len=0):
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-") and limit is None:
            start = int(rng[6:-1])
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start + extra_len))
        self.send_header("Docker-Content-Digest", BLOB_DIGEST)
        if limit is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        body = data[start:] if limit is None else data[start:limit]
        self.wfile.write(body)
        self.sent(path, len(body))
        if extra_len:
            self.wfile.write(b"x" * extra_len)
        self.wfile.flush()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path in ("/_count", "/_sent"):
            p = urllib.parse.parse_qs(url.query).get("p", [""])[0]
            with LOCK:
                n = (COUNTS if path == "/_count" else SENT).get(p, 0)
            return self.reply(200, b"%d" % n, "text/plain")
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1
            count = COUNTS[path]
        if path == "/v2/":
            return self.reply(200, b"{}", headers=[("Docker-Distribution-API-Version", "registry/2.0")])
        if path.startswith("/storage/"):
            if self.headers.get("Authorization"):
                return self.error_json(403, "DENIED", "authorization header leaked to storage")
            return self.send_blob(path, BLOB)
        if path.startswith("/storage-same/"):
            if not self.headers.get("Authorization"):
                return self.error_json(401, "UNAUTHORIZED", "authorization header dropped")
            return self.send_blob(path, BLOB)
        parts = path.split("/")
        # /v2/REPO/manifests/REF or /v2/REPO/blobs/DIGEST (REPO is one component here)
        if len(parts) != 5 or parts[1] != "v2" or parts[3] not in ("manifests", "blobs"):
            return self.error_json(404, "NAME_UNKNOWN", "repository name not known to registry")
        repo, kind = parts[2], parts[3]
        if repo.startswith("auth-"):
            auth = self.headers.get("Authorization", "")
            if auth != "Basic " + base64.b64encode(b"u:p").decode():
                return self.error_json(401, "UNAUTHORIZED", "authentication required",
                                       [("WWW-Authenticate", 'Basic realm="badserver"')])
            repo = repo[5:]
        if repo.startswith("flaky") and count == 1:
            code = int(repo[5:])
            msg = {500: "internal error", 429: "too many requests", 503: "unavailable"}[code]
            return self.error_json(code, "UNKNOWN", msg, [("Retry-After", "0")] if code == 429 else [])
        if repo == "always500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if repo == "hang":
            time.sleep(30)
            self.close_connection = True
            return
        if kind == "manifests":
            if repo == "big" or repo == "biglen" or repo == "bigerror":
                self.send_response(404 if repo == "bigerror" else 200)
                self.send_header("Content-Type", OCI_MANIFEST)
                if repo == "biglen":
                    self.send_header("Content-Length", str(100 << 20))
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                chunk = b" " * 65536
                try:
                    for _ in range(1024):
                        self.wfile.write(chunk)
                        self.sent(path, len(chunk))
                except OSError:
                    pass
                return
            digest = "sha256:" + "0" * 64 if repo == "wrongdigest" else MANIFEST_DIGEST
            return self.reply(200, MANIFEST, OCI_MANIFEST, [("Docker-Content-Digest", digest)])
        # blobs
        if repo == "redir":
            return self.reply(307, b"", headers=[("Location", "http://127.0.0.1:%d/storage/%s" % (PORT2, parts[4]))])
        if repo == "redirsame":
            return self.reply(307, b"", headers=[("Location", "/storage-same/%s" % parts[4])])
        try:
            if repo == "trunc":
                return self.send_blob(path, BLOB, limit=len(BLOB) // 2)
            if repo == "drop" and count == 1:
                return self.send_blob(path, BLOB, limit=300000)
            if repo == "overflow":
                return self.send_blob(path, BLOB, extra_len=1000)
            return self.send_blob(path, BLOB)
        except OSError:
            self.close_connection = True


def serve(server):
    server.serve_forever()


def main():
    global PORT2
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    for s in servers:
        s.daemon_threads = True
    PORT2 = servers[1].server_address[1]
    threading.Thread(target=serve, args=(servers[1],), daemon=True).start()
    for name, s in (("port2", servers[1]), ("port", servers[0])):
        with open(os.path.join(DIR, name + ".tmp"), "w") as f:
            f.write("%d\n" % s.server_address[1])
        os.rename(os.path.join(DIR, name + ".tmp"), os.path.join(DIR, name))
    serve(servers[0])


if __name__ == "__main__":
    main()
