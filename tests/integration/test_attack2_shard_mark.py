"""Attack: a hot user's month spread over shards must be marked on its base document (`sharded`,
`shard_count`), else a gate whose reservation lands on the base reads the base alone and admits
past the ceiling. The mark goes with the first spread write of each instance (metering/hot_users.py):
when that write's batch never commits (here: a call the ledger cannot record — an answer with a
count past Firestore's int64, as OpenRouter's usage could carry; in production also a Firestore
outage past the record deadline, or a failed gate commit), the instance must mark again with its
next spread write. On the real emulator, with two instances (two placement tables)."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tokenledger import store
from tokenledger.budgets import admission, reservations, rules
from tokenledger.config import Settings
from tokenledger.metering import hot_users, ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from . import hot_tables

NOW = datetime(2043, 3, 10, 9, 30, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2043-03"
# One reservation per call (TOKENLEDGER_LEASE_CALLS=0): the gate these tests drive; leases: test_leases.py
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5, lease_calls=0)
DOLLAR = 1_000_000_000
CENT = DOLLAR // 100
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(Decimal("1"),), enforce=True, source="user")


def gate_knowing(uid: str) -> admission.Gate:
    gate = admission.Gate(SETTINGS)
    gate.budgets.put(uid, BUDGET, NOW.timestamp())
    return gate


def record_for(uid: str, granted: admission.Admission, cost_nanos: int, prompt_tokens: int = 100):
    answer = {
        "id": f"gen-a2mark-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 20, "total_tokens": 120,
                  "cost": float(Decimal(cost_nanos) / DOLLAR)},
    }
    record = build_record(answer, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", NOW, latency_ms=5),
                          Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))))
    return replace(record, reserved_nanos=granted.reservation.amount_nanos,
                   reservation_id=granted.reservation.reservation_id)


def month_docs(db, uid: str) -> dict:
    return {s.id: s.to_dict() for s in db.collection("user_usage").document(uid).collection("months").stream()}


def test_attack2_lost_shard_mark_lets_a_base_gate_pass_the_ceiling(db, monkeypatch):
    monkeypatch.setattr(admission, "ADMISSION_PATIENCE_S", 0.0)
    uid = f"a2mark-{uuid.uuid4().hex[:10]}"
    table_a, table_b = hot_tables.table(0.0), hot_tables.table(0.0)  # clocks that do not move
    gate_a, gate_b = gate_knowing(uid), gate_knowing(uid)

    # Instance A. A call that cannot fit ($2 > $1) is refused: one base token spent (4 -> 3).
    monkeypatch.setattr(hot_users, "PLACEMENT", table_a)
    with pytest.raises(admission.BudgetExceeded):
        admission.admit(db, SETTINGS, gate_a, uid, False, 2 * DOLLAR, NOW)
    # Call 1: reserved and recorded on the base ($0.10): tokens 3 -> 1.
    first = admission.admit(db, SETTINGS, gate_a, uid, False, 20 * CENT, NOW)
    assert first.reservation.shard == 0
    assert ledger.record_usage(db, record_for(uid, first, 10 * CENT), SETTINGS).status == "recorded"
    # Call 2: reserved on the base (the last token); its record is the first spread write of A
    # (shard 1, carrying the mark) and cannot be committed: an int64 overflow in its usage.
    second = admission.admit(db, SETTINGS, gate_a, uid, False, 5 * CENT, NOW)
    assert second.reservation.shard == 0
    with pytest.raises(ValueError):
        ledger.record_usage(db, record_for(uid, second, 1 * CENT, prompt_tokens=2**63), SETTINGS)
    # Calls 3-6: hot on A, reserved and recorded on shards ($0.20 each, worst case $0.24).
    for _ in range(4):
        granted = admission.admit(db, SETTINGS, gate_a, uid, False, 24 * CENT, NOW)
        assert granted.reservation.shard != 0
        assert ledger.record_usage(db, record_for(uid, granted, 20 * CENT), SETTINGS).status == "recorded"

    # The month so far: $0.90 spent ($0.10 + 4 x $0.20), call 2's $0.05 still reserved.
    whole = reservations.totals_of(month_docs(db, uid).values())
    assert (whole.cost_nanos, whole.reserved_nanos, whole.in_flight) == (90 * CENT, 5 * CENT, 1)

    # Instance B (its own table: this user's first call there goes to the base document) must
    # refuse a call of worst case $0.50: $0.90 + $0.05 + $0.50 > $1.
    monkeypatch.setattr(hot_users, "PLACEMENT", table_b)
    with pytest.raises(admission.BudgetExceeded) as refused:
        admission.admit(db, SETTINGS, gate_b, uid, False, 50 * CENT, NOW)
    assert (refused.value.spent_nanos, refused.value.reserved_nanos) == (90 * CENT, 5 * CENT)
    assert month_docs(db, uid)[MONTH]["shard_count"] == store.USER_SHARDS
