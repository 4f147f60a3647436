"""What settling a pending streamed call changes (pure): the row from the generation record,
the rollup corrections (the difference, so rollups keep equalling the rows), back-off, drift."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal

from tokenledger.config import Settings
from tokenledger.metering import rollups
from tokenledger.metering.usage import UsageRecord, record_from_row
from tokenledger.reconcile.settle import at_estimate, backoff_delays, drift_tolerance, settled_record

WHEN = datetime(2026, 11, 5, 12, 0, tzinfo=timezone.utc)
PENDING = UsageRecord(
    generation_id="gen-1", user_id="u1", requested_model="openai/gpt-4o-mini", model="openai/gpt-4o-mini",
    provider="OpenAI", prompt_tokens=40, completion_tokens=10, total_tokens=50, cached_tokens=0,
    cache_write_tokens=0, reasoning_tokens=0, cost_nanos=12_000, estimated_cost_nanos=12_000,
    cost_source="pending", is_byok=False, upstream_cost_nanos=None, latency_ms=900,
    endpoint="/v1/chat/completions", feature="chat", status="aborted", finish_reason=None,
    occurred_at=WHEN, flags=("pending_settlement",), metadata={"stream": True}, reserved_nanos=50_000,
)
GENERATION = {"id": "gen-1", "total_cost": 0.0000215, "upstream_inference_cost": 0.0000215, "is_byok": False,
              "tokens_prompt": 35, "tokens_completion": 24, "native_tokens_reasoning": 0, "native_tokens_cached": 0,
              "finish_reason": "stop", "provider_name": "OpenAI"}


def test_settled_record_takes_the_charged_cost_and_real_tokens():
    new = settled_record(PENDING, GENERATION)
    assert new.cost_nanos == 21_500 and new.cost_source == "reconciled"
    assert (new.prompt_tokens, new.completion_tokens, new.total_tokens) == (35, 24, 59)
    assert new.status == "aborted"  # what happened to the call stays on record
    assert "pending_settlement" not in new.flags and new.reserved_nanos == 0
    assert new.estimated_cost_nanos == PENDING.estimated_cost_nanos  # the estimate stays visible


def test_rollup_correction_is_the_difference_so_rows_and_rollups_agree():
    new = settled_record(PENDING, GENERATION)
    diff = rollups.difference(rollups.user_delta(new), rollups.user_delta(PENDING))
    assert diff["cost_nanos"] == 9_500
    assert diff["total_tokens"] == 9 and diff["prompt_tokens"] == -5
    assert "calls" not in diff  # still one call
    by_model = diff["by_model"]["openai/gpt-4o-mini"]
    assert (by_model["tokens"], by_model["cost_nanos"]) == (9, 9_500) and "calls" not in by_model
    # old rollup + difference == new rollup, counter by counter
    old, target = rollups.totals_delta(PENDING), rollups.totals_delta(new)
    tdiff = rollups.difference(target, old)
    assert {k: old[k] + tdiff.get(k, 0) for k in old if k != "cost"} == {k: v for k, v in target.items() if k != "cost"}


def test_a_free_settlement_moves_the_call_from_paid_to_free():
    new = settled_record(PENDING, {**GENERATION, "total_cost": 0})
    diff = rollups.difference(rollups.user_delta(new), rollups.user_delta(PENDING))
    assert diff["free_calls"] == 1 and diff["paid_calls"] == -1 and diff["cost_nanos"] == -12_000


def test_settling_at_the_estimate_changes_no_money_and_flags_the_row():
    new = at_estimate(PENDING)
    assert new.cost_nanos == PENDING.cost_nanos and new.cost_source == "estimate"
    assert new.flags == ("settled_at_estimate",)
    assert rollups.difference(rollups.user_delta(new), rollups.user_delta(PENDING)) == {}


def test_row_round_trip_keeps_the_reservation_and_money():
    row = PENDING.row() | {"reserved_nanos": PENDING.reserved_nanos}
    assert record_from_row(row) == PENDING


def test_backoff_doubles():
    assert backoff_delays(4) == [0.5, 1.0, 2.0]
    assert backoff_delays(1) == []


def test_drift_tolerance_is_the_larger_of_percent_and_dollars():
    settings = Settings()
    assert drift_tolerance(Decimal("50"), settings) == Decimal("1")  # 1% of $50 < $1
    assert drift_tolerance(Decimal("500"), settings) == Decimal("5.00")
    strict = dataclasses.replace(settings, drift_tolerance_usd=Decimal("0"))
    assert drift_tolerance(Decimal("50"), strict) == Decimal("0.50")
