"""One request to one target, behind the SSRF guard (I/O).

The host is resolved, every address judged by guard.decide, and the request then goes to the
judged address itself (the URL's host kept in `Host` and as the TLS server name, so the
certificate is still checked against it): a name cannot resolve to a public address for the
check and to a private one for the connection (DNS rebinding). Redirects are never followed
(a 3xx whose Location the guard refuses is reported as blocked); 5 s timeout; at most 64 KB of
the answer is read; proxies from the environment are ignored.
"""
from __future__ import annotations

import socket
import time
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from tokenledger.notify import guard
from tokenledger.notify.plan import Outcome
from tokenledger.notify.targets import BadTarget, Target, parse

TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 64 * 1024


def resolve(host: str, port: int) -> list[str]:
    """Every address the host has now (an IP literal: itself). Raises OSError when none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def vet(target: Target, allow_http) -> tuple[guard.Verdict, str | None]:
    """(verdict, the address to connect to). A failed lookup raises OSError (retried later)."""
    verdict = guard.scheme_verdict(target, allow_http)
    if not verdict.allowed:
        return verdict, None
    addresses = resolve(target.host, target.port)
    verdict = guard.decide(target, addresses, allow_http)
    return verdict, (addresses[0] if verdict.allowed else None)


def _pinned_url(target: Target, address: str) -> str:
    parts = urlsplit(target.url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((parts.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))


def _redirect_outcome(target: Target, response: httpx.Response, allow_http) -> Outcome:
    location = response.headers.get("location", "")
    try:
        there = parse(urljoin(target.url, location))
        verdict, _ = vet(there, allow_http)
    except (BadTarget, OSError) as e:
        verdict = guard.Verdict(False, f"unusable Location ({e})")
    if not verdict.allowed:
        return Outcome(status_code=response.status_code,
                       blocked=f"redirect not followed; its target is refused: {verdict.reason}")
    return Outcome(status_code=response.status_code)  # a redirect to an allowed place: not followed either


def post(target: Target, body: bytes, headers: dict, allow_http, client: httpx.Client) -> Outcome:
    try:
        verdict, address = vet(target, allow_http)
    except OSError as e:
        return Outcome(error=f"cannot resolve {target.host}: {e.__class__.__name__}")
    if not verdict.allowed:
        return Outcome(blocked=verdict.reason)
    host_header = target.host_port if target.port != (443 if target.scheme == "https" else 80) else (
        f"[{target.host}]" if ":" in target.host else target.host)
    request = client.build_request(
        "POST", _pinned_url(target, address), content=body,
        headers={**headers, "Host": host_header, "Content-Type": "application/json", "User-Agent": "tokenledger"},
        extensions={"sni_hostname": target.host, "timeout": httpx.Timeout(TIMEOUT_S).as_dict()},
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read >= MAX_ANSWER_BYTES or time.monotonic() > deadline:
                    break
        finally:
            response.close()
    except httpx.TimeoutException:
        return Outcome(error="timeout")
    except httpx.HTTPError as e:
        return Outcome(error=f"connection failed: {e.__class__.__name__}")
    if 300 <= response.status_code < 400:
        return _redirect_outcome(target, response, allow_http)
    return Outcome(status_code=response.status_code, retry_after=response.headers.get("retry-after"))


def new_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False)
