"""Budget-aware downgrade, plan cache re-admission, the audit log — on the emulators, through
served apis (functions-framework processes; three at once for the burst)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests
from requests.adapters import HTTPAdapter

from .budget_helpers import requests_from, worst_case
from .ledger_checks import month_doc, rows_for
from .plan_helpers import BODY, FREE, PAID, Served, on_plan, plan_id, plans_left_behind
from .served_api import served_api

__all__ = ["plans_left_behind"]  # autouse: this module's plans are deleted after it

HEADER = "X-Tokenledger-Downgraded"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_api(tmp_path_factory.mktemp("downgrade") / "api.log", TOKENLEDGER_DEFAULT_PLAN=plan_id("base")) as base:
        yield Served(base)


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


@pytest.fixture(scope="module")
def call_cost(api, auth, db):
    """What one call of BODY costs on PAID (as the stand-in bills it) and what the gate reserves."""
    probe = auth.create_user("probe")
    assert api.request("POST", "/v1/chat/completions", probe, json=BODY).status_code == 200
    return rows_for(db, probe.uid)[0]["cost_nanos"], worst_case(api, probe)


def month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


def test_an_over_budget_paid_call_is_served_on_the_free_model_and_says_so(served, auth, admin, db, standin):
    pid = plan_id("dg")
    served.put_plan(admin, pid, monthly_budget=0, enforce=True, downgrade_to=FREE, free_daily_requests=None)
    user = on_plan(auth, "dg", pid)
    answer = served.chat(user)
    assert answer.status_code == 200, answer.text
    assert answer.headers[HEADER] == f"{PAID} -> {FREE}"
    assert answer.json()["budget"]["downgraded"] is True and answer.json()["budget"]["plan"] == pid
    [row] = rows_for(db, user.uid)
    assert (row["requested_model"], row["model"], row["cost_nanos"]) == (PAID, FREE, 0)
    assert "downgraded" in row["flags"]
    assert [r["body"]["model"] for r in requests_from(standin, user.uid)] == [FREE]

    streamed = served.request("POST", "/v1/chat/completions", user, json={**BODY, "stream": True}, stream=True)
    assert streamed.status_code == 200 and streamed.headers[HEADER] == f"{PAID} -> {FREE}"
    assert b"[DONE]" in b"".join(streamed.iter_content(None))
    rows = sorted(rows_for(db, user.uid), key=lambda r: r["timestamp"])
    assert [(r["requested_model"], r["model"], r["cost_nanos"], "downgraded" in r["flags"]) for r in rows] == [
        (PAID, FREE, 0, True)] * 2


def test_when_the_downgrade_does_not_fit_either_the_answer_is_the_402(served, auth, admin, db, standin):
    pid = plan_id("dgq")
    served.put_plan(admin, pid, monthly_budget=0, enforce=True, downgrade_to=FREE, free_daily_requests=0)
    user = on_plan(auth, "dgq", pid)
    refused = served.chat(user)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "budget_exceeded"
    assert HEADER not in refused.headers
    assert rows_for(db, user.uid) == [] and requests_from(standin, user.uid) == []


def test_past_downgrade_at_the_call_is_downgraded_below_it_not(served, auth, admin, db, call_cost):
    pid = plan_id("dgat")
    served.put_plan(admin, pid, monthly_budget=1, enforce=True, downgrade_to=FREE, downgrade_at=0.5,
                    free_daily_requests=None)
    user = on_plan(auth, "dgat", pid)
    first = served.chat(user)
    assert first.status_code == 200 and HEADER not in first.headers and first.json()["budget"]["downgraded"] is False
    # The month's spend passes 50% of $1 (written as the ledger writes it): the next call is downgraded.
    db.document(f"user_usage/{user.uid}/months/{month()}").update({"cost_nanos": 600_000_000})
    time.sleep(0.1)
    # This instance's lease still sees the month as it was; a fresh reservation reads it back.
    served.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json={"email": "dgat@example.com"})
    second = served.chat(user)
    assert second.status_code == 200, second.text
    assert second.headers[HEADER] == f"{PAID} -> {FREE}"
    rows = sorted(rows_for(db, user.uid), key=lambda r: r["timestamp"])
    assert [(r["model"], r["cost_nanos"] == 0) for r in rows] == [(PAID, False), (FREE, True)]
    assert rows[0]["cost_nanos"] == call_cost[0]


def test_fifty_calls_at_once_over_three_instances_never_spend_past_the_budget(auth, admin, db, standin, call_cost,
                                                                            tmp_path):
    cost, reserve = call_cost
    budget = 9 * cost + reserve + cost // 2  # ten calls fit one by one, the eleventh does not
    pid = plan_id("burst")
    user = on_plan(auth, "burst", pid)
    with served_api(tmp_path / "a.log") as a, served_api(tmp_path / "b.log") as b, served_api(tmp_path / "c.log") as c:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_connections=3, pool_maxsize=50))
        bases = [Served(base, session) for base in (a, b, c)]
        bases[0].put_plan(admin, pid, monthly_budget=budget / 10**9, enforce=True, downgrade_to=FREE,
                          free_daily_requests=None, requests_per_minute=None, max_in_flight=None)
        for api in bases:
            assert api.budget(user)["plan"] == pid
        start = threading.Barrier(50)

        def fire(k: int) -> requests.Response:
            start.wait()
            return bases[k % 3].chat(user)

        standin.configure(latency_ms=300)
        try:
            with ThreadPoolExecutor(50) as pool:
                answers = list(pool.map(fire, range(50)))
        finally:
            standin.configure(latency_ms=0)
    assert [r.status_code for r in answers] == [200] * 50, [r.text for r in answers if r.status_code != 200][:2]
    downgraded = [r for r in answers if r.headers.get(HEADER)]
    rows = rows_for(db, user.uid)
    paid = [r for r in rows if r["model"] == PAID]
    free = [r for r in rows if r["model"] == FREE]
    assert len(rows) == 50 and len(free) == len(downgraded) and len(paid) + len(free) == 50
    assert all(r["cost_nanos"] == 0 and "downgraded" in r["flags"] and r["requested_model"] == PAID for r in free)
    assert 1 <= len(paid) <= 10
    assert sum(r["cost_nanos"] for r in rows) == len(paid) * cost <= budget
    assert month_doc(db, user.uid, month())["cost_nanos"] == len(paid) * cost
    print(f"\ndowngrade burst: 50 calls over 3 instances, {len(paid)} served paid (${len(paid) * cost / 1e9:.6f} "
          f"of ${budget / 1e9:.6f}), {len(free)} downgraded at $0")


def test_a_plan_raised_by_an_admin_re_admits_its_users_within_the_cache_time(auth, admin, db, tmp_path):
    pid = plan_id("raise")
    user = on_plan(auth, "raise", pid)
    env = {"TOKENLEDGER_PLAN_CACHE_S": "10"}
    with served_api(tmp_path / "a.log", **env) as a, served_api(tmp_path / "b.log", **env) as b:
        took, other = Served(a), Served(b)
        took.put_plan(admin, pid, monthly_budget=0, enforce=True)
        assert other.chat(user).status_code == 402  # B now holds the plan (loaded for this call)
        took.put_plan(admin, pid, monthly_budget=5, enforce=True)
        raised = time.monotonic()
        assert took.chat(user).status_code == 200  # at once on the instance that took the PUT
        assert other.chat(user).status_code == 402  # B's copy is younger than the cache time
        while (answer := other.chat(user)).status_code == 402 and time.monotonic() - raised < 60:
            time.sleep(0.25)
        assert answer.status_code == 200, answer.text
        print(f"\nplan raised through A: B re-admitted the user {time.monotonic() - raised:.1f} s later "
              f"(TOKENLEDGER_PLAN_CACHE_S=10)")


def test_admin_changes_are_in_the_audit_log_newest_first_in_pages(served, auth, admin, db, stack):
    pid = plan_id("audited")
    served.put_plan(admin, pid, monthly_budget=7)
    served.put_plan(admin, pid, monthly_budget=8, enforce=True)
    assert served.request("DELETE", f"/v1/admin/plans/{pid}", admin).status_code == 200
    user = on_plan(auth, "audited", None)
    assert served.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json={"monthly_budget": 4}).status_code == 201
    assert served.request("PUT", f"/v1/admin/plans/{pid}", admin, json={"monthly_budget": -1}).status_code == 400

    first = served.request("GET", "/v1/admin/audit?limit=2", admin).json()
    second = served.request("GET", f"/v1/admin/audit?limit=2&page_token={first['next_page_token']}", admin).json()
    entries = first["data"] + second["data"]
    assert [(e["action"], e["path"]) for e in entries] == [
        ("put", f"user_budgets/{user.uid}"), ("delete", f"plans/{pid}"), ("put", f"plans/{pid}"), ("put", f"plans/{pid}")]
    assert {(e["actor_uid"], e["actor_email"]) for e in entries} == {(admin.uid, admin.email)}
    assert (entries[0]["before"], entries[0]["after"]) == (None, {"monthly_budget": 4.0, "monthly_budget_nanos": 4_000_000_000})
    assert entries[1]["after"] is None and entries[1]["before"]["monthly_budget"] == 8.0
    assert (entries[2]["before"]["monthly_budget"], entries[2]["after"]) == (
        7.0, {"monthly_budget": 8.0, "monthly_budget_nanos": 8_000_000_000, "enforce": True})
    assert entries[3]["before"] is None and entries[3]["at"] <= entries[0]["at"]
    assert served.request("GET", "/v1/admin/audit", user).status_code == 403

    # Clients: no reading, no writing (firestore.rules), whatever the token.
    root = f"http://{stack.firestore_host}/v1/projects/{stack.project}/databases/(default)/documents"
    entry = f"{root}/audit_log/{entries[0]['id']}"
    body = {"fields": {"path": {"stringValue": "forged"}}}
    assert requests.get(entry, headers=user.headers, timeout=10).status_code == 403
    assert requests.get(entry, headers=admin.headers, timeout=10).status_code == 403
    assert requests.patch(entry, json=body, headers=user.headers, timeout=10).status_code == 403
    assert requests.patch(entry, json=body, headers=admin.headers, timeout=10).status_code == 403
    assert requests.patch(f"{root}/audit_log/new-{user.uid}", json=body, headers=admin.headers,
                          timeout=10).status_code == 403
