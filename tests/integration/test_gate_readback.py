"""The budget gate reads its month back from its own commit, and the ledger's commit tells the
month after the call: on the real emulator, an enforced user whose budget this instance knows is
admitted with one commit and no read, sees other instances' reservations in that commit, and the
`budget` status and alerts after the call need no read either. Reads are counted as Firestore
bills them (scripts/bench/opcount.py wraps the client's calls)."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from google.cloud import firestore

from tokenledger import store
from tokenledger.budgets import admission, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from . import hot_tables

NOW = datetime(2041, 2, 10, 9, 30, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2041-02"
# One reservation per call (TOKENLEDGER_LEASE_CALLS=0): the gate these tests drive; leases: test_leases.py
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5, lease_calls=0)
DOLLAR = 1_000_000_000  # nano-dollars
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(Decimal("0.5"), Decimal("1")), enforce=True,
                      source="user")


@pytest.fixture(autouse=True)
def unhurried(monkeypatch):
    hot_tables.install(monkeypatch, step=2.0)  # every write of these tests on the base


def gate_knowing(uid: str) -> admission.Gate:
    """An instance that has this user's budget in its cache (a call of theirs in the last minute)."""
    gate = admission.Gate(SETTINGS)
    gate.budgets.put(uid, BUDGET, NOW.timestamp())
    return gate


def spent(db, uid: str, nanos: int, **fields) -> None:
    store.user_month_doc(db, uid, MONTH).set({"user_id": uid, "month": MONTH, "cost_nanos": nanos, **fields})


def recorded_call(db, uid: str, cost_usd: str, granted: admission.Admission | None = None) -> ledger.RecordOutcome:
    answer = {
        "id": f"gen-readback-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "cost": float(cost_usd)},
    }
    record = build_record(answer, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", NOW, latency_ms=5),
                          Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))))
    if granted is not None:
        record = replace(record, reserved_nanos=granted.reservation.amount_nanos,
                         reservation_id=granted.reservation.reservation_id)
    return ledger.record_usage(db, record, SETTINGS)


def test_a_known_enforced_user_is_admitted_by_one_commit_that_reads_the_month_back(db, ops):
    uid = f"rb-{uuid.uuid4().hex[:10]}"
    spent(db, uid, 300_000_000)
    ops.reset()
    granted = admission.admit(db, SETTINGS, gate_knowing(uid), uid, False, 200_000_000, NOW)
    # the month and the reservation (no per-minute limit in this budget: no minute counter)
    assert ops.snapshot() == {"reads": 0, "writes": 2, "deletes": 0, "commits": 1}
    assert (granted.totals.cost_nanos, granted.totals.reserved_nanos, granted.totals.in_flight) == (
        300_000_000, 200_000_000, 1)
    month = store.user_month_doc(db, uid, MONTH).get().to_dict()
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (300_000_000, 200_000_000, 1)


def test_another_instances_reservation_is_in_the_read_back_and_refuses_what_would_pass_the_ceiling(db, ops, monkeypatch):
    uid = f"rb-{uuid.uuid4().hex[:10]}"
    spent(db, uid, 300_000_000)
    admission.admit(db, SETTINGS, gate_knowing(uid), uid, False, 200_000_000, NOW)  # instance A, still running
    monkeypatch.setattr(admission, "ADMISSION_PATIENCE_S", 0.0)  # no waiting for A's call to settle
    ops.reset()
    with pytest.raises(admission.BudgetExceeded) as refused:  # instance B: $0.30 + $0.20 + $0.60 > $1
        admission.admit(db, SETTINGS, gate_knowing(uid), uid, False, 600_000_000, NOW)
    assert (refused.value.spent_nanos, refused.value.reserved_nanos) == (300_000_000, 200_000_000)
    assert ops.snapshot()["reads"] == 0 and ops.snapshot()["commits"] == 2  # reserve, then give back
    month = store.user_month_doc(db, uid, MONTH).get().to_dict()
    assert (month["reserved_nanos"], month["in_flight"]) == (200_000_000, 1)  # only A's remains


