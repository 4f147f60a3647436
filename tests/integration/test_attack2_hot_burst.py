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

import requests
from requests.adapters import HTTPAdapter

from tokenledger import store
from tokenledger.budgets import reservations

from .budget_helpers import BODY, budget_for_ten_calls, open_reservations, put_budget, requests_from
from .ledger_checks import (actual_rollup, expected_rollup, expire_leases, held_beyond_leases, leases_of, month_doc,
                            rows_for)
from .served_api import served_api

INSTANCES = 3
CALLS_EACH = 10


def instances_session(bases: list[str], user) -> requests.Session:
    """One pooled session for the burst; each instance up and holding the user's budget."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=INSTANCES, pool_maxsize=INSTANCES * CALLS_EACH))
    for base in bases:
        warm = session.get(f"{base}/v1/budget", headers=user.headers, timeout=60)
        assert warm.status_code == 200, warm.text
    return session


def burst(session: requests.Session, bases: list[str], user, standin) -> list[requests.Response]:
    """INSTANCES x CALLS_EACH calls released at once, round the instances, each held 300 ms
    by the stand-in so that they overlap."""
    start = threading.Barrier(INSTANCES * CALLS_EACH)

    def fire(k: int) -> requests.Response:
        start.wait()
        return session.post(f"{bases[k % INSTANCES]}/v1/chat/completions", json=BODY, headers=user.headers,
                            timeout=120)

    standin.configure(latency_ms=300)
    try:
        with ThreadPoolExecutor(INSTANCES * CALLS_EACH) as pool:
            return list(pool.map(fire, range(INSTANCES * CALLS_EACH)))
    finally:
        standin.configure(latency_ms=0)


def test_attack2_a_burst_over_three_instances_on_a_hot_user_fits_the_budget_exactly(api, auth, db, standin, tmp_path):
    admin = auth.create_user("admin", admin=True)
    user = auth.create_user("hotburst")
    cost = budget_for_ten_calls(api, auth, db, admin, user).cost

    with served_api(tmp_path / "a.log") as a, served_api(tmp_path / "b.log") as b, \
            served_api(tmp_path / "c.log") as c:
        bases = [a, b, c]
        session = instances_session(bases, user)
        responses = burst(session, bases, user, standin)
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
        session = instances_session(bases, user)
        responses = burst(session, bases, user, standin)
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
    month = rows[0]["month"]
    # Nothing held but the instances' idle leases (at most one each: a second is closed when its
    # call settles), and nothing at all once they have expired and the check released them.
    assert held_beyond_leases(db, user.uid, month) == (0, 0) and len(leases_of(db, user.uid)) <= INSTANCES
    assert open_reservations(db, user.uid) == []
    expire_leases(db, user.uid)
    docs = {s.id: s.to_dict() for s in db.collection("user_usage").document(user.uid).collection("months").stream()}
    whole = reservations.totals_of(docs.values())
    assert (whole.cost_nanos, whole.reserved_nanos, whole.in_flight) == (sum(r["cost_nanos"] for r in rows), 0, 0)
    print(f"\nin-flight burst: {admitted} of {INSTANCES * CALLS_EACH} admitted; {len(docs)} month documents")
