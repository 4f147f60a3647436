"""Issues 5 and 11: time to the first chunk of a streamed call through the API (served by
functions-framework, as Cloud Run serves it) vs directly from the stand-in, alternated call by
call, and the time until [DONE] (which includes the ledger commit before it).
Target: the first chunk within 2 ms of calling the stand-in directly."""
from __future__ import annotations

import os
import time

import requests

from scripts.bench.common import summary
from scripts.bench.served import served_api, served_bare_proxy
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table

CALLS = 60
# The API's calls go round a few users, as real traffic does: one user streaming back to back
# (a call every ~0.4 s here, two month writes each) would be a hot user, whose gate also reads
# the month's shards (metering/hot_users.py).
USERS = 8
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


def run(stack) -> None:
    print("\n== Streaming (issues 5 and 11) ==")
    control = requests.Session()
    control.post(f"{stack.standin_url}/_control/config", json={"stream_chunk_delay_ms": CHUNK_DELAY_MS}, timeout=10)
    d_ttfb, d_total, a_ttfb, a_total, f_ttfb, f_total = [], [], [], [], [], []
    try:
        auth = AuthEmulator(stack.auth_host, stack.project)
        users = [auth.create_user(f"bench-stream{i}") for i in range(USERS)]
        session = requests.Session()
        key = os.environ.get("OPENROUTER_API_KEY", "")
        direct_url = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
        with served_api(name="streaming-api") as base, served_bare_proxy() as bare:
            api_url = f"{base}/v1/chat/completions"
            for user in users:  # warm connections and the instance's caches
                _one(session, api_url, user.headers, BODY)
                _one(session, bare, {}, {**BODY, "user": user.uid})
            for i in range(CALLS):  # alternated: drift in the machine's load hits both alike
                user = users[i % USERS]
                a, b = _one(session, direct_url, {"Authorization": f"Bearer {key}"}, {**BODY, "user": user.uid})
                d_ttfb.append(a)
                d_total.append(b)
                a, b = _one(session, api_url, user.headers, BODY)
                a_ttfb.append(a)
                a_total.append(b)
                a, b = _one(session, bare, {}, {**BODY, "user": user.uid})
                f_ttfb.append(a)
                f_total.append(b)
                if (i + 1) % (CALLS // 4) == 0:
                    print(f"    streamed calls: {i + 1}/{CALLS} each way", flush=True)
    finally:
        control.post(f"{stack.standin_url}/_control/config", json={"stream_chunk_delay_ms": 0}, timeout=10)

    rows = []
    for name, direct_s, api_s, bare_s in (("first chunk", d_ttfb, a_ttfb, f_ttfb), ("[DONE]", d_total, a_total, f_total)):
        d50, d95, _ = summary(direct_s)
        a50, a95, _ = summary(api_s)
        f50, _, _ = summary(bare_s)
        rows.append([name, d50, d95, a50, a95, a50 - d50, a95 - d95, f50 - d50])
    print_table(
        ["time to", "direct p50", "direct p95", "API p50", "API p95", "added p50", "added p95",
         "bare proxy added p50"],
        rows,
        title=f"Streamed calls in ms ({CALLS} each, alternated, {USERS} users; stand-in {CHUNK_DELAY_MS} ms between chunks); "
              "target: first chunk added p50 <= 2 ms; [DONE] through the API includes the ledger commit; the bare "
              "proxy (scripts/bench/bare_proxy: functions-framework + httpx, nothing else) is the floor of serving",
        floatfmt=".1f",
    )
