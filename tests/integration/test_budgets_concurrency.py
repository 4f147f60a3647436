"""The hard cap under concurrency, through the real API: one user fires 50 calls at once at a
budget that admits about 10. The Functions emulator runs each in-flight request in a worker
process of its own (one per request, started on demand), so these really overlap: the stand-in
holds each call for 300 ms.

The emulator starts workers that are needed at the same moment at the same time, and then
sometimes gives two of them one port (firebase-tools' portfinder race): that worker never
answers. So the test first starts the 50 workers one after the other (warm_workers), then fires
the burst at warm workers."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import requests
from requests.adapters import HTTPAdapter

from .budget_helpers import open_reservations, put_budget, requests_from
from .ledger_checks import actual_rollup, expected_rollup, month_doc, rows_for

MODEL = "openai/gpt-4o-mini"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Count to three."}], "max_tokens": 40}
CALLS = 50


# The reservation the API makes for BODY, worked out by hand from docs/budgets.md: the prompt
# guess is ceil(15 characters / 3) + 8 per message + 1 = 14 tokens at gpt-4o-mini's $0.15 per
# million (150 nano-dollars a token) plus max_tokens 40 at $0.60 per million (600 a token).
WORST_CASE_NANOS = 14 * 150 + 40 * 600  # 26,100


def burst(stack, user, body: dict, calls: int) -> list[requests.Response]:
    """`calls` requests released at the same instant, each on its own connection."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=calls))
    start = threading.Barrier(calls)

    def fire(_):
        start.wait()
        return session.post(f"{stack.api_url}/v1/chat/completions", json=body, headers=user.headers, timeout=180)

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(fire, range(calls)))


def warm_workers(stack, auth, standin, count: int) -> None:
    """Leave `count` idle workers in the emulator, started about one at a time: `count` keepers
    (users) are added one by one, each sending calls back to back that the stand-in holds for
    3 s (under the upstream timeout), so every new keeper needs a new worker while the others'
    workers stay busy."""
    body = {**BODY, "model": "meta-llama/llama-3.3-70b-instruct:free", "max_tokens": 5}
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=count))
    stop = threading.Event()
    failures = []

    def keep(user):
        while not stop.is_set():
            response = session.post(f"{stack.api_url}/v1/chat/completions", json=body, headers=user.headers, timeout=120)
            # The emulator's own keep-alive race (see the burst below) only costs a keeper a retry.
            if response.status_code != 200 and not (response.status_code == 500 and _emulator_reset(response)):
                failures.append(response.text)

    standin.configure(latency_ms=3000)
    threads = []
    try:
        for _ in range(count):
            keeper = auth.create_user("keeper")
            thread = threading.Thread(target=keep, args=(keeper,), daemon=True)
            thread.start()
            threads.append(thread)
            started = time.monotonic()
            while not requests_from(standin, keeper.uid):  # its worker is serving it
                assert time.monotonic() - started < 180, "a worker did not start within 180 s"
                time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        standin.configure(latency_ms=0)
    assert not failures, failures[:3]


def test_fifty_concurrent_calls_never_overspend(stack, api, auth, db, standin):
    admin = auth.create_user("admin", admin=True)
    probe, user = auth.create_user("probe"), auth.create_user("burst")
    calibration = api.request("POST", "/v1/chat/completions", probe, json=BODY)
    assert calibration.status_code == 200, calibration.text
    cost = rows_for(db, probe.uid)[0]["cost_nanos"]  # every call of BODY costs the same
    reserve = WORST_CASE_NANOS
    assert api.request("GET", "/v1/models", probe).json()["data"] and reserve >= cost
    # One by one, call k is admitted while (k-1)*cost + reserve <= budget: exactly 10 fit.
    budget = 9 * cost + reserve + cost // 2
    sequential = (budget - reserve) // cost + 1
    assert sequential == 10
    put_budget(api, admin, user.uid, monthly_budget=float(Decimal(budget) / Decimal(10**9)), enforce=True)
    assert api.request("GET", "/v1/budget", user).json()["spent_nanos"] == 0

    warm_workers(stack, auth, standin, CALLS)
    standin.configure(latency_ms=300)
    responses = burst(stack, user, BODY, CALLS)
    standin.configure(latency_ms=0)

    # The emulator itself sometimes drops a request on its way to a warm worker ("socket hang
    # up": a keep-alive race in firebase-tools), answering {"code": "ECONNRESET"} before our code
    # ever runs. Only that answer is set apart; any other failure fails the test.
    dropped = [r for r in responses if r.status_code == 500 and _emulator_reset(r)]
    responses = [r for r in responses if r not in dropped]
    assert len(dropped) <= 2, [r.text for r in dropped]
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402}, [r.text for r in responses if r.status_code not in (200, 402)][:3]
    admitted = statuses.count(200)
    rows = rows_for(db, user.uid)
    spent = sum(row["cost_nanos"] for row in rows)
    print(f"\nconcurrency proof: {admitted} of {CALLS} admitted ({len(dropped)} dropped by the emulator), "
          f"sequential {sequential}, spent {spent} of {budget} nanos")

    # What the README claims: the burst admits exactly the calls that fit, never overspends, and
    # a refused call never reaches OpenRouter.
    assert admitted == sequential == 10
    assert spent == 10 * cost <= budget
    assert len(rows) == admitted == len(requests_from(standin, user.uid))
    assert all(r.json()["error"]["code"] == "budget_exceeded" for r in responses if r.status_code == 402)
    assert open_reservations(db, user.uid) == []
    month = month_doc(db, user.uid, rows[0]["month"])
    assert month["reserved_nanos"] == 0
    assert actual_rollup(month) == expected_rollup(rows)
    # Nothing leaked and nothing more fits: the next call is refused.
    assert api.request("POST", "/v1/chat/completions", user, json=BODY).status_code == 402


def _emulator_reset(response) -> bool:
    try:
        return response.json().get("code") == "ECONNRESET"
    except ValueError:
        return False
