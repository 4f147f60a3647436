"""The SSE relay's steps (api/chat_stream.StreamRelay.events), one upstream script at a time:
which chunks the client gets, in which order, and when the call is recorded relative to them.

The upstream is a list of SSE lines; the ledger write is replaced by a function that notes
the record in the same list the client's chunks go to, so "recorded before the usage chunk"
is an order in one list. The real ledger (Firestore) is tested on the emulator
(tests/integration/test_streaming.py).
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tokenledger.api import chat_steps, validation
from tokenledger.api.auth import Caller
from tokenledger.api.chat_stream import StreamRelay
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.openrouter import StreamBroken
from tokenledger.pricing.prices import Catalog, parse_model

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
GEN = "gen-relay-1"
MINI = parse_model({"id": "openai/gpt-4o-mini", "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}})


def data(obj: dict) -> str:
    return "data: " + json.dumps(obj)


def content(text: str) -> str:
    return data({"id": GEN, "model": MINI.model_id, "provider": "OpenAI",
                 "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


USAGE = data({"id": GEN, "model": MINI.model_id, "provider": "OpenAI", "choices": [],
              "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16, "cost": 0.0000042}})
ERROR = data({"id": GEN, "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
              "error": {"code": 502, "message": "Provider returned error"}})
DONE = "data: [DONE]"


def signed(line: str, recorded: str) -> str:
    """The usage chunk as the client gets it: the upstream's text, then what happened to the call
    (no budget gate in these tests: `budget` is null)."""
    return line[:-1] + ',"usage_recorded":"%s","budget":null}' % recorded


def signal(recorded: str) -> str:
    """The last chunk of a stream that brought no usage chunk."""
    return ('data: {"object":"chat.completion.chunk","choices":[],"id":"%s","model":"%s",'
            '"usage_recorded":"%s","budget":null}' % (GEN, MINI.model_id, recorded))


class Upstream:
    def __init__(self, lines: list[str], broken_after: int | None = None):
        self._lines = lines
        self._broken_after = broken_after
        self.generation_id = GEN
        self.started = time.perf_counter()
        self.closed = False

    def lines(self):
        for index, line in enumerate(self._lines):
            if index == self._broken_after:
                raise StreamBroken("connection reset")
            yield line

    def close(self):
        self.closed = True


class Svc:
    settings = Settings(fallback_prompt_price=Decimal("0.00001"), fallback_completion_price=Decimal("0.00003"))
    db = None
    outbox = None

    @staticmethod
    def now():
        return NOW


@pytest.fixture()
def seen(monkeypatch):
    """What happened, in order: the client's chunks and ("RECORDED", record) entries."""
    events: list = []

    def record_usage(db, record, settings, replay=False):
        events.append(("RECORDED", record))
        return ledger.RecordOutcome(record.generation_id, "recorded", 1)

    monkeypatch.setattr(ledger, "record_usage", record_usage)
    return events


def relay(upstream: Upstream) -> StreamRelay:
    body = {"model": MINI.model_id, "messages": [{"role": "user", "content": "Hello there"}], "stream": True}
    catalog = Catalog({MINI.model_id: MINI}, source="test")
    call = chat_steps.PreparedCall(Caller("u1"), body, validation.ChatRequest.model_validate(body), catalog, MINI,
                                   plan=chat_steps.plan_call(body, catalog, Svc.settings), now=NOW)
    return StreamRelay(Svc(), call, upstream)


def run(relay_: StreamRelay, seen: list, take: int | None = None) -> list:
    events = relay_.events()
    for index, chunk in enumerate(events):
        seen.append(chunk)
        if take is not None and index + 1 == take:
            events.close()  # the client went away
            break
    return seen


def records(seen: list) -> list:
    return [entry[1] for entry in seen if isinstance(entry, tuple)]


def test_chunks_in_order_and_the_call_recorded_before_its_usage_chunk(seen):
    upstream = Upstream([": OPENROUTER PROCESSING", "", content("Hel"), "", content("lo"), "", USAGE, "", DONE, ""])
    out = run(relay(upstream), seen)
    [record] = records(out)
    assert [e if isinstance(e, str) else "RECORDED" for e in out] == [
        ": OPENROUTER PROCESSING\n\n", content("Hel") + "\n\n", content("lo") + "\n\n",
        "RECORDED", signed(USAGE, "true") + "\n\n", "data: [DONE]\n\n",
    ]
    assert (record.generation_id, record.status, record.cost_source, record.cost_nanos) == (GEN, "ok", "openrouter", 4_200)
    assert (record.prompt_tokens, record.completion_tokens, record.provider) == (12, 4, "OpenAI")
    assert upstream.closed