def test_a_hot_users_shards_are_added_in_one_read_round_trip(db, ops):
    uid = f"rb-{uuid.uuid4().hex[:10]}"
    spent(db, uid, 100_000_000, sharded=True, shard_count=store.USER_SHARDS)
    for shard, nanos in ((3, 40_000_000), (17, 5_000_000)):
        store.user_month_shard_doc(db, uid, MONTH, shard).set({"user_id": uid, "month": MONTH, "shard": shard,
                                                                "cost_nanos": nanos})
    ops.reset()
    granted = admission.admit(db, SETTINGS, gate_knowing(uid), uid, False, 10_000_000, NOW)
    assert granted.totals.cost_nanos == 145_000_000
    assert ops.snapshot()["reads"] == 3  # the documents of the month that exist: base, ~3, ~17
    assert ops.snapshot()["commits"] == 1


def test_the_status_after_the_call_is_the_months_exact_cost_and_its_crossed_alert_is_written_without_a_read(db, ops):
    uid = f"rb-{uuid.uuid4().hex[:10]}"
    spent(db, uid, 450_000_000)
    granted = admission.admit(db, SETTINGS, gate_knowing(uid), uid, False, 100_000_000, NOW)
    recorded_call(db, uid, "0.01")  # another call of theirs settles meanwhile: $0.46
    ops.reset()
    outcome = recorded_call(db, uid, "0.08", granted)  # this one: $0.54, across the 50% threshold
    status = admission.after_call(db, SETTINGS, granted, 80_000_000, False, NOW, outcome.month_cost_nanos)
    assert outcome.month_cost_nanos == 540_000_000
    assert (status["spent_nanos"], status["reserved_nanos"]) == (540_000_000, 0)
    assert ops.snapshot()["reads"] == 0
    alerts = [s.to_dict() for s in db.collection("budget_alerts").where(
        filter=firestore.FieldFilter("user_id", "==", uid)).stream()]
    assert [(a["threshold"], a["current_cost_nanos"]) for a in alerts] == [(0.5, 540_000_000)]


def test_a_call_that_crossed_no_threshold_writes_no_alert(db, ops):
    uid = f"rb-{uuid.uuid4().hex[:10]}"
    spent(db, uid, 520_000_000)  # past 50% before the call: that alert was the crossing call's to write
    granted = admission.admit(db, SETTINGS, gate_knowing(uid), uid, False, 100_000_000, NOW)
    outcome = recorded_call(db, uid, "0.01", granted)
    status = admission.after_call(db, SETTINGS, granted, 10_000_000, False, NOW, outcome.month_cost_nanos)
    assert status["spent_nanos"] == 530_000_000
    assert list(db.collection("budget_alerts").where(filter=firestore.FieldFilter("user_id", "==", uid)).stream()) == []


def test_a_hot_users_reservations_are_spread_over_shards_and_each_gate_still_sees_them_all(db, ops, monkeypatch):
    """Back to back (50 ms apart): a burst of 4 reservations on the base document, then the
    shards 1, 2, ... — and the 10th call's gate counts all 10 reservations."""
    hot_tables.install(monkeypatch, step=0.05)
    uid = f"rb-{uuid.uuid4().hex[:10]}"
    gate = gate_knowing(uid)
    granted = [admission.admit(db, SETTINGS, gate, uid, False, 1_000_000, NOW) for _ in range(10)]
    assert [g.reservation.shard for g in granted] == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]
    assert [(g.totals.reserved_nanos, g.totals.in_flight) for g in granted] == [
        (n * 1_000_000, n) for n in range(1, 11)]
    docs = {s.id: s.to_dict() for s in db.collection("user_usage").document(uid).collection("months").stream()}
    assert docs[MONTH]["reserved_nanos"] == 4_000_000 and docs[MONTH]["sharded"] is True
    assert {name: doc["reserved_nanos"] for name, doc in docs.items() if name != MONTH} == {
        f"{MONTH}~{k}": 1_000_000 for k in range(1, 7)}
    admission.abandon(db, gate, granted[6])  # given back where it was taken: shard 3
    assert store.user_month_shard_doc(db, uid, MONTH, 3).get().to_dict()["reserved_nanos"] == 0
