"""The ledger's write path on the real Firestore emulator: atomic, idempotent, retried."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from google.api_core import exceptions as gexc

from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from .ledger_checks import actual_rollup, expected_rollup, month_doc, rows_for

SETTINGS = Settings(record_deadline_s=5)


def make_record(uid: str, cost: float = 0.000123) -> object:
    response = {
        "id": f"gen-test-{uuid.uuid4().hex}",
        "model": "openai/gpt-4o-mini",
        "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "cost": cost},
    }
    return build_record(
        response,
        CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", datetime.now(timezone.utc), 5, "test"),
        Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))),
    )


class LostAckBatch:
    """Commits for real, then raises as if the acknowledgement was lost on the way back."""

    def __init__(self, batch, db):
        self._batch = batch
        self._db = db

    def __getattr__(self, name):
        return getattr(self._batch, name)

    def commit(self, **options):
        self._batch.commit(**options)
        self._db.lost_acks += 1
        raise gexc.DeadlineExceeded("ack lost")


class FlakyDb:
    """A real Firestore client whose first `lose` commits land but report a failure."""

    def __init__(self, db, lose: int = 1, fail_before: int = 0):
        self._db = db
        self.lose = lose
        self.fail_before = fail_before
        self.lost_acks = 0

    def __getattr__(self, name):
        return getattr(self._db, name)

    def batch(self):
        if self.fail_before:
            self.fail_before -= 1
            return _Unavailable()
        if self.lose:
            self.lose -= 1
            return LostAckBatch(self._db.batch(), self)
        return self._db.batch()


class _Unavailable:
    def __getattr__(self, name):
        return lambda *a, **k: None

    def commit(self, **options):
        raise gexc.ServiceUnavailable("firestore briefly unavailable")


def test_lost_ack_retry_counts_once(db):
    uid = f"u-{uuid.uuid4().hex}"
    record = make_record(uid)
    flaky = FlakyDb(db, lose=1)
    outcome = ledger.record_usage(flaky, record, SETTINGS)
    assert flaky.lost_acks == 1 and outcome.attempts == 2
    assert outcome.status == "already_recorded"
    rows = rows_for(db, uid)
    assert len(rows) == 1
    assert month_doc(db, uid, record.month)["calls"] == 1
    assert actual_rollup(month_doc(db, uid, record.month)) == expected_rollup(rows)


def test_transient_errors_are_retried_then_recorded(db):
    uid = f"u-{uuid.uuid4().hex}"
    record = make_record(uid)
    outcome = ledger.record_usage(FlakyDb(db, lose=0, fail_before=2), record, SETTINGS)
    assert (outcome.status, outcome.attempts) == ("recorded", 3)
    assert month_doc(db, uid, record.month)["cost_nanos"] == 123_000


def test_a_second_recording_of_the_same_call_changes_nothing(db):
    uid = f"u-{uuid.uuid4().hex}"
    record = make_record(uid)
    assert ledger.record_usage(db, record, SETTINGS).status == "recorded"
    before = month_doc(db, uid, record.month)
    for _ in range(3):
        assert ledger.record_usage(db, record, SETTINGS).status == "already_recorded"
    after = month_doc(db, uid, record.month)
    assert actual_rollup(after) == actual_rollup(before)
    assert len(rows_for(db, uid)) == 1


def test_persistent_failure_raises_with_the_record(db):
    record = make_record(f"u-{uuid.uuid4().hex}")
    always_down = FlakyDb(db, lose=0, fail_before=10_000)
    with pytest.raises(ledger.RecordingFailed) as failure:
        ledger.record_usage(always_down, record, Settings(record_deadline_s=1))
    assert failure.value.record == record
    assert rows_for(db, record.user_id) == []


def test_sub_micro_dollar_calls_sum_exactly(db):
    uid = f"u-{uuid.uuid4().hex}"
    records = [make_record(uid, cost=0.0000000375) for _ in range(40)]
    for record in records:
        ledger.record_usage(db, record, SETTINGS)
    month = month_doc(db, uid, records[0].month)
    assert month["cost_nanos"] == 40 * records[0].cost_nanos == 40 * 38
