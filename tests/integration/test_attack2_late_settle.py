"""Attack: a call that outlives its reservation (a stream longer than
TOKENLEDGER_RESERVATION_TTL_S: a deep-research model, a slow reasoning stream) has its
reservation released by the scheduled check (or by the gate's sweep on an in-flight refusal)
while it still runs. When it then settles, the ledger must not release it a second time: the
month's `reserved_nanos` and `in_flight` would go below zero, and a negative reservation is
headroom the user spends past the budget for the rest of the month. On the real emulator, with
the pending (held) case too."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger.budgets import admission, reservations, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import COST_PENDING, CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2043, 5, 10, 9, 30, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2043-05"
# One reservation per call (TOKENLEDGER_LEASE_CALLS=0): the gate these tests drive; leases: test_leases.py
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5, reservation_ttl_s=900, lease_calls=0)
DOLLAR = 1_000_000_000
CENT = DOLLAR // 100
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(Decimal("1"),), enforce=True, source="user")


def gate_knowing(uid: str) -> admission.Gate:
    gate = admission.Gate(SETTINGS)
    gate.budgets.put(uid, BUDGET, NOW.timestamp())
    return gate


def record_for(uid: str, granted: admission.Admission, cost_nanos: int, pending: bool = False):
    answer = {
        "id": f"gen-a2late-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "cost": float(Decimal(cost_nanos) / DOLLAR)},
    }
    record = build_record(answer, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", NOW, latency_ms=5),
                          Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))))
    record = replace(record, reserved_nanos=granted.reservation.amount_nanos,
                     reservation_id=granted.reservation.reservation_id)
    return replace(record, cost_source=COST_PENDING) if pending else record


def month_totals(db, uid: str) -> reservations.MonthTotals:
    return reservations.totals_of(
        s.to_dict() for s in db.collection("user_usage").document(uid).collection("months").stream())


@pytest.mark.parametrize("pending", [False, True], ids=["final", "pending"])
def test_attack2_a_call_settled_after_its_reservation_expired_is_not_released_twice(db, pending):
    uid = f"a2late-{uuid.uuid4().hex[:10]}"
    gate = gate_knowing(uid)
    long_call = admission.admit(db, SETTINGS, gate, uid, False, 60 * CENT, NOW)
    # 16 minutes later the call still streams; its reservation has expired and is released.
    released, _ = reservations.release_expired(db, NOW + timedelta(minutes=16), user_id=uid)
    assert released == 1
    assert (month_totals(db, uid).reserved_nanos, month_totals(db, uid).in_flight) == (0, 0)
    # It ends: $0.50, recorded once (final), or held at its estimate until reconcile (pending).
    outcome = ledger.record_usage(db, record_for(uid, long_call, 50 * CENT, pending), SETTINGS)
    assert outcome.status == "recorded"
    totals = month_totals(db, uid)
    assert (totals.cost_nanos, totals.reserved_nanos, totals.in_flight) == (50 * CENT, 0, 0)
    [row] = [s.to_dict() for s in db.collection("usage_tracking").where(
        filter=FieldFilter("user_id", "==", uid)).stream()]
    assert row["reserved_nanos"] == 0  # nothing held: reconcile has nothing to release
    # The ceiling holds afterwards: $0.50 spent, a call of worst case $0.60 does not fit in $1.
    with pytest.raises(admission.BudgetExceeded) as refused:
        admission.admit(db, SETTINGS, gate, uid, False, 60 * CENT, NOW + timedelta(minutes=17))
    assert (refused.value.spent_nanos, refused.value.reserved_nanos) == (50 * CENT, 0)
