"""Issue 5 numbers: time to first byte of a streamed call through the API vs directly from
the stand-in, and the time until [DONE] (which includes the ledger commit before it)."""
from __future__ import annotations

import os
import time

import requests

from scripts.bench.common import summary
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table

CALLS = 40
CHUNK_DELAY_MS = 20  # the stand-in pauses between chunks, as a model generating would
BODY = {"model": "openai/gpt-4o-mini", "stream": True,
        "messages": [{"role": "user", "content": "stream a benchmark answer of several words please"}]}


def _one(session: requests.Session, url: str, headers: dict, body: dict) -> tuple[float, float]:
    """(ms to the first content chunk, ms to [DONE])."""
    started = time.perf_counter()
    first = None
    with session.post(url, json=body, headers=headers, stream=True, timeout=60) as response:
        response.raise_for_status()
        for line in response.iter_lines(decode_unicode=True):
            if first is None and line.startswith("data:") and "[DONE]" not in line:
                first = time.perf_counter()
            if line.strip() == "data: [DONE]":
                break
    done = time.perf_counter()
    return ((first or done) - started) * 1000, (done - started) * 1000


def _series(label: str, fn) -> tuple[list[float], list[float]]:
    ttfb, total = [], []
    for i in range(CALLS):
        a, b = fn()
        ttfb.append(a)
        total.append(b)
        if (i + 1) % (CALLS // 4) == 0:
            print(f"    {label}: {i + 1}/{CALLS}", flush=True)
    return ttfb, total


def run(stack) -> None:
    print("\n== Streaming (issue 5) ==")
    control = requests.Session()
    control.post(f"{stack.standin_url}/_control/config", json={"stream_chunk_delay_ms": CHUNK_DELAY_MS}, timeout=10)
    try:
        user = AuthEmulator(stack.auth_host, stack.project).create_user("bench-stream")
        session = requests.Session()
        key = os.environ.get("OPENROUTER_API_KEY", "")
        direct_url = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
        api_url = f"{stack.api_url}/v1/chat/completions"

        def direct():
            return _one(session, direct_url, {"Authorization": f"Bearer {key}"}, {**BODY, "user": user.uid})

        def through_api():
            return _one(session, api_url, user.headers, BODY)

        through_api()  # warm the function instance (cold start is not what this measures)
        d_ttfb, d_total = _series("direct", direct)
        a_ttfb, a_total = _series("api", through_api)
    finally:
        control.post(f"{stack.standin_url}/_control/config", json={"stream_chunk_delay_ms": 0}, timeout=10)

    rows = []
    for name, direct_s, api_s in (("first chunk", d_ttfb, a_ttfb), ("[DONE]", d_total, a_total)):
        d50, d95, _ = summary(direct_s)
        a50, a95, _ = summary(api_s)
        rows.append([name, d50, d95, a50, a95, a50 - d50, a95 - d95])
    print_table(
        ["time to", "direct p50", "direct p95", "API p50", "API p95", "added p50", "added p95"],
        rows,
        title=f"Streamed calls in ms ({CALLS} sequential each, stand-in {CHUNK_DELAY_MS} ms between chunks); "
              "[DONE] through the API includes the ledger commit",
        floatfmt=".1f",
    )
