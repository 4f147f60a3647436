"""Attack: a lease that holds no money — an alerts-only budget (enforce false) reserves $0 — on
the emulator. Its calls' costs must not be taken off the month's reserved: that left reserved
negative by everything the user spent through it, and when an admin then enforced the budget,
other instances admitted calls as if that spending had not happened until the lease expired."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from tokenledger.budgets import admission, rules
from tokenledger.config import Settings

from . import lease_helpers
from .ledger_checks import expire_leases, leases_of, month_doc

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2045, 3, 7, 16, 0, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2045-03"
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5)  # lease_calls: 8
DOLLAR = 1_000_000_000
ENFORCED = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(), enforce=True, source="user")
ALERTS_ONLY = replace(ENFORCED, enforce=False)


def instance(uid: str, budget: rules.Budget) -> admission.Gate:
    return lease_helpers.instance(uid, budget, SETTINGS, NOW)


def settle(db, gate: admission.Gate, granted: admission.Admission, cost_nanos: int) -> None:
    assert lease_helpers.settle(db, gate, granted, cost_nanos, NOW, SETTINGS).status == "recorded"


def test_an_alerts_only_lease_moves_no_money_and_an_enforced_budget_then_sees_all_that_was_spent(db):
    uid = f"atk3u-{uuid.uuid4().hex[:10]}"
    alerts_only = instance(uid, ALERTS_ONLY)
    for _ in range(3):  # $0.90 through one lease of $0 (nothing to cap: no reservation)
        granted = admission.admit(db, SETTINGS, alerts_only, uid, False, 250_000_000, NOW)
        assert granted.lease is not None
        settle(db, alerts_only, granted, 300_000_000)
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (900_000_000, 0, 1)
    assert [int(lease["amount_nanos"]) for lease in leases_of(db, uid)] == [0]
    # An admin enforces the $1 budget; another instance reads it: $0.10 left.
    enforced = instance(uid, ENFORCED)
    with pytest.raises(admission.BudgetExceeded) as refused:
        admission.admit(db, SETTINGS, enforced, uid, False, 200_000_000, NOW)
    assert refused.value.spent_nanos == 900_000_000
    granted = admission.admit(db, SETTINGS, enforced, uid, False, 100_000_000, NOW)  # exactly fits
    settle(db, enforced, granted, 60_000_000)
    assert expire_leases(db, uid) == 1  # the alerts-only instance's lease; the last call's was its own
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (960_000_000, 0, 0)
