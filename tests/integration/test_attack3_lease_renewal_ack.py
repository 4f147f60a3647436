"""Attack: the commit that hands an idle lease back and takes the next one loses its
acknowledgement, on the emulator. The client's retry finds the handed-back lease gone (its own
first attempt deleted it) and the gate took that for "released by the check": it reserved again,
and the first attempt's lease was left holding 8 worst cases and an in-flight slot for nobody
until it expired (60 s + the reservation TTL) — a user limited to one call at once was refused
for that long."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tokenledger.budgets import admission, rules
from tokenledger.config import Settings

from . import lease_helpers
from .ledger_checks import expire_leases, leases_of, month_doc
from .lost_acks import lose_an_ack

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2045, 9, 1, 9, 0, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2045-09"
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=1, record_deadline_s=5)  # lease_calls: 8
W = 10_000_000
BUDGET = rules.Budget(monthly_budget_nanos=1_000_000_000, alert_thresholds=(), enforce=True, source="user",
                      max_in_flight=1)


def settle(db, gate: admission.Gate, granted: admission.Admission, cost_nanos: int, when: datetime) -> None:
    lease_helpers.settle(db, gate, granted, cost_nanos, when, SETTINGS)


def test_a_renewal_whose_ack_was_lost_leaves_one_lease(db, monkeypatch):
    uid = f"atk3a-{uuid.uuid4().hex[:10]}"
    gate = admission.Gate(SETTINGS)
    gate.budgets.put(uid, BUDGET, NOW.timestamp())
    settle(db, gate, admission.admit(db, SETTINGS, gate, uid, False, W, NOW), 4_000_000, NOW)
    later = NOW + timedelta(seconds=61)  # past the lease's admit window: renewed by the next call
    gate.budgets.put(uid, BUDGET, later.timestamp())
    lost = lose_an_ack(db, monkeypatch)
    lost["armed"] = True
    renewed = admission.admit(db, SETTINGS, gate, uid, False, W, later)
    assert lost["lost"] == 1 and renewed.lease is not None
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (4_000_000, 80_000_000, 1)
    assert [int(lease["amount_nanos"]) for lease in leases_of(db, uid)] == [80_000_000]
    lease_id = renewed.lease.lease_id
    settle(db, gate, renewed, 3_000_000, later)
    # Nothing in flight: the user's one slot is this instance's idle lease, which admits the next call.
    again = admission.admit(db, SETTINGS, gate, uid, False, W, later)
    assert again.lease is not None and again.lease.lease_id == lease_id
    settle(db, gate, again, 2_000_000, later)
    assert expire_leases(db, uid) == 1
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (9_000_000, 0, 0)
