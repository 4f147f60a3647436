"""The cold path's pure part (budgets/cold.py): which budget a user's first call on an instance
is committed on before their document is read, and when the document read fits that commit.
The Firestore part (the commit beside the read, a wrong guess given back): tests/integration."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from tokenledger.budgets import cold, rules
from tokenledger.budgets.plans import Plan
from tokenledger.config import Settings

W = 2_000_000  # a call's worst case, nano-dollars
ENFORCED = rules.Budget(monthly_budget_nanos=10**9, alert_thresholds=(), enforce=True, source="user",
                        requests_per_minute=60)


def settings(**fields) -> Settings:
    return replace(Settings(), **{"default_monthly_budget": Decimal(1), "default_enforce": True,
                                  "rate_limit_per_minute": 60, **fields})


def test_the_guess_is_the_budget_of_a_user_without_a_document():
    guessed = cold.guess(settings(), None, is_free=False)
    assert (guessed.monthly_budget_nanos, guessed.enforce, guessed.requests_per_minute) == (10**9, True, 60)


def test_no_guess_when_the_default_gates_nothing():
    # no default budget: a user without a document needs no commit at all, so the document is read first
    assert cold.guess(settings(default_monthly_budget=None), None, is_free=False) is None
    # a free call: gated only when the default counts free calls (TOKENLEDGER_DEFAULT_FREE_DAILY_REQUESTS)
    assert cold.guess(settings(default_monthly_budget=None, default_free_daily_requests=50), None,
                      is_free=True).free_daily_requests == 50
    assert cold.guess(settings(default_monthly_budget=None, default_free_daily_requests=0), None, is_free=True) is None


def test_the_guess_follows_the_callers_plan():
    plan = Plan("pro", {"monthly_budget": 20, "enforce": True})
    assert cold.guess(settings(), plan, is_free=False).monthly_budget_nanos == 20 * 10**9


def test_amounts_thresholds_and_the_size_of_a_per_minute_limit_do_not_change_the_shape_of_the_commit():
    other = replace(ENFORCED, monthly_budget_nanos=5, alert_thresholds=(rules.threshold_decimal("0.5"),),
                    email="a@example.com", requests_per_minute=2)
    assert cold.shape(other, False, W) == cold.shape(ENFORCED, False, W)


def test_what_the_commit_holds_and_counts_changes_its_shape():
    base = cold.shape(ENFORCED, False, W)
    assert base == (True, False, True)
    assert cold.shape(replace(ENFORCED, enforce=False), False, W) == (False, False, True)  # holds no money
    assert cold.shape(replace(ENFORCED, requests_per_minute=0), False, W) == (True, False, False)  # no minute


def test_a_free_call_counted_against_a_daily_quota_has_its_own_shape():
    quota = replace(ENFORCED, free_daily_requests=50)
    assert cold.shape(quota, True, 0) == (False, True, True)
    assert cold.shape(ENFORCED, True, 0) == (False, False, True)
