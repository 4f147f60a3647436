"""Budgets through the real API: admin-only routes, validation, live status, hard caps (402
before OpenRouter), the free-model quota, real-time alerts and mail, month rollover."""
from __future__ import annotations

import pytest

from .budget_helpers import alert_ids, at, open_reservations, put_budget, requests_from
from .conftest import Api
from .ledger_checks import expire_leases, held_beyond_leases, leases_of, month_doc, rows_for
from .served_api import served_api

PAID = "openai/gpt-4o-mini"
FREE = "meta-llama/llama-3.3-70b-instruct:free"


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


@pytest.fixture(scope="module")
def mail_api(http, tmp_path_factory):
    """The API with mail on (TOKENLEDGER_MAIL_ENABLED), whatever the stack was started with."""
    with served_api(tmp_path_factory.mktemp("mail") / "api.log", TOKENLEDGER_MAIL_ENABLED="true") as base:
        yield Api(base, http)


def test_user_without_budget_gets_null_budget(api, admin, user):
    put_budget(api, admin, user.uid, monthly_budget=None, free_daily_requests=None)  # no budget at all
    response = api.request("GET", "/v1/budget", user)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["monthly_budget"] is None and body["remaining"] is None and body["percentage_used"] is None
    assert body["spent"] == 0 and body["enforce"] is False


def test_admin_routes_refuse_non_admins(api, user):
    for method, path, kwargs in (
        ("PUT", f"/v1/admin/budgets/{user.uid}", {"json": {"monthly_budget": 100}}),
        ("GET", f"/v1/admin/budgets/{user.uid}", {}),
        ("GET", "/v1/admin/alerts", {}),
    ):
        response = api.request(method, path, user, **kwargs)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
        assert api.request(method, path, None, **kwargs).status_code == 401
    assert api.request("GET", f"/v1/admin/budgets/{user.uid}", user).status_code == 403


@pytest.mark.parametrize(
    "body, words",
    [
        ({"monthly_budget": -1}, "monthly_budget"),
        ({"monthly_budget": "10"}, "monthly_budget"),
        ({"monthly_budget": 10, "alert_thresholds": [1.0, 0.8]}, "sorted"),
        ({"monthly_budget": 10, "alert_thresholds": [0.8, 0.8]}, "unique"),
        ({"monthly_budget": 10, "alert_thresholds": [0, 1]}, "(0, 10]"),
        ({"monthly_budget": 10, "alert_thresholds": [0.5, 11]}, "(0, 10]"),
        ({"monthly_budget": 10, "enforce": "yes"}, "enforce"),
        ({"monthly_budget": 10, "email": "not-an-address"}, "email"),
        ({"monthly_budget": 10, "free_daily_requests": -3}, "free_daily_requests"),
        ({"monthly_budget": 10, "colour": "red"}, "colour"),
    ],
)
def test_invalid_budgets_are_400_and_write_nothing(api, admin, user, db, body, words):
    response = api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_budget" and words in error["message"]
    assert not db.collection("user_budgets").document(user.uid).get().exists
    assert list(db.collection("user_usage").document(user.uid).collection("months").stream()) == []  # no copy either


def test_put_then_get_budget_keeps_created_at(api, admin, user):
    first = put_budget(api, admin, user.uid, monthly_budget=25, alert_thresholds=[0.5, 0.9, 1.0], email="a@example.com")
    assert (first["monthly_budget"], first["alert_thresholds"], first["source"]) == (25.0, [0.5, 0.9, 1.0], "user")
    second = put_budget(api, admin, user.uid, monthly_budget=30.5, enforce=True)
    assert second["created_at"] == first["created_at"] and second["updated_at"] >= first["updated_at"]
    got = api.request("GET", f"/v1/admin/budgets/{user.uid}", admin).json()
    assert (got["monthly_budget"], got["enforce"], got["alert_thresholds"]) == (30.5, True, [0.8, 1.0])


