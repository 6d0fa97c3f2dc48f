#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A minimal Docker token server for the tests (Python 3 stdlib + the openssl CLI).

    token_server.py DIR USER PASSWORD

Listens on a free 127.0.0.1 port (written to DIR/token.port) and answers
GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with
{"token", "access_token", "expires_in", "issued_at"}: an RS256 JWT signed with DIR/token.key
whose x5c header holds DIR/token.crt (the registry's rootcertbundle).

Basic credentials USER:PASSWORD get every action they ask for; a wrong password gets 401;
no credentials get a token with no access (the registry then answers 401 insufficient_scope).
Each request appends one line "user=U scopes=S" to DIR/token.log. TOKEN_TTL (env) sets
expires_in (default 300).
"""
import base64
import binascii
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR, USER, PASSWORD = sys.argv[1], sys.argv[2], sys.argv[3]
TTL = int(os.environ.get("TOKEN_TTL", "300"))
with open(os.path.join(DIR, "token.crt")) as f:
    CERT_B64 = base64.b64encode(ssl.PEM_cert_to_DER_cert(f.read())).decode()
LOG_LOCK = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(DIR, "token.key")],
                         input=payload, capture_output=True, check=True)
    return out.stdout


def make_token(service, access):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [CERT_B64]}
    claims = {"iss": "cove-test-issuer", "sub": USER, "aud": service, "exp": now + TTL,
              "nbf": now - 10, "iat": now, "jti": binascii.hexlify(os.urandom(8)).decode(),
              "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64url(sign(signing_input))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("token_server: " + (fmt % args) + "\n")

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.reply(404, {"details": "not found"})
        query = urllib.parse.parse_qs(url.query)
        user = ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return self.reply(400, {"details": "bad authorization header"})
            if user != USER or password != PASSWORD:
                with LOG_LOCK, open(os.path.join(DIR, "token.log"), "a") as log:
                    log.write("user=%s denied\n" % user)
                return self.reply(401, {"details": "incorrect username or password"})
        scopes = []
        for s in query.get("scope", []):
            scopes.extend(s.split(" "))
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3 or parts[0] != "repository":
                continue
            actions = parts[-1].split(",") if user else []
            access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                           "actions": actions})
        service = query.get("service", [""])[0]
        with LOG_LOCK, open(os.path.join(DIR, "token.log"), "a") as log:
            log.write("user=%s scopes=%s\n" % (user or "-", " ".join(scopes) or "-"))
        token = make_token(service, access)
        self.reply(200, {"token": token, "access_token": token, "expires_in": TTL,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = os.path.join(DIR, "token.port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, os.path.join(DIR, "token.port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
