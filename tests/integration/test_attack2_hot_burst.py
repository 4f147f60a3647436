"""Attack that held: one user bursts calls at three served instances at once (three
functions-framework processes: three hot-user tables, three budget caches). Each instance takes
the user's first reservations on the base month document, then spreads them over shards, marks
the base `sharded`, and every gate adds the shards it did not write; the ledgers settle on
shards of their own choosing. The ceiling must hold exactly: the calls admitted in the burst
and then one by one until the first 402 are exactly as many as fit one by one, the rows cost
exactly that many calls, and the 48 month documents' reservations and calls in flight sum to 0."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import requests
from requests.adapters import HTTPAdapter

from tokenledger import store
from tokenledger.budgets import reservations

from .budget_helpers import open_reservations, put_budget, requests_from
from .ledger_checks import actual_rollup, expected_rollup, month_doc, rows_for
from .served_api import served_api
from .test_budgets_concurrency import BODY, worst_case

INSTANCES = 3
CALLS_EACH = 10


def test_attack2_a_burst_over_three_instances_on_a_hot_user_fits_the_budget_exactly(api, auth, db, standin, tmp_path):
    admin = auth.create_user("admin", admin=True)
    probe, user = auth.create_user("probe"), auth.create_user("hotburst")
    calibration = api.request("POST", "/v1/chat/completions", probe, json=BODY)
    assert calibration.status_code == 200, calibration.text
    cost = rows_for(db, probe.uid)[0]["cost_nanos"]  # every call of BODY costs the same
    reserve = worst_case(api, probe)
    budget = 9 * cost + reserve + cost // 2  # one by one: exactly 10 calls fit
    assert (budget - reserve) // cost + 1 == 10
    put_budget(api, admin, user.uid, monthly_budget=float(Decimal(budget) / Decimal(10**9)), enforce=True,
               max_in_flight=None, requests_per_minute=None)

    with served_api(tmp_path / "a.log") as a, served_api(tmp_path / "b.log") as b, \
            served_api(tmp_path / "c.log") as c:
        bases = [a, b, c]
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=INSTANCES, pool_maxsize=INSTANCES * CALLS_EACH))
        for base in bases:  # each instance up and holding the user's budget in its cache
            warm = session.get(f"{base}/v1/budget", headers=user.headers, timeout=60)
            assert warm.status_code == 200, warm.text
        start = threading.Barrier(INSTANCES * CALLS_EACH)

        def fire(k: int) -> requests.Response:
            start.wait()
            return session.post(f"{bases[k % INSTANCES]}/v1/chat/completions", json=BODY, headers=user.headers,
                                timeout=120)

        standin.configure(latency_ms=300)
        try:
            with ThreadPoolExecutor(INSTANCES * CALLS_EACH) as pool:
                responses = list(pool.map(fire, range(INSTANCES * CALLS_EACH)))
        finally:
            standin.configure(latency_ms=0)
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 402}, [r.text for r in responses if r.status_code not in (200, 402)][:3]
        admitted = statuses.count(200)
        in_burst = admitted
        # Then one by one, round the instances, until the first refusal.
        k = 0
        while (r := session.post(f"{bases[k % INSTANCES]}/v1/chat/completions", json=BODY, headers=user.headers,
                                 timeout=60)).status_code == 200:
            admitted += 1
            k += 1
        assert r.status_code == 402, r.text

    rows = rows_for(db, user.uid)
    assert admitted == len(rows) == len(requests_from(standin, user.uid)) == 10
    assert sum(row["cost_nanos"] for row in rows) == 10 * cost
    month = rows[0]["month"]
    docs = {s.id: s.to_dict() for s in db.collection("user_usage").document(user.uid).collection("months").stream()}
    assert docs[month]["sharded"] is True and docs[month]["shard_count"] == store.USER_SHARDS
    assert len(docs) > 1  # the burst was spread over shards
    print(f"\nhot burst: {in_burst} of {INSTANCES * CALLS_EACH} admitted in the burst, {admitted} in all; "
          f"{len(docs)} month documents")
    whole = reservations.totals_of(docs.values())
    assert (whole.cost_nanos, whole.reserved_nanos, whole.in_flight) == (10 * cost, 0, 0)
    assert open_reservations(db, user.uid) == []
    assert actual_rollup(month_doc(db, user.uid, month)) == expected_rollup(rows)


def test_attack2_in_flight_refusals_racing_settles_on_shards_leave_nothing_held(api, auth, db, standin, tmp_path):
    """The same burst with at most 3 calls in flight: 429s given back on the shards they were
    taken on while admitted calls settle on others; after it, nothing is held anywhere."""
    admin = auth.create_user("admin", admin=True)
    user = auth.create_user("hotlimit")
    put_budget(api, admin, user.uid, monthly_budget=5, enforce=True, max_in_flight=3, requests_per_minute=None)
    with served_api(tmp_path / "a.log") as a, served_api(tmp_path / "b.log") as b, \
            served_api(tmp_path / "c.log") as c:
        bases = [a, b, c]
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=INSTANCES, pool_maxsize=INSTANCES * CALLS_EACH))
        for base in bases:
            assert session.get(f"{base}/v1/budget", headers=user.headers, timeout=60).status_code == 200
        start = threading.Barrier(INSTANCES * CALLS_EACH)

        def fire(k: int) -> requests.Response:
            start.wait()
            return session.post(f"{bases[k % INSTANCES]}/v1/chat/completions", json=BODY, headers=user.headers,
                                timeout=120)

        standin.configure(latency_ms=300)
        try:
            with ThreadPoolExecutor(INSTANCES * CALLS_EACH) as pool:
                responses = list(pool.map(fire, range(INSTANCES * CALLS_EACH)))
        finally:
            standin.configure(latency_ms=0)
        # Nothing left in flight: every instance admits the next call, one at a time, once the
        # burst's refusals' Retry-After (1 s, remembered per instance) has passed.
        time.sleep(1.5)
        after = [session.post(f"{base}/v1/chat/completions", json=BODY, headers=user.headers, timeout=60)
                 for base in bases]
        assert [r.status_code for r in after] == [200] * INSTANCES, [r.text for r in after]
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, [r.text for r in responses if r.status_code not in (200, 429)][:3]
    assert {r.json()["error"]["limit"] for r in responses if r.status_code == 429} <= {"max_in_flight"}
    rows = rows_for(db, user.uid)
    admitted = statuses.count(200) + INSTANCES
    assert admitted == len(rows) == len(requests_from(standin, user.uid))
    docs = {s.id: s.to_dict() for s in db.collection("user_usage").document(user.uid).collection("months").stream()}
    whole = reservations.totals_of(docs.values())
    assert (whole.cost_nanos, whole.reserved_nanos, whole.in_flight) == (sum(r["cost_nanos"] for r in rows), 0, 0)
    assert open_reservations(db, user.uid) == []
    print(f"\nin-flight burst: {admitted} of {INSTANCES * CALLS_EACH} admitted; {len(docs)} month documents")
