#!/usr/bin/env python3
"""A local webhook receiver for tests and the demo: records what tokenledger delivers.

    python scripts/webhook_sink.py --host 127.0.0.1

Listens on two loopback ports: the first is the one the stack lists in
TOKENLEDGER_WEBHOOK_ALLOW_HTTP, the second is not (a delivery there must be refused by the guard,
so it must never receive anything). Prints exactly one line, "READY http://HOST:P http://HOST:Q".

POST paths (any port):
  /hook          200
  /slack         200 "ok" (as Slack answers)
  /flaky         500 to the first two requests of each X-Tokenledger-Event-Id whose body holds a
                 string armed with POST /_flaky {"match": "..."}, then 200; 200 at once otherwise
                 (so the other tests' alerts are delivered without waiting on backoff)
  /redirect      302 to http://169.254.169.254/latest/meta-data/ (the metadata server)
  anything else  404
Control (GET): /_received -> {"requests": [{"port", "path", "headers", "body", "status"}...]};
POST /_reset clears them.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REDIRECT_TO = "http://169.254.169.254/latest/meta-data/"
LOCK = threading.Lock()
RECEIVED: list[dict] = []
FLAKY_SEEN: dict[str, int] = {}
FLAKY_ARMED: set[str] = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # to stderr, one line a request
        sys.stderr.write("%s %s\n" % (self.server.server_address[1], fmt % args))

    def _answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_received":
            with LOCK:
                body = json.dumps({"requests": RECEIVED}).encode()
            return self._answer(200, body, {"Content-Type": "application/json"})
        return self._answer(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/_flaky":
            with LOCK:
                FLAKY_ARMED.add(json.loads(raw or b"{}").get("match") or "")
            FLAKY_ARMED.discard("")
            return self._answer(204)
        if self.path == "/_reset":
            with LOCK:
                RECEIVED.clear()
                FLAKY_SEEN.clear()
                FLAKY_ARMED.clear()
            return self._answer(204)
        status, body, headers = 404, b"", {}
        if self.path == "/hook":
            status = 200
        elif self.path == "/slack":
            status, body = 200, b"ok"
        elif self.path == "/flaky":
            event = self.headers.get("X-Tokenledger-Event-Id", "")
            text = raw.decode("utf-8", "replace")
            with LOCK:
                armed = any(match in text for match in FLAKY_ARMED)
                FLAKY_SEEN[event] = FLAKY_SEEN.get(event, 0) + 1
                status = 500 if armed and FLAKY_SEEN[event] <= 2 else 200
        elif self.path == "/redirect":
            status, headers = 302, {"Location": REDIRECT_TO}
        with LOCK:
            RECEIVED.append({"port": self.server.server_address[1], "path": self.path, "status": status,
                             "headers": dict(self.headers.items()), "body": raw.decode("utf-8", "replace")})
        self._answer(status, body, headers)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    servers = [ThreadingHTTPServer((args.host, 0), Handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("READY " + " ".join(f"http://{args.host}:{s.server_address[1]}" for s in servers), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
