"""Reading OpenRouter's SSE stream (pure): comments, content, the empty-choices usage chunk,
in-stream errors, [DONE]."""
from __future__ import annotations

import json

from tokenledger.metering import streaming
from tokenledger.metering.streaming import StreamState, parse_line

GEN = "gen-1-abc"


def data(**chunk) -> str:
    return "data: " + json.dumps({"id": GEN, "model": "openai/gpt-4o-mini", "provider": "OpenAI", **chunk})


def delta(text: str, finish=None) -> str:
    return data(choices=[{"index": 0, "delta": {"content": text}, "finish_reason": finish}])


USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17, "cost": 0.0000123}
STREAM = [
    ": OPENROUTER PROCESSING",
    "",
    delta("Echo:"),
    "",
    delta(" hello"),
    delta("", finish="stop"),
    data(choices=[], usage=USAGE),
    "data: [DONE]",
]


def feed(lines) -> StreamState:
    state = StreamState()
    for line in lines:
        event = parse_line(line)
        if event is not None:
            state.add(event)
    return state


def test_line_kinds():
    assert parse_line("") is None
    assert parse_line(": OPENROUTER PROCESSING").kind == streaming.COMMENT
    assert parse_line("data: [DONE]").kind == streaming.DONE_EVENT
    assert parse_line("event: message").kind == streaming.OTHER
    assert parse_line("data: {not json").kind == streaming.OTHER
    assert parse_line(delta("x")).kind == streaming.DATA


def test_usage_chunk_with_empty_choices_is_read_not_skipped():
    state = feed(STREAM)
    assert state.usage == USAGE
    assert state.finish_reason == "stop"  # not overwritten by the usage chunk's empty choices
    assert state.generation_id == GEN and state.model == "openai/gpt-4o-mini" and state.provider == "OpenAI"
    assert state.content_chars == len("Echo: hello")
    assert state.done
    body = state.response_body()
    assert body["usage"]["cost"] == 0.0000123 and body["choices"] == [{"finish_reason": "stop"}]


def test_error_chunk_sets_error_and_finish_reason():
    error = {"code": 502, "message": "Provider returned error"}
    state = feed([delta("Echo:"), data(choices=[{"index": 0, "delta": {}, "finish_reason": "error"}], error=error)])
    assert state.error == error and state.finish_reason == "error" and state.usage is None


def test_partial_usage_estimates_from_what_was_streamed():
    state = feed(STREAM[:5])  # cut off before the end: no usage
    assert state.usage is None
    usage = state.partial_usage(prompt_tokens_guess=30)
    assert usage == {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33}  # 11 chars -> 3 tokens
    assert "cost" not in usage  # priced by the catalog, never a made-up charged cost


def test_stream_without_any_chunk_keeps_the_header_generation_id():
    state = StreamState(generation_id="gen-from-header")
    state.add(parse_line(delta("x")))
    assert state.generation_id == "gen-from-header"


def test_error_event_is_valid_sse_the_sdk_reads_as_an_error():
    text = streaming.sse_error("upstream_incomplete", "stopped", GEN)
    assert text.endswith("\n\n")
    chunk = json.loads(text[len("data: "):])
    assert chunk["error"] == {"code": "upstream_incomplete", "message": "stopped"}
    assert chunk["choices"][0]["finish_reason"] == "error" and chunk["id"] == GEN
