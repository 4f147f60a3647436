"""Plans (pure): which plan a token names, the allowance resolved field by field
(user > plan > default) with its sources, model tiers and when a downgrade is due."""
from __future__ import annotations

from decimal import Decimal

import pytest
from policy_catalog import CATALOG, HI

from tokenledger.budgets import plans, rules
from tokenledger.budgets.cache import BudgetDoc
from tokenledger.config import Settings
from tokenledger.policy import PolicyError, plan_call
from tokenledger.policy.candidates import Tier

SETTINGS = Settings()  # out of the box: enforced $1, 50 free calls a day, 60/min, 8 in flight
PRO = plans.plan_from_doc("pro", {"monthly_budget": 20.0, "monthly_budget_nanos": 20_000_000_000,
                                  "free_daily_requests": 500, "enforce": False,
                                  "allowed_models": ["acme/*"], "downgrade_to": "acme/small:free",
                                  "downgrade_at": 0.9, "stray": "ignored"})


def test_out_of_the_box_no_plan_is_exactly_the_default_budget():
    assert rules.budget_from_doc(None, SETTINGS, None) == rules.default_budget(SETTINGS)
    budget = rules.default_budget(SETTINGS)
    assert (budget.plan, budget.downgrade_to, budget.allowed_models) == (None, None, ())
    assert dict(budget.sources) == {name: "default" for name in rules.SOURCED_FIELDS}


def test_plan_fields_beat_the_defaults_and_the_users_own_fields_beat_the_plan_field_by_field():
    budget = rules.budget_from_doc({"monthly_budget": 5, "monthly_budget_nanos": 5_000_000_000,
                                    "requests_per_minute": 7}, SETTINGS, PRO)
    assert budget.monthly_budget_nanos == 5_000_000_000  # user
    assert budget.requests_per_minute == 7  # user
    assert budget.free_daily_requests == 500  # plan
    assert budget.enforce is False  # plan
    assert budget.max_in_flight == 8  # default
    assert budget.alert_thresholds == (Decimal("0.8"), Decimal("1.0"))  # default
    assert (budget.plan, budget.downgrade_to, budget.downgrade_at) == ("pro", "acme/small:free", Decimal("0.9"))
    assert budget.allowed_models == ("acme/*",)
    assert dict(budget.sources) == {
        "monthly_budget": "user", "alert_thresholds": "default", "enforce": "plan", "free_daily_requests": "plan",
        "requests_per_minute": "user", "max_in_flight": "default", "downgrade_to": "plan", "downgrade_at": "plan"}
    assert budget.source == "user"


def test_a_user_null_means_none_and_beats_the_plan():
    budget = rules.budget_from_doc({"monthly_budget": None, "monthly_budget_nanos": None}, SETTINGS, PRO)
    assert budget.monthly_budget_nanos is None and dict(budget.sources)["monthly_budget"] == "user"


def test_plan_alone():
    budget = rules.budget_from_doc(None, SETTINGS, PRO)
    assert (budget.monthly_budget_nanos, budget.free_daily_requests, budget.source) == (20_000_000_000, 500, "plan")
    status = rules.status(budget, "2026-12", 0, 0)
    assert (status["plan"], status["monthly_budget"], status["sources"]["monthly_budget"]) == ("pro", 20.0, "plan")


def test_budget_doc_cache_resolves_against_the_plan_in_force():
    entry = BudgetDoc({"requests_per_minute": 3})
    assert entry.resolve(PRO, SETTINGS).monthly_budget_nanos == 20_000_000_000
    assert entry.resolve(None, SETTINGS).monthly_budget_nanos == 1_000_000_000  # moved off the plan
    raised = plans.plan_from_doc("pro", {"monthly_budget_nanos": 30_000_000_000, "monthly_budget": 30.0})
    assert entry.resolve(raised, SETTINGS).monthly_budget_nanos == 30_000_000_000  # the plan reloaded


@pytest.mark.parametrize("claims, expected", [
    ({"stripeRole": "pro"}, "pro"),
    ({}, None),
    ({"stripeRole": 3}, None),
    ({"stripeRole": "Pro Plan"}, None),  # not a plan id
    ({"stripeRole": "x" * 65}, None),
    ({"tier": "pro"}, None),  # another claim
])
def test_claimed_plan(claims, expected):
    assert plans.claimed_plan(claims, "stripeRole") == expected


def test_choose_plan_claim_default_and_unknown():
    book = {"pro": PRO, "free": plans.plan_from_doc("free", {})}
    assert plans.choose(book, "pro", "free") == (PRO, False)
    assert plans.choose(book, None, "free") == (book["free"], False)
    assert plans.choose(book, "gold", "free") == (book["free"], True)  # unknown: the default plan
    assert plans.choose({}, "gold", "free") == (None, True)  # no plan documents: the defaults


def _refused(body, tier) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        plan_call({"messages": HI, **body}, CATALOG, SETTINGS, tier)
    return info.value


def test_model_outside_the_plan_is_403_model_not_in_plan_naming_plan_and_model():
    tier = Tier("free", ("acme/small", "acme/small:free"))
    assert plan_call({"messages": HI, "model": "acme/small"}, CATALOG, SETTINGS, tier).candidates == ("acme/small",)
    error = _refused({"model": "acme/big"}, tier)
    assert (error.status, error.code, error.field) == (403, "model_not_in_plan", "model")
    assert error.message == "The model 'acme/big' is not in your plan 'free'."


def test_a_fallback_outside_the_plan_is_refused_too():
    error = _refused({"model": "acme/small", "models": ["acme/small:free", "acme/big"]},
                     Tier("free", ("acme/small", "acme/small:free")))
    assert (error.status, error.code, error.field) == (403, "model_not_in_plan", "models[1]")


def test_a_router_routes_only_within_the_plan():
    tier = Tier("mid", ("openrouter/auto", "acme/small", "acme/think"))
    planned = plan_call({"messages": HI, "model": "openrouter/auto"}, CATALOG, SETTINGS, tier)
    assert set(planned.candidates) == {"acme/small", "acme/think"}
    assert planned.upstream_body["plugins"] == [{"id": "auto-router", "allowed_models": ["acme/small", "acme/think"]}]
    error = _refused({"model": "openrouter/auto"}, Tier("small", ("acme/small",)))
    assert (error.status, error.code) == (403, "model_not_in_plan")


def test_downgrade_due_at_its_share_of_the_budget():
    budget = rules.budget_from_doc(None, SETTINGS, PRO)  # $20, downgrade at 90%
    assert not rules.downgrade_due(budget, 17_999_999_999)
    assert rules.downgrade_due(budget, 18_000_000_000)
    assert not rules.downgrade_due(rules.default_budget(SETTINGS), 10**12)  # no downgrade_to
