"""Firestore operations per chat call by kind of user, counted in the serving process, and what
they cost per 1,000 calls at Firestore's production prices."""
from __future__ import annotations

import time

import requests

from scripts.bench import paths
from scripts.bench.served import OpsProbe, served_api
from scripts.devkit.api_client import ApiClient
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table

CALLS = 20
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "benchmark"}], "max_tokens": 16}
# USD per 100,000 operations, Firestore Standard edition, https://cloud.google.com/firestore/pricing
# (regional us-central1; a multi-region location such as nam5 costs twice these).
PRICES = {"reads": 0.03, "writes": 0.09, "deletes": 0.01}
OVERHEAD_HEADER = "X-Tokenledger-Overhead-Ms"


def usd_per_1000(per_call: dict) -> float:
    return sum(per_call[op] * 1000 * PRICES[op] / 100_000 for op in PRICES)


def _stream(session: requests.Session, url: str, user) -> None:
    with session.post(url, json={**BODY, "stream": True}, headers=user.headers, stream=True, timeout=60) as r:
        r.raise_for_status()
        for _ in r.iter_lines():
            pass


def _give(api, auth, admin, user, budget: str) -> None:
    """The user's kind: none, soft or hard budget, credits, or a plan."""
    if budget == "credits":  # pure prepaid: every call paid by credits (docs/credits.md)
        api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin,
                    json={"monthly_budget": 0, "enforce": True}).raise_for_status()
        api.request("POST", f"/v1/admin/credits/{user.uid}", admin,
                    json={"amount": 1000, "reason": "bench", "idempotency_key": user.uid}).raise_for_status()
    elif budget == "plan":
        auth.set_claims(user.uid, {"stripeRole": "bench-ops-pro"})
        auth.refresh(user)
    elif budget != "none":
        api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin,
                    json={"monthly_budget": 1000, "enforce": budget == "hard"}).raise_for_status()


def run(stack) -> None:
    print("\n== Firestore operations and their cost per call (issue 11) ==")
    auth = AuthEmulator(stack.auth_host, stack.project)
    admin = auth.create_user("bench-ops-admin", admin=True)
    # A user's calls at most about once a second, bursts aside (nearly every user), write and read
    # the base documents; a hot user's calls (back to back, past a burst of 4) are spread over
    # shards (metering/hot_users.py).
    # "no budget document": the deployment's default budget applies ($1 enforced out of the box;
    # TOKENLEDGER_DEFAULT_MONTHLY_BUDGET= empty makes it none, and those calls skip the gate).
    kinds = {
        "no budget document": ("none", False, False),
        "budget, not enforced": ("soft", False, False),
        "budget, enforced": ("hard", False, False),
        "prepaid credits (budget $0 enforced, paid from the wallet)": ("credits", False, False),
        "no budget document, streamed": ("none", True, False),
        "hot user (back to back, past the burst), no budget document": ("none", False, True),
        "hot user, budget enforced": ("hard", False, True),
        # Plans (docs/budgets.md#plans): the allowance from the plan the token's claim names, resolved in memory.
        "on a plan (claim stripeRole), plan budget enforced": ("plan", False, False),
    }
    rows = []
    with served_api(counting=True, name="ops-api") as base:
        api = ApiClient(base)
        probe = OpsProbe(base)
        session = requests.Session()
        url = f"{base}/v1/chat/completions"

        def call(user, streamed: bool) -> bool:
            if streamed:
                _stream(session, url, user)
                return False
            response = api.request("POST", "/v1/chat/completions", user, json=BODY)
            response.raise_for_status()
            return OVERHEAD_HEADER in response.headers

        api.request("PUT", "/v1/admin/plans/bench-ops-pro", admin,
                    json={"monthly_budget": 1000, "enforce": True}).raise_for_status()
        for name, (budget, streamed, hot) in kinds.items():
            users = [auth.create_user("bench-ops") for _ in range(1 if hot else CALLS)]
            for user in users:
                _give(api, auth, admin, user, budget)
                call(user, streamed)  # warms the instance's caches for this user
            if not hot:
                time.sleep(1.1)  # every measured call comes over a second after its user's last
            probe.reset()
            headers_seen = sum(call(users[i % len(users)], streamed) for i in range(CALLS))
            ops = probe.read()
            per_call = {op: ops[op] / CALLS for op in ("reads", "writes", "deletes")}
            rows.append([name, f"{per_call['reads']:.2f}", f"{per_call['writes']:.2f}", f"{per_call['deletes']:.2f}",
                         f"{ops['commits'] / CALLS:.2f}", f"${usd_per_1000(per_call):.5f}",
                         "-" if streamed else f"{headers_seen}/{CALLS}"])
            print(f"    {name}: done", flush=True)
        paths.run(api, auth, admin, session, base, BODY)
    print_table(
        ["user", "reads/call", "writes/call", "deletes/call", "commits/call", "USD per 1,000 calls",
         f"{OVERHEAD_HEADER} present"],
        rows,
        title=f"Firestore operations per chat call ({CALLS} calls each after a warm-up; target: 0 reads without an "
              f"enforced budget). Prices per 100k: reads ${PRICES['reads']}, writes ${PRICES['writes']}, "
              f"deletes ${PRICES['deletes']} (us-central1)",
        numparse=False,
    )
