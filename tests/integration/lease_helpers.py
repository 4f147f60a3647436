"""The budget gate and the ledger driven as the API drives them, for the lease tests: an
instance is an admission.Gate (its own lease book and budget cache), a call is recorded as
chat_steps.meter_call records it (admission.holding, ledger.record_usage, admission.settled)."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from tokenledger.budgets import admission, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import COST_PENDING, FLAG_PENDING, CallFacts, Pricing, UsageRecord, build_record
from tokenledger.pricing.prices import fallback_price

DOLLAR = 1_000_000_000  # nano-dollars
FALLBACK = fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))


def instance(uid: str, budget: rules.Budget, settings: Settings, now: datetime) -> admission.Gate:
    """A fresh instance that has the user's budget in its cache."""
    gate = admission.Gate(settings)
    gate.budgets.put(uid, budget, now.timestamp())
    return gate


def call_record(uid: str, cost_nanos: int, when: datetime) -> UsageRecord:
    """The record of an answered call that OpenRouter charged `cost_nanos` for."""
    answer = {"id": f"gen-lease-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
              "choices": [{"finish_reason": "stop"}],
              "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                        "cost": float(Decimal(cost_nanos) / DOLLAR)}}
    return build_record(answer, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", when, latency_ms=5),
                        Pricing(None, FALLBACK))


def pending_record(uid: str, worst_nanos: int, when: datetime) -> UsageRecord:
    """A call sent with no answer back: pending at its worst case (chat_steps.record_lost_answer)."""
    return replace(call_record(uid, 0, when), cost_nanos=worst_nanos, estimated_cost_nanos=worst_nanos,
                   cost_source=COST_PENDING, flags=(FLAG_PENDING,))


def held(gate: admission.Gate, granted: admission.Admission, record: UsageRecord) -> UsageRecord:
    """meter_call's first step: the record with what the call holds (its lease, or the lease
    closing with it, or its own reservation)."""
    return admission.holding(gate, granted, record)[0]


def commit(db, gate: admission.Gate, granted: admission.Admission, record: UsageRecord,
           settings: Settings) -> ledger.RecordOutcome:
    """meter_call's next steps: the ledger's commit, then the lease back in the book."""
    outcome = ledger.record_usage(db, record, settings)
    admission.settled(gate, granted, outcome, record)
    return outcome


def settle(db, gate: admission.Gate, granted: admission.Admission, cost_nanos: int, when: datetime,
           settings: Settings, ledger_db=None) -> ledger.RecordOutcome:
    """Record the call as the API does (the ledger's commits through `ledger_db` when given: a
    client that may lose acknowledgements)."""
    record = held(gate, granted, call_record(granted.uid, cost_nanos, when))
    return commit(ledger_db or db, gate, granted, record, settings)