def test_an_error_chunk_waits_for_the_record_and_a_following_usage_chunk(seen):
    out = run(relay(Upstream([content("Hi"), ERROR, USAGE, DONE])), seen)
    [record] = records(out)
    assert [e if isinstance(e, str) else "RECORDED" for e in out] == [
        content("Hi") + "\n\n", "RECORDED", ERROR + "\n\n", signed(USAGE, "true") + "\n\n", "data: [DONE]\n\n",
    ]
    assert (record.status, record.cost_source, record.cost_nanos) == ("error", "openrouter", 4_200)


def test_an_error_chunk_without_usage_is_recorded_pending_then_forwarded(seen):
    out = run(relay(Upstream([content("Hi"), ERROR, DONE])), seen)
    [record] = records(out)
    assert [e if isinstance(e, str) else "RECORDED" for e in out] == [
        content("Hi") + "\n\n", "RECORDED", signal("true") + "\n\n", ERROR + "\n\n", "data: [DONE]\n\n",
    ]
    assert (record.status, record.cost_source) == ("error", "pending")
    assert "pending_settlement" in record.flags and "cost_missing" not in record.flags
    # The estimate so far: the prompt guess (11 characters / 3 -> 4, + 8 per message, + 1 = 13)
    # and "Hi" (2 characters / 4 -> 1 token), at the catalog's prices.
    assert (record.prompt_tokens, record.completion_tokens) == (13, 1)
    assert record.cost_nanos == 13 * 150 + 1 * 600


def test_an_upstream_that_breaks_gets_an_incomplete_error_chunk(seen):
    upstream = Upstream([content("Hi"), content(" there"), USAGE], broken_after=2)
    out = run(relay(upstream), seen)
    [record] = records(out)
    chunks = [e for e in out if isinstance(e, str)]
    assert chunks[:2] == [content("Hi") + "\n\n", content(" there") + "\n\n"] and chunks[-1] == "data: [DONE]\n\n"
    assert chunks[2] == signal("true") + "\n\n"
    error = json.loads(chunks[3].removeprefix("data: "))
    assert error["error"]["code"] == "upstream_incomplete" and error["id"] == GEN
    assert len(chunks) == 5
    assert (record.status, record.cost_source) == ("incomplete", "pending")
    assert upstream.closed


def test_a_client_that_goes_away_leaves_an_aborted_pending_record(seen):
    upstream = Upstream([content("Hi"), content(" there"), USAGE, DONE])
    out = run(relay(upstream), seen, take=1)
    [record] = records(out)
    assert out[0] == content("Hi") + "\n\n"
    assert (record.status, record.cost_source, record.generation_id) == ("aborted", "pending", GEN)
    assert upstream.closed


def test_a_record_that_cannot_be_committed_does_not_stop_the_stream(monkeypatch, seen):
    def failing(db, record, settings, replay=False):
        seen.append(("RECORDED", record))
        raise ledger.RecordingFailed(record, RuntimeError("firestore down"))

    monkeypatch.setattr(ledger, "record_usage", failing)
    r = relay(Upstream([content("Hi"), USAGE, DONE]))
    out = run(r, seen)
    assert [e for e in out if isinstance(e, str)] == [content("Hi") + "\n\n", signed(USAGE, "false") + "\n\n",
                                                      "data: [DONE]\n\n"]
    assert r.recorded is False and len(records(out)) == 1  # tried once, not again at the end


class Outbox:
    """The outbox as the API sees it: what was queued, and Pub/Sub's message id (None: down)."""

    def __init__(self, message_id):
        self.message_id = message_id
        self.queued = []

    def queue(self, record, reason, now):
        self.queued.append(record)
        return self.message_id


@pytest.mark.parametrize("message_id, said", [("m-1", "queued"), (None, "false")])
def test_a_record_the_ledger_could_not_commit_says_queued_or_false_in_the_usage_chunk(monkeypatch, seen,
                                                                                       message_id, said):
    def failing(db, record, settings, replay=False):
        raise ledger.RecordingFailed(record, RuntimeError("firestore down"))

    monkeypatch.setattr(ledger, "record_usage", failing)
    r = relay(Upstream([content("Hi"), USAGE, DONE]))
    outbox = Outbox(message_id)
    r.svc.outbox = outbox
    out = run(r, seen)
    assert out == [content("Hi") + "\n\n", signed(USAGE, said) + "\n\n", "data: [DONE]\n\n"]
    [queued] = outbox.queued
    assert (queued.generation_id, queued.cost_nanos, queued.status) == (GEN, 4_200, "ok")


def test_a_stream_without_usage_whose_record_is_queued_ends_with_the_signal_chunk(monkeypatch, seen):
    monkeypatch.setattr(ledger, "record_usage",
                        lambda db, record, settings, replay=False: (_ for _ in ()).throw(
                            ledger.RecordingFailed(record, RuntimeError("firestore down"))))
    r = relay(Upstream([content("Hi"), DONE]))
    r.svc.outbox = Outbox("m-2")
    out = run(r, seen)
    assert out == [content("Hi") + "\n\n", signal("queued") + "\n\n", "data: [DONE]\n\n"]
