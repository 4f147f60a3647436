"""POST /v1/chat/completions with `"stream": true`: relay OpenRouter's SSE stream, metered.

The same three steps as a plain call (chat_steps.prepare_call -> upstream -> build_call_record +
meter_call), stretched over a stream:
  * chunks are forwarded as they arrive (comment lines included, they keep proxies alive);
  * when the usage chunk (empty `choices`) arrives, the call is recorded once, BEFORE that
    chunk and `[DONE]` are passed on, so a client that saw its cost knows it was recorded; the
    chunk then carries `usage_recorded` (true | queued | false, as X-Usage-Recorded) and the
    `budget` object beside `usage` (extra fields the OpenAI SDKs pass through); a stream that
    brought no usage chunk ends with one chunk of empty `choices` carrying them, before `[DONE]`;
  * an error chunk after streaming started is forwarded as it came (an SSE error event),
    once the call is recorded (clients such as the openai SDK stop reading at it);
  * when the client goes away (the WSGI server closes the generator: GeneratorExit) or the
    upstream ends without usage, the call is still recorded, in the generator's `finally`:
    status aborted / incomplete / error, cost_source `pending`, an estimate of the cost so
    far, the generation id; the reservation stays held until reconcile.py settles the row
    to what OpenRouter charged.
The generator runs after the request context has gone: it only uses what it was handed.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Iterator

from flask import Response

from tokenledger import logs
from tokenledger.api.chat_steps import (
    OVERHEAD_HEADER,
    PreparedCall,
    abandon_call,
    budget_status,
    build_call_record,
    downgrade_headers,
    overhead_ms,
    record_lost_answer,
    recorded_header,
    settle_call,
    upstream_to_api_error,
)
from tokenledger.api.context import Services
from tokenledger.metering import streaming, usage
from tokenledger.openrouter import StreamBroken, UpstreamError, UpstreamStream

STATUS_ABORTED = "aborted"  # the client went away mid-stream
STATUS_INCOMPLETE = "incomplete"  # the upstream ended (or stalled) without a usage chunk
STATUS_ERROR = "error"  # an error chunk after streaming started


def stream_chat(svc: Services, call: PreparedCall) -> Response:
    try:
        upstream = svc.openrouter.open_stream(call.upstream_body, call.caller.uid)
    except UpstreamError as exc:
        if exc.maybe_billed:
            record_lost_answer(svc, call, exc)  # sent, then no answer: it may have been billed
        else:
            abandon_call(svc, call)  # failed before the first byte: nothing billed
        error = upstream_to_api_error(exc)
        error.headers[OVERHEAD_HEADER] = overhead_ms(call)
        raise error
    call.upstream_ms = round((time.perf_counter() - upstream.started) * 1000)
    relay = StreamRelay(svc, call, upstream)
    # A stream's overhead header can only say what came before its first byte.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", OVERHEAD_HEADER: overhead_ms(call),
               **downgrade_headers(call)}
    if upstream.generation_id:
        headers["X-Generation-Id"] = upstream.generation_id
    return Response(relay.events(), mimetype="text/event-stream", headers=headers)


class StreamRelay:
    def __init__(self, svc: Services, call: PreparedCall, upstream: UpstreamStream):
        self.svc = svc
        self.call = call
        self.upstream = upstream
        self.state = streaming.StreamState(generation_id=upstream.generation_id)
        self.record: usage.UsageRecord | None = None
        self.recorded: bool | None = None  # None until an attempt was made

    def events(self) -> Iterator[str]:
        client_gone = True  # until the loop finishes, leaving means the client closed us
        broken = False
        held_error = None  # an error chunk waits until the call is recorded (SDKs stop reading at it)
        try:
            try:
                for line in self.upstream.lines():
                    event = streaming.parse_line(line)
                    if event is None:
                        continue
                    self.state.add(event)
                    if event.kind == streaming.DONE_EVENT:
                        break
                    if event.usage is not None and self.recorded is None:
                        self._meter(status=STATUS_ERROR if self.state.error else None)
                        line = streaming.with_fields(line, self._signal())  # what happened, in the usage chunk
                    elif event.error is not None and self.recorded is None:
                        held_error = line  # a usage chunk may still follow it
                        continue
                    if held_error is not None:
                        yield held_error + "\n\n"
                        held_error = None
                    yield line + "\n\n"
            except StreamBroken as exc:
                broken = True
                logs.stream_upstream_broken(generation_id=self.state.generation_id, error=str(exc))
            client_gone = False
            if self.recorded is None:
                self._meter_pending(STATUS_ERROR if self.state.error else STATUS_INCOMPLETE)
                yield streaming.signal_chunk(self.state, self._signal())  # no usage chunk to carry it
            if held_error is not None:
                yield held_error + "\n\n"
            if broken and not self.state.error:
                yield streaming.sse_error(
                    "upstream_incomplete",
                    "The AI service stopped streaming before the end; the call was recorded as incomplete.",
                    self.state.generation_id,
                )
            yield "data: " + streaming.DONE + "\n\n"
        finally:
            # GeneratorExit (client gone) or any failure: the call is recorded all the same.
            try:
                if self.recorded is None:
                    self._meter_pending(STATUS_ABORTED if client_gone else STATUS_INCOMPLETE)
            finally:
                self.upstream.close()

    def _signal(self) -> dict:
        """What a plain call says in X-Usage-Recorded and `budget`, for the stream's last chunk."""
        return {"usage_recorded": recorded_header(self.call, bool(self.recorded)),
                "budget": budget_status(self.svc, self.call, self.record, bool(self.recorded))}

    def _latency_ms(self) -> int:
        return int((time.perf_counter() - self.upstream.started) * 1000)

    def _meter(self, status: str | None) -> None:
        self._settle(lambda: build_call_record(
            self.svc, self.call, self.state.response_body(), self._latency_ms(),
            self.state.generation_id, status=status,
        ))

    def _meter_pending(self, status: str) -> None:
        """No usage chunk: record the estimate so far as `pending` for reconcile to settle."""
        def make() -> usage.UsageRecord:
            body = self.state.response_body()
            body["usage"] = self.state.partial_usage(usage.estimate_prompt_tokens(self.call.body))
            record = build_call_record(
                self.svc, self.call, body, self._latency_ms(), self.state.generation_id, status=status
            )
            flags = tuple(f for f in record.flags if f != usage.FLAG_COST_MISSING) + (usage.FLAG_PENDING,)
            return dataclasses.replace(record, cost_source=usage.COST_PENDING, flags=flags)

        logs.stream_recorded_pending(generation_id=self.state.generation_id, status=status)
        self._settle(make)

    def _settle(self, make) -> None:
        # settle_call never raises: a failure to record is logged for replay, the stream goes on.
        self.record, self.recorded = settle_call(self.svc, self.call, make)
