"""The usage outbox's message (pure): a record goes in and comes back the same; anything else is
refused as unreadable; which failed commits wait for redelivery and which go to the dead letter."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from google.api_core import exceptions as gexc

from tokenledger.metering import heal, outbox, streaming
from tokenledger.metering.usage import UsageRecord

QUEUED_AT = datetime(2026, 12, 6, 12, 0, 5, 250000, tzinfo=timezone.utc)
RECORD = UsageRecord(
    generation_id="gen-outbox-1", user_id="u-1", requested_model="openai/gpt-4o-mini", model="openai/gpt-4o-mini",
    provider="OpenAI", prompt_tokens=12, completion_tokens=4, total_tokens=16, cached_tokens=2, cache_write_tokens=0,
    reasoning_tokens=0, cost_nanos=4_200, estimated_cost_nanos=4_150, cost_source="openrouter", is_byok=False,
    upstream_cost_nanos=None, latency_ms=321, endpoint="/v1/chat/completions", feature="chat", status="ok",
    finish_reason="stop", occurred_at=datetime(2026, 12, 6, 11, 59, 59, tzinfo=timezone.utc),
    flags=("cost_estimated",), metadata={"messages": 1, "params": {"max_tokens": 20}},
    reserved_nanos=90_000, reservation_id="res-7", lease=True,
)


def test_a_record_comes_back_exactly_with_when_and_why_it_was_queued():
    data, attributes = outbox.encode(RECORD, "RetryError('deadline')", QUEUED_AT)
    assert attributes == {"generation_id": "gen-outbox-1", "user_id": "u-1"}
    back = outbox.decode(data)
    assert back == outbox.Queued(RECORD, QUEUED_AT, "RetryError('deadline')")
    # What is published is JSON a person (or another language) can read: the record's fields by name.
    payload = json.loads(data)
    assert (payload["v"], payload["queued_at"]) == (1, "2026-12-06T12:00:05.250000+00:00")
    assert (payload["record"]["cost_nanos"], payload["record"]["reservation_id"], payload["record"]["lease"]) == (
        4_200, "res-7", True)


def test_the_same_record_encodes_to_the_same_bytes():
    assert outbox.encode(RECORD, "x", QUEUED_AT) == outbox.encode(RECORD, "x", QUEUED_AT)


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'{"v": 2, "record": {}}', b'{"v": 1, "queued_at": "2026-12-06T12:00:00+00:00"}',
    json.dumps({"v": 1, "queued_at": "2026-12-06T12:00:00+00:00", "record": {"user_id": "u"}}).encode(),
    json.dumps({"v": 1, "queued_at": "yesterday", "record": RECORD.to_log()}).encode(),
])
def test_anything_else_is_an_invalid_message(data):
    with pytest.raises(outbox.InvalidMessage):
        outbox.decode(data)


def test_a_record_without_generation_id_is_invalid():
    data, _ = outbox.encode(RECORD, "x", QUEUED_AT)
    payload = json.loads(data)
    payload["record"]["generation_id"] = ""
    with pytest.raises(outbox.InvalidMessage):
        outbox.decode(json.dumps(payload))


def test_queued_at_must_be_timezone_aware():
    with pytest.raises(ValueError):
        outbox.encode(RECORD, "x", datetime(2026, 12, 6, 12, 0))


@pytest.mark.parametrize("cause, queued_s, step", [
    (gexc.RetryError("deadline", gexc.ServiceUnavailable("down")), 10, heal.RETRY),
    (gexc.ServiceUnavailable("down"), 86_399, heal.RETRY),
    (gexc.DeadlineExceeded("slow"), 0, heal.RETRY),
    (gexc.Aborted("contention"), 0, heal.RETRY),  # a client error, but transient
    (gexc.ResourceExhausted("quota"), 0, heal.RETRY),
    (OSError("connection reset"), 5, heal.RETRY),
    (gexc.ServiceUnavailable("down"), 86_400, heal.DEAD_LETTER),  # past the bound
    (gexc.InvalidArgument("bad field name"), 0, heal.DEAD_LETTER),  # Firestore refuses it: never passes
    (gexc.PermissionDenied("rules"), 0, heal.DEAD_LETTER),
])
def test_what_follows_a_failed_commit(cause, queued_s, step):
    assert heal.next_step(cause, queued_s, 86_400) == step


def test_fields_are_added_to_a_chunk_keeping_the_upstream_text():
    line = 'data: {"id":"g","choices":[],"usage":{"cost":0.0000042,"total_tokens":16}}'
    assert streaming.with_fields(line, {"usage_recorded": "queued", "budget": None}) == (
        'data: {"id":"g","choices":[],"usage":{"cost":0.0000042,"total_tokens":16},'
        '"usage_recorded":"queued","budget":null}')
    assert streaming.with_fields("data: {}", {"a": 1}) == 'data: {"a":1}'
    with pytest.raises(ValueError):
        streaming.with_fields("data: [1]", {"a": 1})


def test_pending_rows_are_bucketed_by_age_without_gaps():
    from datetime import timedelta

    from tokenledger.metering import health

    now = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    assert health.pending_buckets(now) == [
        ("under_1h", now - timedelta(hours=1), None),
        ("1h_to_1d", now - timedelta(days=1), now - timedelta(hours=1)),
        ("over_1d", None, now - timedelta(days=1)),
    ]
