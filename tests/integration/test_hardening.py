"""Issue 8's probes through the real stack: each attack reproduced, and shown refused or bounded.

Disabled and revoked users, a feature flood, an un-encodable value after billing, a timeout after
the request was sent, the month boundary, default budgets for everyone, the per-user rate
limit, and alert page tokens naming another user's alert."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
import requests

from scripts.devkit.sse import events
from tokenledger import logs
from tokenledger.budgets import check
from tokenledger.config import Settings

from .budget_helpers import at, open_reservations, put_budget, requests_from
from .ledger_checks import expire_leases, held_beyond_leases, leases_of, month_doc, rows_for
from .served_api import free_port, served_api

PAID = "openai/gpt-4o-mini"
FREE = "meta-llama/llama-3.3-70b-instruct:free"
SHORT_TIMEOUT = int(os.environ.get("TOKENLEDGER_UPSTREAM_TIMEOUT_S", "0"))


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def chat(api, user, headers=None, **body):
    body.setdefault("model", PAID)
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    body.setdefault("max_tokens", 20)
    return api.request("POST", "/v1/chat/completions", user, headers=headers, json=body)


def this_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


# ---- auth ------------------------------------------------------------------------------------

def test_disabled_user_is_refused_within_the_cache_time(api, auth, user):
    assert api.request("GET", "/v1/budget", user, headers=at("2031-05-01T10:00:00Z")).status_code == 200
    auth.disable(user.uid)
    # The instance looked the user up at 10:00:00; one minute later it looks again.
    refused = api.request("GET", "/v1/budget", user, headers=at("2031-05-01T10:01:00Z"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "user_disabled"
    assert chat(api, user, headers=at("2031-05-01T10:01:01Z")).status_code == 403


def test_revoked_tokens_are_refused_within_the_cache_time(api, auth, user):
    assert api.request("GET", "/v1/budget", user, headers=at("2031-05-02T10:00:00Z")).status_code == 200
    auth.revoke_tokens(user.uid, valid_since=int(time.time()) + 1)  # every token issued so far
    refused = api.request("GET", "/v1/budget", user, headers=at("2031-05-02T10:01:00Z"))
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "token_revoked"


# ---- never lose a billed call ------------------------------------------------------------------

@pytest.fixture()
def served(stack, tmp_path):
    log_path = tmp_path / "function.log"
    with served_api(log_path, TOKENLEDGER_MAX_FEATURES="3", TOKENLEDGER_RATE_LIMIT_PER_MINUTE="0") as base:
        yield base, log_path


def test_a_value_firestore_cannot_encode_after_billing_is_answered_and_logged(served, user, standin, db):
    base, log_path = served
    standin.script([{"usage": {"prompt_tokens": 2**63}}], user=user.uid)  # past Firestore's int64
    response = requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60,
                             json={"model": PAID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20})
    assert response.status_code == 200, response.text
    assert response.headers["X-Usage-Recorded"] == "false"
    assert response.json()["usage"]["prompt_tokens"] == 2**63
    gen_id = response.headers["X-Generation-Id"]
    time.sleep(0.5)
    log_text = log_path.read_text()
    assert logs.USAGE_NOT_RECORDED in log_text and gen_id in log_text
    assert rows_for(db, user.uid) == []


def test_feature_flood_is_counted_under_other_past_the_cap(served, user, db, auth, standin):
    base, _ = served
    admin = auth.create_user("admin", admin=True)

    def call(who, feature):
        response = requests.post(f"{base}/v1/chat/completions", headers=who.headers, timeout=60,
                                 json={"model": PAID, "messages": [{"role": "user", "content": "hi"}],
                                       "max_tokens": 5, "feature": feature})
        assert response.status_code == 200, response.text
        return response

    no_budget = auth.create_user("nobudget")  # skips the shared gate: no read before the call
    put = requests.put(f"{base}/v1/admin/budgets/{no_budget.uid}", headers=admin.headers, timeout=30,
                       json={"monthly_budget": None, "free_daily_requests": None})
    assert put.status_code == 201, put.text
    for who in (user, no_budget):
        for feature in ("f0", "f1", "f2", "f3", "f4", "f1"):
            call(who, feature)
        rows = rows_for(db, who.uid)
        assert sorted(r["feature"] for r in rows) == ["f0", "f1", "f1", "f2", "other", "other"]
        assert sorted(r["metadata"].get("feature_requested") for r in rows if r["feature"] == "other") == ["f3", "f4"]
        month = month_doc(db, who.uid, rows[0]["month"])
        assert set(month["by_feature"]) == {"f0", "f1", "f2", "other"}
        assert month["by_feature"]["other"]["calls"] == 2


def test_a_provider_name_firestore_reserves_is_still_recorded(api, user, standin, db):
    standin.script([{"provider": "__x__"}], user=user.uid)
    response = chat(api, user)
    assert response.status_code == 200 and response.headers["X-Usage-Recorded"] == "true", response.text
    [row] = rows_for(db, user.uid)
    assert row["provider"] == "__x__"
    assert set(month_doc(db, user.uid, row["month"])["by_provider"]) == {"(__x__)"}


@pytest.mark.skipif(not SHORT_TIMEOUT or SHORT_TIMEOUT > 10, reason="needs a short TOKENLEDGER_UPSTREAM_TIMEOUT_S")
def test_timeout_after_send_leaves_a_pending_row_holding_the_reservation_in_its_month(api, user, standin, db):
    standin.script([{"latency_ms": (SHORT_TIMEOUT + 2) * 1000}], user=user.uid)
    response = chat(api, user, headers=at("2031-06-30T23:59:59Z"))
    assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
    assert len(requests_from(standin, user.uid)) == 1  # it was sent, and OpenRouter billed it
    [row] = rows_for(db, user.uid)
    assert row["_id"].startswith("lost-") and row["cost_source"] == "pending" and row["status"] == "no_answer"
    assert row["month"] == "2031-06" and row["reserved_nanos"] == row["cost_nanos"] > 0
    # Beyond the instance's lease: the row's worst case, handed to it (no call reservation left).
    assert held_beyond_leases(db, user.uid, "2031-06") == (row["reserved_nanos"], 0)
    assert open_reservations(db, user.uid) == []
    assert expire_leases(db, user.uid) == 1
    assert month_doc(db, user.uid, "2031-07") is None

    # Settled in the next month: the reservation still goes back to June.
    script = [sys.executable, "-m", "tokenledger.tools.reconcile", "--pending-max-age", "0", "--no-drift",
              "--now", "2031-07-01T00:05:00+00:00"]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [settled] = rows_for(db, user.uid)
    assert settled["cost_source"] == "estimate" and "settled_at_estimate" in settled["flags"]
    june = month_doc(db, user.uid, "2031-06")
    assert (june["reserved_nanos"], june["cost_nanos"]) == (0, row["cost_nanos"])  # released in June


# ---- months and clocks -------------------------------------------------------------------------

def test_a_call_at_23_59_59_stays_in_its_month_plain_and_streamed(api, user, db):
    last_second = at("2031-07-31T23:59:59Z")
    assert chat(api, user, headers=last_second).status_code == 200
    streamed = api.http.post(f"{api.base}/v1/chat/completions", headers={**user.headers, **last_second}, stream=True,
                             json={"model": PAID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20,
                                   "stream": True}, timeout=60)
    assert streamed.status_code == 200
    list(events(streamed))  # the generator records the call after the request's clock has gone
    rows = rows_for(db, user.uid)
    assert sorted((r["month"], r["day"]) for r in rows) == [("2031-07", "2031-07-31")] * 2
    july = month_doc(db, user.uid, "2031-07")
    assert july["calls"] == 2 and held_beyond_leases(db, user.uid, "2031-07") == (0, 0)
    [lease] = leases_of(db, user.uid)  # one lease served both: the streamed call took no commit of its own
    assert lease["month"] == "2031-07"
    assert month_doc(db, user.uid, "2031-08") is None


# ---- budgets for everyone ----------------------------------------------------------------------

def test_out_of_the_box_users_have_a_modest_enforced_budget_and_free_quota(api, user, db, standin):
    status = api.request("GET", "/v1/budget", user).json()
    assert (status["monthly_budget"], status["enforce"], status["free_daily_requests"], status["source"]) == (
        1.0, True, 50, "default")
    month, day = this_month(), datetime.now(timezone.utc).strftime("%Y-%m-%d")
    usage = db.collection("user_usage").document(user.uid)
    usage.collection("months").document(month).set({"month": month, "user_id": user.uid, "cost_nanos": 999_999_000})
    refused = chat(api, user)
    assert refused.status_code == 402 and refused.json()["error"]["monthly_budget"] == 1.0
    usage.collection("days").document(day).set({"day": day, "user_id": user.uid, "free_requests": 50})
    free = chat(api, user, model=FREE)
    assert free.status_code == 429 and free.json()["error"]["code"] == "free_quota_exceeded"
    assert requests_from(standin, user.uid) == []


def test_scheduled_check_covers_users_on_the_default_budget(db, auth):
    user = auth.create_user("default")
    now = datetime(2031, 9, 15, 12, 0, tzinfo=timezone.utc)
    db.collection("user_usage").document(user.uid).collection("months").document("2031-09").set(
        {"month": "2031-09", "user_id": user.uid, "cost_nanos": 850_000_000})
    report = check.check_budgets(db, Settings(), now)
    assert f"{user.uid}_2031-09_0.8" in report.alerts and f"{user.uid}_2031-09_1.0" not in report.alerts
    alert = db.collection("budget_alerts").document(f"{user.uid}_2031-09_0.8").get().to_dict()
    assert (alert["current_cost_nanos"], alert["monthly_budget"]) == (850_000_000, 1.0)
    again = check.check_budgets(db, Settings(), now)
    assert not any(a.startswith(user.uid) for a in again.alerts)  # once


def test_put_budget_inherits_defaults_and_zero_means_none(api, admin, user):
    stored = put_budget(api, admin, user.uid, email="a@example.com")
    assert (stored["monthly_budget"], stored["enforce"], stored["free_daily_requests"]) == (1.0, True, 50)
    assert (stored["requests_per_minute"], stored["max_in_flight"], stored["source"]) == (60, 8, "user")
    put_budget(api, admin, user.uid, free_daily_requests=0, monthly_budget=0)
    free = chat(api, user, model=FREE)
    assert free.status_code == 429 and free.json()["error"]["code"] == "free_quota_exceeded"
    assert chat(api, user).status_code == 402


def test_an_enforced_budget_that_cannot_be_read_fails_closed(stack, user, standin, tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    with served_api(tmp_path / "function.log", FIRESTORE_EMULATOR_HOST=dead) as base:
        response = requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60,
                                 json={"model": PAID, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503 and response.json()["error"]["code"] == "budget_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert requests_from(standin, user.uid) == []


# ---- rate limits -------------------------------------------------------------------------------

def test_requests_per_minute_are_limited_and_a_flood_costs_no_writes(stack, auth, user, db, standin, tmp_path):
    # One server process (functions-framework), so the instance that refused is the one asked again.
    with served_api(tmp_path / "function.log") as base:
        admin = auth.create_user("admin", admin=True)
        put = requests.put(f"{base}/v1/admin/budgets/{user.uid}", headers=admin.headers, timeout=30,
                           json={"monthly_budget": 5, "requests_per_minute": 2})
        assert put.status_code == 201, put.text
        while datetime.now(timezone.utc).second > 45:  # four calls inside one clock minute
            time.sleep(1)

        def call():
            return requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60,
                                 json={"model": PAID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})

        assert [call().status_code for _ in range(2)] == [200, 200]
        asked_at = datetime.now(timezone.utc)
        refused = call()
        answered_at = datetime.now(timezone.utc)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "user_rate_limited"
        served_at = datetime.strptime(refused.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT")
        # The seconds left in the minute at the moment the server decided: somewhere between the
        # request and the answer (a second boundary may fall in between; the Date header is set later).
        seconds = range(asked_at.second, answered_at.second + 1)
        assert int(refused.headers["Retry-After"]) in {60 - s for s in seconds}
        minute = served_at.strftime("%Y-%m-%dT%H:%M")
        assert call().status_code == 429
    counter = db.collection("user_usage").document(user.uid).collection("minutes").document(minute)
    assert counter.get().to_dict()["requests"] == 3  # the second refusal came from memory: no write
    month = month_doc(db, user.uid, served_at.strftime("%Y-%m"))
    assert (month["calls"], month["reserved_nanos"], month["in_flight"]) == (2, 0, 0)
    assert open_reservations(db, user.uid) == []
    assert len(requests_from(standin, user.uid)) == 2


def test_calls_in_flight_are_limited(api, admin, user, db, standin):
    put_budget(api, admin, user.uid, monthly_budget=5, max_in_flight=1, requests_per_minute=None)
    standin.script([{"latency_ms": 3000}], user=user.uid)
    first: list = []
    slow = threading.Thread(target=lambda: first.append(chat(api, user)))
    slow.start()
    deadline = time.monotonic() + 20
    while not requests_from(standin, user.uid) and time.monotonic() < deadline:
        time.sleep(0.1)  # the first call is with OpenRouter
    second = chat(api, user)
    slow.join()
    assert first[0].status_code == 200
    assert second.status_code == 429 and second.json()["error"]["limit"] == "max_in_flight"
    assert month_doc(db, user.uid, this_month())["in_flight"] == 1  # the first call's lease keeps its slot
    assert held_beyond_leases(db, user.uid, this_month()) == (0, 0)
    assert chat(api, user).status_code == 200  # the next call on this instance is served by that lease


def test_a_crashed_calls_slot_does_not_block_the_user_once_its_reservation_expired(api, admin, user, db):
    put_budget(api, admin, user.uid, monthly_budget=5, max_in_flight=1)
    month = "2031-12"
    now = datetime(2031, 12, 5, 9, 0, tzinfo=timezone.utc)
    # What a call that crashed between the gate and the ledger leaves: its reservation (expired
    # ten minutes ago) and its slot.
    db.collection("reservations").document(f"crashed-{user.uid}").set({
        "user_id": user.uid, "month": month, "amount_nanos": 7_000, "amount": 7e-06,
        "created_at": now.replace(hour=8, minute=35), "expires_at": now.replace(hour=8, minute=50)})
    db.collection("user_usage").document(user.uid).collection("months").document(month).set(
        {"user_id": user.uid, "month": month, "reserved_nanos": 7_000, "in_flight": 1})
    response = chat(api, user, headers=at("2031-12-05T09:00:00Z"))
    assert response.status_code == 200, response.text
    assert open_reservations(db, user.uid) == []  # the crashed call's reservation was released
    december = month_doc(db, user.uid, month)
    assert december["calls"] == 1 and held_beyond_leases(db, user.uid, month) == (0, 0)


# ---- alerts ------------------------------------------------------------------------------------

def test_alert_page_token_does_not_reveal_another_users_alert(api, auth, user, db):
    other = auth.create_user("other")
    alert_id = f"{other.uid}_2031-11_0.8"
    db.collection("budget_alerts").document(alert_id).set(
        {"user_id": other.uid, "month": "2031-11", "threshold": 0.8, "created_at": datetime.now(timezone.utc)})
    theirs = api.request("GET", "/v1/alerts", user, params={"page_token": alert_id})
    missing = api.request("GET", "/v1/alerts", user, params={"page_token": f"{other.uid}_2031-11_0.5"})
    assert theirs.status_code == missing.status_code == 400
    assert theirs.json() == missing.json()
    assert api.request("GET", "/v1/alerts", other, params={"page_token": alert_id}).status_code == 200
