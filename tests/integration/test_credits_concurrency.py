"""The wallet under concurrency: 50 paid calls released at once over three served instances (three
functions-framework processes: three gates, three lease books), leases on, against a small
prepaid balance (monthly_budget 0, enforced). The balance must end exactly at grants − the sum
of the admitted calls' charges, to the nano, never below zero; every refused call a 402
credits_exhausted; nothing left held once the leases close."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from .budget_helpers import BODY, put_budget, requests_from, worst_case
from .ledger_checks import expire_leases, leases_of, rows_for
from .served_api import served_api
from .test_credits import DOLLAR, calibrated_cost, grant, wallet_doc

INSTANCES = 3
CALLS = 50
LEASE_CALLS = 2  # a lease of 2 worst cases, taken while 8 are left: leases in play on a small balance


def test_fifty_concurrent_paid_calls_over_three_instances_spend_the_wallet_to_the_nano(api, auth, db, standin,
                                                                                       tmp_path):
    cost = calibrated_cost(api, auth, db)
    admin, user = auth.create_user("admin", admin=True), auth.create_user("burst")
    worst = worst_case(api, user)
    put_budget(api, admin, user.uid, monthly_budget=0, enforce=True, requests_per_minute=None, max_in_flight=None)
    # Two grants adding up to room for a lease on the first instance (4 x its ask) and one call
    # more: a small balance, which the 50 calls overrun.
    grants = [4 * LEASE_CALLS * worst, worst + 12_345]
    assert sum(grants) < (CALLS - 10) * cost, "the stand-in's price changed: the burst would not overrun"
    for k, amount in enumerate(grants):
        assert grant(api, admin, user.uid, amount / DOLLAR, f"burst-{k}").status_code == 201
    env = {"TOKENLEDGER_LEASE_CALLS": str(LEASE_CALLS)}
    with served_api(tmp_path / "a.log", **env) as a, served_api(tmp_path / "b.log", **env) as b, \
            served_api(tmp_path / "c.log", **env) as c:
        bases = [a, b, c]
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=INSTANCES, pool_maxsize=CALLS))
        for base in bases:  # each instance up, the user's budget and wallet in its cache
            assert session.get(f"{base}/v1/credits", headers=user.headers, timeout=60).status_code == 200
        start = threading.Barrier(CALLS)

        def fire(k: int) -> requests.Response:
            start.wait()
            return session.post(f"{bases[k % INSTANCES]}/v1/chat/completions", json=BODY, headers=user.headers,
                                timeout=120)

        standin.configure(latency_ms=300)
        try:
            with ThreadPoolExecutor(CALLS) as pool:
                responses = list(pool.map(fire, range(CALLS)))
        finally:
            standin.configure(latency_ms=0)
        leased_during = len(leases_of(db, user.uid))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 402}, [r.text for r in responses if r.status_code not in (200, 402)][:3]
        refused = [r.json()["error"]["code"] for r in responses if r.status_code == 402]
        assert refused and set(refused) == {"credits_exhausted"}
        in_burst = statuses.count(200)
        # What the burst left is spendable: the instances' leases closed (as the check does when
        # they expire), calls one by one until the first refusal.
        expire_leases(db, user.uid)
        after = 0
        while (r := session.post(f"{bases[0]}/v1/chat/completions", json=BODY, headers=user.headers,
                                 timeout=60)).status_code == 200:
            after += 1
        assert (r.status_code, r.json()["error"]["code"]) == (402, "credits_exhausted"), r.text

    admitted = in_burst + after
    rows = rows_for(db, user.uid)
    assert admitted == len(rows) == len(requests_from(standin, user.uid))
    charges = sum(row["cost_nanos"] for row in rows)
    assert charges == admitted * cost
    # pure prepaid: every nano of every call was paid by credits
    assert [(row["allowance_nanos"], row["credits_nanos"]) for row in rows] == [(0, cost)] * admitted
    # what the user sees with a lease still open: its spending already counted
    seen = requests.get(f"{api.base}/v1/credits", headers=user.headers, timeout=60).json()
    assert seen["balance_nanos"] == sum(grants) - charges
    expire_leases(db, user.uid)
    wallet = wallet_doc(db, user.uid)
    print(f"\ncredits burst: {in_burst} of {CALLS} admitted in the burst over {INSTANCES} instances "
          f"({leased_during} lease documents open after it), {after} more one by one; grants {sum(grants)} - "
          f"charges {charges} = balance {wallet['balance_nanos']} nanos, held {wallet['held_nanos']}")
    assert wallet["balance_nanos"] == sum(grants) - charges
    assert 0 <= wallet["balance_nanos"] < worst  # never below zero, and nothing that fitted left unspent
    assert wallet["held_nanos"] == 0
