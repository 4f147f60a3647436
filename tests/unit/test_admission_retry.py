"""The budget gate's retry loop, without Firestore: what each reserving commit reads back is
scripted, commits counted.

The loop reserves blindly (its commit reads the month back) and decides. A call that would fit alone but is
blocked only by other calls' open reservations tries again (those settle within a moment); a
call that cannot fit alone is refused at once; every refusal gives its reservation back.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from tokenledger.budgets import admission, gate_call, reservations, rules
from tokenledger.config import Settings

NOW = datetime(2030, 3, 14, 12, 0, tzinfo=timezone.utc)
BUDGET = rules.Budget(monthly_budget_nanos=1_000, alert_thresholds=(), enforce=True, source="user")
WORST = 400  # this call's reservation


class ScriptedMonth:
    """The month as each reserving commit reads it back: (cost, other calls' reservations) per
    attempt."""

    def __init__(self, monkeypatch, reads: list[tuple[int, int]]):
        self.reads = reads
        self.reserved = self.released = 0
        monkeypatch.setattr(reservations, "reserve_and_read", self.reserve_and_read)
        monkeypatch.setattr(reservations, "release", self.release)

    def reserve_and_read(self, db, uid, month, amount, now, ttl_s, counters=(), **lease):
        self.reserved += 1
        cost, others = self.reads[min(self.reserved, len(self.reads)) - 1]
        totals = reservations.MonthTotals(cost, others + amount, None, 1)
        counted = [self.reserved if c.field == "requests" else 1 for c in counters]
        return reservations.Reservation(f"r{self.reserved}", uid, month, amount), totals, False, counted

    def release(self, db, reservation, also=None):
        self.released += 1
        return True


def admit() -> admission.Admission:
    settings = Settings(rate_limit_per_minute=0, max_in_flight=0, lease_calls=0)  # one reservation per call
    gate = admission.Gate(settings)
    gate.budgets.put("u1", BUDGET, NOW.timestamp())  # known budget: no budget read
    db = firestore.Client(project="demo-unit", credentials=AnonymousCredentials())  # references only
    return admission.admit(db, settings, gate, "u1", False, WORST, NOW)


def test_a_call_blocked_only_by_others_reservations_is_admitted_once_they_settle(monkeypatch):
    month = ScriptedMonth(monkeypatch, [(300, 400), (300, 0)])  # 300+400+400 > 1000; then 700
    monkeypatch.setattr(gate_call.time, "sleep", lambda s: None)
    granted = admit()
    assert (month.reserved, month.released) == (2, 1)
    assert granted.reservation.reservation_id == "r2" and granted.reserved_nanos == WORST


def test_a_call_that_cannot_fit_alone_is_refused_at_once(monkeypatch):
    month = ScriptedMonth(monkeypatch, [(700, 0)])  # 700 + 400 > 1000 with nobody else holding
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit()
    assert (month.reserved, month.released) == (1, 1)
    assert (refused.value.spent_nanos, refused.value.reserved_nanos, refused.value.budget_nanos,
            refused.value.estimate_nanos) == (700, 0, 1_000, 400)


def test_patience_runs_out_when_others_never_settle(monkeypatch):
    month = ScriptedMonth(monkeypatch, [(300, 400)])
    monkeypatch.setattr(admission, "ADMISSION_PATIENCE_S", 0.2)
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit()
    assert month.reserved >= 2 and month.released == month.reserved  # retried, nothing left held
    assert (refused.value.spent_nanos, refused.value.reserved_nanos) == (300, 400)
