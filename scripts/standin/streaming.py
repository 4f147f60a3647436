"""The SSE body of a streamed chat answer, chunk for chunk as OpenRouter sends it: a processing
comment, one delta per word, then the finish chunk and the usage chunk; or, when a test scripts
it, an in-stream error chunk or a stall with no bytes at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import Response

from .jsontext import dumps
from .responses import error_metadata


def sse_response(events: Iterator[str], headers: dict) -> Response:
    # No caching or proxy buffering: each chunk must reach the client as it is yielded.
    headers["Cache-Control"] = "no-cache"
    headers["X-Accel-Buffering"] = "no"
    return Response(events, mimetype="text/event-stream", headers=headers)


def _stream_error(behaviour: dict) -> dict:
    """The error object of a mid-stream failure (502 unless the script gives a status)."""
    error = {"code": behaviour.get("status") or 502,
             "message": behaviour.get("message") or "Provider returned error"}
    metadata = error_metadata(behaviour)
    if metadata:
        error["metadata"] = metadata
    return error


def stream_events(head: dict, pieces: list[str], usage: dict, finish_reason: str,
                  native_finish: str | None, behaviour: dict, delay_s: float,
                  stall_s: float, stall_event) -> Iterator[str]:
    """SSE lines as OpenRouter sends them; werkzeug flushes each one as yielded."""

    def event(choices: list, **extra: Any) -> str:
        chunk = {"id": head["id"], "provider": head["provider"], "model": head["model"],
                 "object": "chat.completion.chunk", "created": head["created"],
                 "choices": choices, **extra}
        return "data: " + dumps(chunk) + "\n\n"

    error_after = behaviour.get("stream_error_after") if finish_reason == "error" else None
    stall_after = behaviour.get("stream_stall_after")
    stop_at = min(x for x in (error_after, stall_after, len(pieces)) if x is not None)
    sent = 0

    def pause() -> None:
        if delay_s and sent:
            time.sleep(delay_s)

    yield ": OPENROUTER PROCESSING\n\n"
    for piece in pieces[:stop_at]:
        pause()
        yield event([{"index": 0, "delta": {"role": "assistant", "content": piece},
                      "finish_reason": None, "native_finish_reason": None, "logprobs": None}])
        sent += 1

    if error_after is not None:
        pause()
        yield event([{"index": 0, "delta": {}, "finish_reason": "error",
                      "native_finish_reason": "error"}], error=_stream_error(behaviour))
        yield "data: [DONE]\n\n"
        return
    if stall_after is not None:
        # Hold the connection open with no bytes so the client's read times out.
        # /_control/reset sets the event, freeing this thread early.
        stall_event.wait(stall_s)
        return

    pause()
    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                  "finish_reason": finish_reason, "native_finish_reason": native_finish,
                  "logprobs": None}])
    if not behaviour.get("stream_no_usage"):
        pause()
        yield event([], usage=usage)
    yield "data: [DONE]\n\n"
