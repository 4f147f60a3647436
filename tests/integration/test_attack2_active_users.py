"""Attack: a hot enforced user's reservations go to shards the ledger's rollups may not (the gate
and the ledger take turns in one round-robin, metering/hot_users.py), so some shard documents hold
only `reserved_nanos`/`in_flight` and no `calls`. The month's active users (analytics) must still
count this user once. On the real emulator."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from tokenledger.analytics import summaries
from tokenledger.budgets import admission, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from . import hot_tables

NOW = datetime(2043, 7, 10, 9, 30, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2043-07"
# One reservation per call (TOKENLEDGER_LEASE_CALLS=0): the gate these tests drive; leases: test_leases.py
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5, lease_calls=0)
DOLLAR = 1_000_000_000
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(Decimal("1"),), enforce=True, source="user")


def test_attack2_a_hot_enforced_user_is_one_active_user(db, monkeypatch):
    hot_tables.install(monkeypatch, step=0.05)
    uid = f"a2act-{uuid.uuid4().hex[:10]}"
    gate = admission.Gate(SETTINGS)
    gate.budgets.put(uid, BUDGET, NOW.timestamp())
    for _ in range(10):
        granted = admission.admit(db, SETTINGS, gate, uid, False, 1_000_000, NOW)
        answer = {"id": f"gen-a2act-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
                  "choices": [{"finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost": 0.0005}}
        record = build_record(answer, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", NOW, latency_ms=5),
                              Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))))
        record = replace(record, reserved_nanos=1_000_000, reservation_id=granted.reservation.reservation_id)
        assert ledger.record_usage(db, record, SETTINGS).status == "recorded"
    docs = {s.id: s.to_dict() for s in db.collection("user_usage").document(uid).collection("months").stream()}
    # Gate and ledger alternate on the shards: the odd ones hold reservations only (each taken
    # back on the shard its call was counted in).
    without_calls = sorted(int(name.split("~")[1]) for name, doc in docs.items() if not doc.get("calls"))
    assert without_calls == [1, 3, 5, 7, 9, 11, 13, 15]
    assert all(docs[f"{MONTH}~{k}"]["reserved_nanos"] == 1_000_000 for k in without_calls)
    assert summaries.active_users(db, MONTH) == 1
    assert [u["user_id"] for u in summaries.top_users(db, MONTH, 10)["users"]] == [uid]
