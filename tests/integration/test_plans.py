"""Plans on the emulators, through a served api (one functions-framework process whose default
plan is this module's own, so no other test's user is on it): the plan from the token's claim,
else the default plan; field-by-field precedence; model tiers; the audit log."""
from __future__ import annotations

import pytest
import requests

from .budget_helpers import open_reservations, requests_from
from .ledger_checks import rows_for
from .plan_helpers import FREE, PAID, Served, on_plan, plan_id, plans_left_behind
from .served_api import served_api

__all__ = ["plans_left_behind"]  # autouse: this module's plans are deleted after it

DEFAULT_TIER = [PAID, FREE]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    default = plan_id("base")
    with served_api(tmp_path_factory.mktemp("plans") / "api.log", TOKENLEDGER_DEFAULT_PLAN=default) as base:
        yield Served(base), default


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


@pytest.fixture(scope="module")
def pro(served, admin):
    api, default = served
    api.put_plan(admin, default, monthly_budget=2, enforce=True, free_daily_requests=100,
                 allowed_models=DEFAULT_TIER)
    pid = plan_id("pro")
    api.put_plan(admin, pid, monthly_budget=20, enforce=True, free_daily_requests=500, max_in_flight=4,
                 allowed_models=["openai/*", "anthropic/*"])
    return pid


def test_the_claim_picks_the_plan_no_claim_or_an_unknown_plan_gets_the_default(served, auth, pro):
    api, default = served
    expected = {
        "pro": (pro, 20.0, 500, 4),
        "none": (default, 2.0, 100, 8),  # max_in_flight: the configured default
        "unknown": (default, 2.0, 100, 8),
    }
    users = {"pro": on_plan(auth, "pro", pro), "none": on_plan(auth, "none", None),
             "unknown": on_plan(auth, "unknown", plan_id("gold"))}
    for name, user in users.items():
        got = api.budget(user)
        assert (got["plan"], got["monthly_budget"], got["free_daily_requests"], got["max_in_flight"]) == expected[name]
        assert got["sources"]["monthly_budget"] == "plan" and got["sources"]["max_in_flight"] == (
            "plan" if name == "pro" else "default")

    everything = {m["id"] for m in api.request("GET", "/v1/models", users["pro"]).json()["data"]}
    listed = {name: {m["id"] for m in api.request("GET", "/v1/models", user).json()["data"]}
              for name, user in users.items()}
    assert listed["pro"] == {m for m in everything if m.startswith(("openai/", "anthropic/"))}
    assert listed["none"] == listed["unknown"] == set(DEFAULT_TIER)


def test_a_users_own_field_beats_the_plan_field_by_field(served, auth, admin, pro):
    api, _ = served
    user = on_plan(auth, "override", pro)
    response = api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json={"monthly_budget": 3})
    assert response.status_code == 201, response.text
    got = api.budget(user)
    assert (got["plan"], got["monthly_budget"], got["free_daily_requests"], got["max_in_flight"],
            got["requests_per_minute"]) == (pro, 3.0, 500, 4, 60)
    assert {k: got["sources"][k] for k in ("monthly_budget", "free_daily_requests", "max_in_flight",
                                            "requests_per_minute")} == {
        "monthly_budget": "user", "free_daily_requests": "plan", "max_in_flight": "plan",
        "requests_per_minute": "default"}
    answer = api.chat(user)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["budget"]["plan"], answer.json()["budget"]["monthly_budget"],
            answer.json()["budget"]["downgraded"]) == (pro, 3.0, False)


def test_a_model_outside_the_plan_is_403_before_anything_is_reserved_or_sent(served, auth, db, standin, pro):
    api, default = served
    user = on_plan(auth, "tier", None)  # the default plan: PAID and FREE only
    for body, field in (({"model": "openai/gpt-4o"}, "model"),
                        ({"model": PAID, "models": [FREE, "anthropic/claude-3.5-haiku"]}, "models[1]")):
        refused = api.chat(user, **body)
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["field"]) == ("model_not_in_plan", field)
        model = body["model"] if field == "model" else body["models"][1]
        assert error["message"] == f"The model '{model}' is not in your plan '{default}'."
    assert requests_from(standin, user.uid) == []
    assert rows_for(db, user.uid) == []
    assert open_reservations(db, user.uid) == []
    assert api.chat(user).status_code == 200  # in the plan


def test_plan_admin_api_validates_and_refuses_non_admins(served, auth, admin):
    api, _ = served
    user = on_plan(auth, "plain", None)
    pid = plan_id("x")
    assert api.request("PUT", f"/v1/admin/plans/{pid}", user, json={}).status_code == 403
    assert api.request("GET", "/v1/admin/plans", user).status_code == 403
    for bad_id, body, field in (("Bad Id", {}, "plan_id"), (pid, {"monthly_budget": -1}, "monthly_budget"),
                                (pid, {"allowed_models": ["has space"]}, "allowed_models"),
                                (pid, {"downgrade_at": 1.5}, "downgrade_at"), (pid, {"colour": "red"}, "colour")):
        response = api.request("PUT", f"/v1/admin/plans/{requests.utils.quote(bad_id)}", admin, json=body)
        assert response.status_code == 400, response.text
        assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("invalid_plan", field)
    assert api.request("GET", f"/v1/admin/plans/{pid}", admin).status_code == 404  # nothing was written