def test_enforced_budget_refuses_with_402_before_openrouter(api, admin, user, db, standin):
    put_budget(api, admin, user.uid, monthly_budget=0.0001, enforce=True)
    response = api.chat(user, model=PAID, max_tokens=1000)
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "spent $0.00 of $0.000100" in error["message"]
    # The worst case, by hand (docs/budgets.md, the request policy's bound): the message's 39 JSON
    # bytes {"role":"user","content":"Hello there"} + 8 per message = 47 prompt tokens at 150
    # nano-dollars, plus max_tokens 1000 at 600: 607,050 nano-dollars.
    assert (error["spent"], error["monthly_budget"], error["estimated_cost"]) == (0, 0.0001, 0.00060705)
    assert "could cost up to $0.000607" in error["message"]
    assert requests_from(standin, user.uid) == []  # nothing was sent to OpenRouter
    assert open_reservations(db, user.uid) == [] and leases_of(db, user.uid) == []
    assert month_doc(db, user.uid, _month())["reserved_nanos"] == 0
    # Free models are never refused by the dollar budget.
    assert api.chat(user, model=FREE).status_code == 200


def test_failed_upstream_call_releases_its_reservation(api, admin, user, db, standin):
    # No per-minute limit: the lease's request grant never runs out here, so no renewal ahead
    # replaces it between the two calls (budgets/renewal.py) and the same lease serves both.
    put_budget(api, admin, user.uid, monthly_budget=5, enforce=True, requests_per_minute=None)
    standin.script([{"status": 500}], user=user.uid)
    response = api.chat(user, model=PAID, max_tokens=100)
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_error", response.text
    assert open_reservations(db, user.uid) == []
    # What stays is the instance's lease for the next call, untouched: nothing was billed.
    [lease] = leases_of(db, user.uid)
    assert held_beyond_leases(db, user.uid, _month()) == (0, 0)
    assert month_doc(db, user.uid, _month())["reserved_nanos"] == lease["amount_nanos"] > 0
    assert api.request("GET", "/v1/budget", user).json()["reserved_nanos"] == 0  # no call in progress
    ok = api.chat(user, model=PAID, max_tokens=100)
    assert ok.status_code == 200 and ok.json()["budget"]["reserved"] == 0  # its own lease is not "held"
    [after] = leases_of(db, user.uid)  # the same lease served it, less the call's cost
    assert after["amount_nanos"] == lease["amount_nanos"] - rows_for(db, user.uid)[0]["cost_nanos"]
    assert expire_leases(db, user.uid) == 1
    assert month_doc(db, user.uid, _month())["reserved_nanos"] == 0


def test_realtime_alerts_once_per_threshold_with_mail(api, mail_api, admin, user, db, standin):
    # Cents, not dollars: test_reconcile_drift compares this month's ledger with the stand-in's.
    put_budget(api, admin, user.uid, monthly_budget=0.01, alert_thresholds=[0.5, 0.8, 1.0], email="owner@example.com",
               enforce=False)
    seen = []
    for cost in ("0.006", "0.001", "0.002", "0.003"):
        standin.script([{"cost": cost}], user=user.uid)
        response = mail_api.chat(user, model=PAID)
        assert response.status_code == 200, response.text
        seen.append(response.json()["budget"])
        assert response.json()["usage"]["cost"] == float(cost)
    assert [b["spent_nanos"] for b in seen] == [6_000_000, 7_000_000, 9_000_000, 12_000_000]
    assert [b["percentage_used"] for b in seen] == [60.0, 70.0, 90.0, 120.0]
    assert seen[-1]["remaining"] == 0 and seen[-1]["monthly_budget"] == 0.01

    month = _month()
    assert alert_ids(db, user.uid) == {f"{user.uid}_{month}_{t}" for t in ("0.5", "0.8", "1.0")}
    docs = {t: db.collection("budget_alerts").document(f"{user.uid}_{month}_{t}").get().to_dict() for t in ("0.5", "0.8", "1.0")}
    assert {d["source"] for d in docs.values()} == {"realtime"}
    assert [docs[t]["alert_type"] for t in ("0.5", "0.8", "1.0")] == ["budget_threshold", "budget_threshold", "budget_exceeded"]
    # Each alert carries the cost of the call that crossed it.
    assert [docs[t]["current_cost_nanos"] for t in ("0.5", "0.8", "1.0")] == [6_000_000, 9_000_000, 12_000_000]
    assert docs["1.0"]["percentage_used"] == 120.0 and docs["1.0"]["monthly_budget"] == 0.01

    listed = api.request("GET", "/v1/alerts", user, params={"limit": 2}).json()
    assert [a["threshold"] for a in listed["data"]] == [1.0, 0.8]  # newest first
    rest = api.request("GET", "/v1/alerts", user, params={"limit": 2, "page_token": listed["next_page_token"]}).json()
    assert [a["threshold"] for a in rest["data"]] == [0.5] and rest["next_page_token"] is None
    admin_view = api.request("GET", "/v1/admin/alerts", admin, params={"month": month, "limit": 100}).json()
    assert {f"{user.uid}_{month}_{t}" for t in ("0.5", "0.8", "1.0")} <= {a["id"] for a in admin_view["data"]}

    mails = [db.collection("mail").document(f"{user.uid}_{month}_{t}").get() for t in ("0.5", "0.8", "1.0")]
    assert all(m.exists for m in mails)
    mail = mails[2].to_dict()
    assert mail["to"] == "owner@example.com"
    assert month in mail["message"]["subject"] and "$0.012000 of your $0.010000" in mail["message"]["text"]
    assert mail["message"]["html"].startswith("<p>")


