"""One webhook request through the real HTTP client against a real server on loopback
(allowlisted, as in development): answers, Retry-After, redirects not followed, the timeout, the
64 KB cap."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tokenledger.notify import plan, send
from tokenledger.notify.targets import parse

SEEN: list[str] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        SEEN.append(self.path)
        if self.path == "/slow":
            time.sleep(send.TIMEOUT_S + 1)
        if self.path == "/busy":
            return self._send(503, b"", {"Retry-After": "7"})
        if self.path == "/moved":
            return self._send(301, b"", {"Location": "https://93.184.216.34/elsewhere"})
        if self.path == "/huge":
            return self._send(200, b"x" * (4 * 1024 * 1024), {})
        return self._send(200, b"ok", {})

    def _send(self, status, body, headers):
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the 64 KB cap does


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def post(server, path, allow=True):
    with send.new_client() as client:
        return send.post(parse(f"http://{server}{path}"), b"{}", {}, (server,) if allow else (), client)


def test_an_allowlisted_receiver_gets_the_request(server):
    SEEN.clear()
    assert post(server, "/ok") == plan.Outcome(status_code=200, retry_after=None)
    assert SEEN == ["/ok"]


def test_not_allowlisted_plain_http_is_blocked_before_any_request(server):
    SEEN.clear()
    outcome = post(server, "/ok", allow=False)
    assert outcome.blocked and "https only" in outcome.blocked and SEEN == []


def test_retry_after_is_passed_on_and_the_answer_is_retried(server):
    outcome = post(server, "/busy")
    assert (outcome.status_code, outcome.retry_after, plan.classify(outcome)) == (503, "7", plan.RETRYING)


def test_a_redirect_is_not_followed(server):
    SEEN.clear()
    outcome = post(server, "/moved")
    assert (outcome.status_code, plan.classify(outcome)) == (301, plan.FAILED)  # a public place: failed, not blocked
    assert SEEN == ["/moved"]


def test_a_huge_answer_is_read_only_up_to_the_cap(server):
    assert post(server, "/huge").status_code == 200


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(server):
    assert post(server, "/slow") == plan.Outcome(error="timeout")
