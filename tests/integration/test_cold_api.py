"""A user's first call on an instance through the served API (functions-framework, one process:
one instance), where the Auth lookup (revocation) runs beside the gate's commit on a guessed
budget (api/auth.py caller_standing_pending, budgets/cold.py): the real budget decides, a
revoked or disabled user is refused before OpenRouter with nothing left held, and a budget PUT
by an admin is in force at once on that instance."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests

from .budget_helpers import requests_from
from .cold_helpers import eventually, held, reservation_docs
from .served_api import served_api

PAID = "openai/gpt-4o-mini"
BODY = {"model": PAID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


@pytest.fixture(scope="module")
def base(stack, tmp_path_factory):
    with served_api(tmp_path_factory.mktemp("cold") / "function.log") as url:
        yield url


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def month() -> str:
    """The served API runs on the wall clock (the clock header is the emulator's only)."""
    return datetime.now(timezone.utc).strftime("%Y-%m")


def chat(base, user) -> requests.Response:
    return requests.post(f"{base}/v1/chat/completions", headers=user.headers, json=BODY, timeout=60)


def put_budget(base, admin, uid: str, **body) -> None:
    response = requests.put(f"{base}/v1/admin/budgets/{uid}", headers=admin.headers, json=body, timeout=30)
    assert response.status_code in (200, 201), response.text


def test_a_tiny_enforced_budget_refuses_the_first_call_with_nothing_sent_or_held(base, admin, auth, standin, db):
    user = auth.create_user("tiny")
    put_budget(base, admin, user.uid, monthly_budget=0.000001, enforce=True)  # $0.000001: below any paid call
    response = chat(base, user)
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["monthly_budget"] == 0.000001
    assert requests_from(standin, user.uid) == []
    assert held(db, user.uid, month()) == (0, 0, 0) and reservation_docs(db, user.uid) == []


@pytest.mark.parametrize("refusal", ["revoked", "disabled"])
def test_a_revoked_or_disabled_users_first_call_is_refused_before_openrouter_with_nothing_held(
        base, auth, standin, db, refusal):
    user = auth.create_user(refusal)
    if refusal == "revoked":
        auth.revoke_tokens(user.uid, valid_since=int(time.time()) + 1)  # every token issued so far
    else:
        auth.disable(user.uid)
    response = chat(base, user)
    expected = {"revoked": (401, "token_revoked"), "disabled": (403, "user_disabled")}[refusal]
    assert (response.status_code, response.json()["error"]["code"]) == expected, response.text
    assert requests_from(standin, user.uid) == []
    # Nothing held for them: no reservation, no lease kept for calls they may not make.
    assert eventually(lambda: (held(db, user.uid, month()), reservation_docs(db, user.uid)),
                      ((0, 0, 0), [])) == ((0, 0, 0), [])


def test_a_budget_lowered_between_calls_is_in_force_at_once_on_the_instance(base, admin, auth, standin, db):
    user = auth.create_user("lowered")
    first = chat(base, user)
    assert first.status_code == 200, first.text
    spent = first.json()["budget"]["spent"]
    put_budget(base, admin, user.uid, monthly_budget=spent + 0.000001, enforce=True)
    second = chat(base, user)
    assert second.status_code == 402, second.text
    assert len(requests_from(standin, user.uid)) == 1
    cost, reserved, in_flight = held(db, user.uid, month())
    assert (reserved, in_flight) == (0, 0) and reservation_docs(db, user.uid) == []  # the old lease went back


def test_renewals_racing_bursts_on_three_instances_fit_the_budget_exactly(api, auth, db, standin, tmp_path):
    """Leases of 2 calls (TOKENLEDGER_LEASE_CALLS=2) so renewals run constantly in the
    background; 3 served instances x 3 threads of one user call until refused, then one by one
    round the instances until the first 402. A budget a few leases deep admits exactly the calls
    that fit one by one: n = (budget - reserve) // cost + 1; every one is in the ledger once, and
    nothing is held once the leases are given back."""
    from concurrent.futures import ThreadPoolExecutor

    from .budget_helpers import BODY as CALL, put_budget as put, worst_case
    from .ledger_checks import expire_leases, held_beyond_leases, rows_for

    admin = auth.create_user("admin", admin=True)
    probe, user = auth.create_user("probe"), auth.create_user("renewals")
    assert api.request("POST", "/v1/chat/completions", probe, json=CALL).status_code == 200
    cost, reserve = rows_for(db, probe.uid)[0]["cost_nanos"], worst_case(api, probe)
    budget = 40 * cost + reserve + cost // 2
    fits = (budget - reserve) // cost + 1
    put(api, admin, user.uid, monthly_budget=float(budget) / 1e9, enforce=True, max_in_flight=None,
        requests_per_minute=None)
    stored = db.collection("user_budgets").document(user.uid).get().to_dict()
    budget = int(stored.get("monthly_budget_nanos") or round(float(stored["monthly_budget"]) * 1e9))
    fits = (budget - reserve) // cost + 1
    env = {"TOKENLEDGER_LEASE_CALLS": "2", "TOKENLEDGER_RATE_LIMIT_PER_MINUTE": "0"}
    with served_api(tmp_path / "a.log", **env) as a, served_api(tmp_path / "b.log", **env) as b, \
            served_api(tmp_path / "c.log", **env) as c:
        bases = [a, b, c]
        session = requests.Session()

        def call(base: str) -> requests.Response:
            return session.post(f"{base}/v1/chat/completions", json=CALL, headers=user.headers, timeout=120)

        def caller(k: int) -> list[int]:
            statuses, refused = [], 0
            while refused < 3:
                status = call(bases[k % 3]).status_code
                statuses.append(status)
                refused = refused + 1 if status == 402 else 0
            return statuses

        with ThreadPoolExecutor(9) as pool:
            statuses = [s for one in pool.map(caller, range(9)) for s in one]
        assert set(statuses) <= {200, 402}
        admitted, k, in_a_row = statuses.count(200), 0, 0
        while in_a_row < 3:  # every instance's idle lease goes back in its refused call's commit
            response = call(bases[k % 3])
            k += 1
            assert response.status_code in (200, 402), response.text
            admitted, in_a_row = (admitted + 1, 0) if response.status_code == 200 else (admitted, in_a_row + 1)
    rows = rows_for(db, user.uid)
    assert admitted == len(rows) == len(requests_from(standin, user.uid)) == fits
    assert sum(r["cost_nanos"] for r in rows) == fits * cost <= budget
    month_of = rows[0]["month"]
    assert eventually(lambda: held_beyond_leases(db, user.uid, month_of), (0, 0)) == (0, 0)
    expire_leases(db, user.uid)
    assert held(db, user.uid, month_of) == (fits * cost, 0, 0)


def test_concurrent_first_requests_on_a_fresh_instance_share_its_lease_book(auth, db, standin, tmp_path):
    """Four calls of one user released at once at an instance that has served nothing yet. The
    instance keeps one idle lease for the user afterwards (a second closes with its call), and
    nothing else is held. Its per-process state (budget cache, lease book) was built by each of
    the first requests for itself (an unlocked functools.lru_cache): the leases taken in the
    copies thrown away were lost to the instance, each holding 8 worst cases and an in-flight slot
    for nobody until it expired."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from .ledger_checks import held_beyond_leases, leases_of

    user = auth.create_user("fresh")
    # No per-minute limit: no lease renewed ahead for the next minute when the wall clock is near one.
    with served_api(tmp_path / "fresh.log", TOKENLEDGER_RATE_LIMIT_PER_MINUTE="0") as fresh:
        start = threading.Barrier(4)

        def fire(_: int) -> int:
            start.wait()
            return chat(fresh, user).status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(fire, range(4))) == [200] * 4
        assert chat(fresh, user).status_code == 200  # from the instance's idle lease
    assert held_beyond_leases(db, user.uid, month()) == (0, 0)
    assert len(leases_of(db, user.uid)) == 1


FREE = "meta-llama/llama-3.3-70b-instruct:free"


def test_a_tiny_budget_with_a_downgrade_is_served_downgraded_on_the_first_call(base, admin, auth, standin, db):
    """The guess ($1) would admit the paid call; the real budget refuses it and serves it on its
    `downgrade_to` model, counted once against the free quota, nothing left held."""
    from .cold_helpers import free_requests

    user = auth.create_user("downgraded")
    put_budget(base, admin, user.uid, monthly_budget=0.000001, enforce=True, downgrade_to=FREE,
               free_daily_requests=5)
    response = chat(base, user)
    assert response.status_code == 200, response.text
    assert response.headers["X-Tokenledger-Downgraded"] == f"{PAID} -> {FREE}"
    assert [r["body"]["model"] for r in requests_from(standin, user.uid)] == [FREE]
    assert free_requests(db, user.uid, datetime.now(timezone.utc)) == 1
    cost, reserved, in_flight = held(db, user.uid, month())
    assert (cost, reserved, in_flight) == (0, 0, 0) and reservation_docs(db, user.uid) == []


@pytest.fixture(scope="module")
def looks_up_every_call(stack, tmp_path_factory):
    """An instance that looks every caller up in Auth on every call (TOKENLEDGER_REVOCATION_CACHE_S=0)."""
    with served_api(tmp_path_factory.mktemp("standing") / "function.log", TOKENLEDGER_REVOCATION_CACHE_S="0",
                    TOKENLEDGER_RATE_LIMIT_PER_MINUTE="0") as url:
        yield url


def test_a_user_disabled_after_a_call_gives_the_instances_lease_back_on_their_next_call(
        looks_up_every_call, auth, standin, db):
    """Their next call is admitted from the instance's lease (no commit) while their Auth lookup
    runs; refused 403, the lease goes back whole: nothing is held for them any more."""
    from .ledger_checks import leases_of, rows_for

    user = auth.create_user("disabled-later")
    assert chat(looks_up_every_call, user).status_code == 200
    assert len(leases_of(db, user.uid)) == 1  # kept by the instance for their next call
    auth.disable(user.uid)
    refused = chat(looks_up_every_call, user)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "user_disabled"), refused.text
    assert len(requests_from(standin, user.uid)) == 1
    [row] = rows_for(db, user.uid)
    assert held(db, user.uid, month()) == (row["cost_nanos"], 0, 0)
    assert reservation_docs(db, user.uid) == []