def test_alert_listing_validates_its_parameters(api, admin, user):
    assert api.request("GET", "/v1/alerts", user, params={"limit": 0}).json()["error"]["code"] == "invalid_limit"
    assert api.request("GET", "/v1/alerts", user, params={"page_token": "nope"}).status_code == 400
    assert api.request("GET", "/v1/admin/alerts", admin, params={"month": "2026-13"}).json()["error"]["code"] == "invalid_month"


def test_free_daily_quota_is_429_until_the_next_utc_day(api, admin, user, standin):
    put_budget(api, admin, user.uid, monthly_budget=0, enforce=True, free_daily_requests=2)
    late = at("2031-03-10T23:00:00Z")
    for _ in range(2):
        assert api.request("POST", "/v1/chat/completions", user, headers=late, json=_free_body()).status_code == 200
    refused = api.request("POST", "/v1/chat/completions", user, headers=late, json=_free_body())
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "free_quota_exceeded"
    assert refused.headers["Retry-After"] == "3600"
    assert len(requests_from(standin, user.uid)) == 2
    status = api.request("GET", "/v1/budget", user, headers=late).json()
    assert status["free_requests_today"] == 2 and status["free_daily_requests"] == 2
    # A new UTC day, a new count.
    assert api.request("POST", "/v1/chat/completions", user, headers=at("2031-03-11T00:00:05Z"), json=_free_body()).status_code == 200
    # Paid calls are not counted against the free quota (and this budget of $0 refuses them).
    assert api.request("POST", "/v1/chat/completions", user, headers=late, json=_paid_body()).status_code == 402


def test_a_new_month_needs_no_reset(api, admin, user, db):
    # gpt-4o-mini, 20 tokens at most: reserves ~$0.000013, costs ~$0.0000105: one call fits.
    put_budget(api, admin, user.uid, monthly_budget=0.00002, enforce=True)
    january = at("2031-01-31T23:59:00Z")
    first = api.request("POST", "/v1/chat/completions", user, headers=january, json=_paid_body())
    assert first.status_code == 200, first.text
    assert first.json()["budget"]["month"] == "2031-01"
    assert api.request("POST", "/v1/chat/completions", user, headers=january, json=_paid_body()).status_code == 402
    february = at("2031-02-01T00:00:01Z")
    again = api.request("POST", "/v1/chat/completions", user, headers=february, json=_paid_body())
    assert again.status_code == 200, again.text
    feb = api.request("GET", "/v1/budget", user, headers=february).json()
    assert feb["month"] == "2031-02" and feb["spent"] == again.json()["usage"]["cost"]
    assert month_doc(db, user.uid, "2031-01")["calls"] == 1 and month_doc(db, user.uid, "2031-02")["calls"] == 1


def _free_body() -> dict:
    return {"model": FREE, "messages": [{"role": "user", "content": "hi"}]}


def _paid_body() -> dict:
    return {"model": PAID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


def _month() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m")
