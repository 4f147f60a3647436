"""Attack: two calls of a user on one instance settling at the same moment, on the emulator.
An instance keeps at most one idle lease per user (a second closes with its call), but the
choice was made when each call's record was built: two calls settling at once each saw the
other's lease busy, both kept theirs, and the instance ended with two idle leases holding two
of the user's in-flight slots — a user limited to 2 calls at once was refused (429) on another
instance with nothing in flight. (test_attack2_hot_burst's after-burst calls failed this way,
now and then.)"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from tokenledger.budgets import admission, rules
from tokenledger.config import Settings

from . import lease_helpers
from .ledger_checks import expire_leases, leases_of, month_doc

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2045, 5, 2, 11, 0, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2045-05"
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=2, record_deadline_s=5)  # lease_calls: 8
W = 10_000_000
BUDGET = rules.Budget(monthly_budget_nanos=1_000_000_000, alert_thresholds=(), enforce=True, source="user",
                      max_in_flight=2)


def instance(uid: str) -> admission.Gate:
    return lease_helpers.instance(uid, BUDGET, SETTINGS, NOW)


def record_for(gate: admission.Gate, granted: admission.Admission, cost_nanos: int):
    """The call's record with what it holds (chat_steps.meter_call's first step)."""
    return lease_helpers.held(gate, granted, lease_helpers.call_record(granted.uid, cost_nanos, NOW))


def commit(db, gate: admission.Gate, granted: admission.Admission, record) -> None:
    """The ledger's commit and the lease back in the book (meter_call's next steps)."""
    assert lease_helpers.commit(db, gate, granted, record, SETTINGS).status == "recorded"


def test_two_calls_settling_at_once_on_one_instance_leave_one_idle_lease(db):
    uid = f"atk3r-{uuid.uuid4().hex[:10]}"
    gate, other = instance(uid), instance(uid)
    a = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    b = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)  # at the same time: a second lease
    assert month_doc(db, uid, MONTH)["in_flight"] == 2
    record_a, record_b = record_for(gate, a, 4_000_000), record_for(gate, b, 3_000_000)  # both settling
    commit(db, gate, a, record_a)
    commit(db, gate, b, record_b)
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (7_000_000, 76_000_000, 1)
    assert [int(lease["amount_nanos"]) for lease in leases_of(db, uid)] == [76_000_000]
    # Nothing in flight, one slot held by the idle lease: another instance's call goes.
    elsewhere = admission.admit(db, SETTINGS, other, uid, False, W, NOW)
    assert elsewhere.lease is not None
    assert month_doc(db, uid, MONTH)["in_flight"] == 2
    commit(db, other, elsewhere, record_for(other, elsewhere, 1_000_000))
    assert expire_leases(db, uid) == 2
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (8_000_000, 0, 0)
