"""Firestore operations per chat call by kind of user, counted in the serving process, and what
they cost per 1,000 calls at Firestore's production prices."""
from __future__ import annotations

import requests

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


def run(stack) -> None:
    print("\n== Firestore operations and their cost per call (issue 11) ==")
    auth = AuthEmulator(stack.auth_host, stack.project)
    admin = auth.create_user("bench-ops-admin", admin=True)
    kinds = {
        "no budget": auth.create_user("bench-ops-none"),
        "budget, not enforced": auth.create_user("bench-ops-soft"),
        "budget, enforced": auth.create_user("bench-ops-hard"),
        "no budget, streamed": auth.create_user("bench-ops-stream"),
    }
    rows = []
    with served_api(counting=True, name="ops-api") as base:
        api = ApiClient(base)
        probe = OpsProbe(base)
        api.request("PUT", f"/v1/admin/budgets/{kinds['budget, not enforced'].uid}", admin,
                    json={"monthly_budget": 1000}).raise_for_status()
        api.request("PUT", f"/v1/admin/budgets/{kinds['budget, enforced'].uid}", admin,
                    json={"monthly_budget": 1000, "enforce": True}).raise_for_status()
        session = requests.Session()
        url = f"{base}/v1/chat/completions"
        for name, user in kinds.items():
            streamed = name.endswith("streamed")
            # The first call of each user warms the instance's caches (catalog, budgets): the
            # steady state is what every later call pays.
            (_stream(session, url, user) if streamed else api.request("POST", "/v1/chat/completions", user, json=BODY))
            probe.reset()
            headers_seen = 0
            for _ in range(CALLS):
                if streamed:
                    _stream(session, url, user)
                else:
                    response = api.request("POST", "/v1/chat/completions", user, json=BODY)
                    response.raise_for_status()
                    headers_seen += OVERHEAD_HEADER in response.headers
            ops = probe.read()
            per_call = {op: ops[op] / CALLS for op in ("reads", "writes", "deletes")}
            rows.append([name, f"{per_call['reads']:.2f}", f"{per_call['writes']:.2f}", f"{per_call['deletes']:.2f}",
                         f"{ops['commits'] / CALLS:.2f}", f"${usd_per_1000(per_call):.5f}",
                         "-" if streamed else f"{headers_seen}/{CALLS}"])
    print_table(
        ["user", "reads/call", "writes/call", "deletes/call", "commits/call", "USD per 1,000 calls",
         f"{OVERHEAD_HEADER} present"],
        rows,
        title=f"Firestore operations per chat call, steady state ({CALLS} calls each after one warm-up; target: 0 reads "
              f"without an enforced budget). Prices per 100k: reads ${PRICES['reads']}, writes ${PRICES['writes']}, "
              f"deletes ${PRICES['deletes']} (us-central1)",
        numparse=False,
    )
