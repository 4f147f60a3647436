from datetime import datetime, timezone
from decimal import Decimal

from tokenledger import money
from tokenledger.metering import rollups
from tokenledger.metering.usage import (
    FLAG_FREE_MODEL_BILLED,
    FLAG_UNPRICED,
    CallFacts,
    Pricing,
    UsageRecord,
    build_record,
    request_metadata,
)
from tokenledger.pricing.prices import fallback_price, parse_model

WHEN = datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc)
SONNET = parse_model(
    {
        "id": "anthropic/claude-sonnet-4",
        "pricing": {
            "prompt": "0.000003",
            "completion": "0.000015",
            "input_cache_read": "0.0000003",
            "input_cache_write": "0.00000375",
        },
    }
)
FREE = parse_model({"id": "meta-llama/llama-3.3-70b-instruct:free", "pricing": {"prompt": "0", "completion": "0"}})
FALLBACK = fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))


def response(model="anthropic/claude-sonnet-4", cost=0.0123, **usage_extra):
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 300,
        "total_tokens": 2300,
        "prompt_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 120},
        "cost": cost,
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": cost},
    }
    usage.update(usage_extra)
    return {
        "id": "gen-1-abc",
        "model": model,
        "provider": "Anthropic",
        "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": usage,
    }


def build(resp, price=SONNET, requested=None, feature="chat"):
    return build_record(
        resp,
        CallFacts("u1", requested or resp["model"], "/v1/chat/completions", WHEN, 42, feature, {"images": 0}),
        Pricing(price, FALLBACK),
    )


def test_paid_call_records_charged_cost_and_every_token_kind():
    record = build(response())
    row = record.row()
    assert record.cost_nanos == 12_300_000
    assert row["cost"] == 0.0123 and row["cost_source"] == "openrouter"
    assert (row["cached_tokens"], row["reasoning_tokens"], row["cache_write_tokens"]) == (1500, 120, 0)
    assert row["model_type"] == "paid" and row["is_free"] is False
    assert row["month"] == "2026-11" and row["day"] == "2026-11-30"
    expected_estimate = 500 * Decimal("0.000003") + 1500 * Decimal("0.0000003") + 300 * Decimal("0.000015")
    assert record.estimated_cost_nanos == money.to_nanos(expected_estimate)
    assert row["flags"] == []


def test_cost_is_never_cost_plus_upstream_for_non_byok():
    record = build(response(cost=0.01, cost_details={"upstream_inference_cost": 0.01}))
    assert record.cost_nanos == 10_000_000
    assert record.upstream_cost_nanos == 10_000_000


def test_byok_keeps_fee_and_upstream_apart():
    record = build(response(cost=0.0005, is_byok=True, cost_details={"upstream_inference_cost": 0.01}))
    assert record.is_byok and record.cost_nanos == 500_000 and record.upstream_cost_nanos == 10_000_000


def test_missing_cost_falls_back_to_the_catalog_estimate():
    resp = response()
    del resp["usage"]["cost"]
    record = build(resp)
    assert record.cost_source == "estimate"
    assert record.cost_nanos == record.estimated_cost_nanos > 0


def test_unknown_model_without_cost_is_never_free():
    resp = response(model="new/model", cost=None)
    record = build(resp, price=None)
    assert record.cost_source == "unpriced" and FLAG_UNPRICED in record.flags
    assert record.cost_nanos == money.to_nanos(2000 * Decimal("0.00001") + 300 * Decimal("0.00003"))
    assert record.model_type == "paid"


def test_free_model_at_zero_cost_is_free():
    record = build(response(model=FREE.model_id, cost=0), price=FREE)
    assert record.is_free and record.model_type == "free" and record.flags == ()


def test_free_model_that_billed_is_paid_and_flagged():
    record = build(response(model=FREE.model_id, cost=0.002), price=FREE)
    assert record.model_type == "paid" and record.cost_nanos == 2_000_000
    assert FLAG_FREE_MODEL_BILLED in record.flags


def test_router_request_is_priced_as_the_served_model():
    record = build(response(model="anthropic/claude-sonnet-4"), requested="openrouter/auto")
    assert record.requested_model == "openrouter/auto" and record.model == "anthropic/claude-sonnet-4"


def test_log_round_trip_for_replay():
    record = build(response())
    assert UsageRecord.from_log(record.to_log()) == record


def test_metadata_has_sizes_not_text():
    body = {
        "messages": [
            {"role": "user", "content": "secret plan"},
            {"role": "user", "content": [{"type": "text", "text": "abc"}, {"type": "image_url", "image_url": {}}]},
        ],
        "max_tokens": 5,
    }
    meta = request_metadata(body)
    assert meta == {"message_count": 2, "prompt_chars": 14, "images": 1, "stream": False, "max_tokens": 5}
    assert "secret plan" not in str(meta)


def test_rollup_delta_splits_free_and_paid():
    paid = rollups.user_delta(build(response()))
    free = rollups.user_delta(build(response(model=FREE.model_id, cost=0), price=FREE, feature=None))
    assert (paid["paid_calls"], paid["paid_tokens"], paid["free_tokens"]) == (1, 2300, 0)
    assert (free["free_calls"], free["free_tokens"], free["cost_nanos"]) == (1, 2300, 0)
    assert paid["by_model"]["anthropic/claude-sonnet-4"]["cost_nanos"] == 12_300_000
    assert free["by_feature"] == {rollups.UNATTRIBUTED: {"calls": 1, "tokens": 2300, "cost": 0.0, "cost_nanos": 0}}
