"""A page on another origin (not behind the Hosting rewrite) calls the API with fetch, as a web
app on its own domain would, and reads the headers the API exposes to it."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .helpers import rows_of

PAGE = b"<!doctype html><html lang='en'><head><title>elsewhere</title></head><body><h1>Another app</h1></body></html>"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture()
def other_origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


CALL = """async ([url, token, body]) => {
  const r = await fetch(url, {method: 'POST', body: JSON.stringify(body),
    headers: {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}});
  return {status: r.status, recorded: r.headers.get('X-Usage-Recorded'),
          generation: r.headers.get('X-Generation-Id'), retryAfter: r.headers.get('Retry-After'),
          origin: location.origin};
}"""


def test_page_on_another_origin_reads_the_exposed_headers(page, env, auth, db, standin, other_origin):
    user = auth.create_user("elsewhere")
    page.goto(other_origin)
    url = f"{env['API_URL']}/v1/chat/completions"
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
    got = page.evaluate(CALL, [url, user.id_token, body])
    assert got["origin"] == other_origin and not env["API_URL"].startswith(other_origin)
    assert got["status"] == 200
    assert got["recorded"] == "true"
    rows = rows_of(db, user.uid)
    assert len(rows) == 1 and got["generation"] == rows[0]["_id"]

    standin.script([{"status": 429, "message": "Rate limit exceeded", "retry_after": 9}], user=user.uid)
    got = page.evaluate(CALL, [url, user.id_token, body])
    assert (got["status"], got["retryAfter"]) == (429, "9")
