"""POST /chat/completions: one chat call from request to answer. Reads and checks the request,
plays the test's scripted behaviour (latency, a dropped connection, an error status), routes and
bills the call, records its generation, then answers as JSON or as an SSE stream."""

from __future__ import annotations

import secrets
import string
import time
from datetime import UTC, datetime

from flask import Response, request

from .billing import native_finish_reason
from .catalog import Catalog
from .chat_request import ChatRequest, parse_chat
from .metering import Bill, meter
from .responses import ApiError, drop_connection, json_response, scripted_error
from .routing import Route, pick_route
from .state import State
from .streaming import sse_response, stream_events
from .usage import usage_object

_ALNUM = string.ascii_letters + string.digits


def _new_generation_id() -> str:
    suffix = "".join(secrets.choice(_ALNUM) for _ in range(20))
    return f"gen-{int(time.time())}-{suffix}"


def chat(catalog: Catalog, state: State) -> Response:
    started = time.monotonic()
    try:
        req = parse_chat(request.get_json(force=True, silent=True), catalog)
    except ApiError as exc:
        return exc.response()
    behaviour = state.next_behaviour(req.user)
    config = state.config()
    # status means "fail before generating", unless it describes an in-stream error.
    stream_error = req.stream and "stream_error_after" in behaviour
    scripted = _scripted_failure(behaviour, config, stream_error)
    if scripted is not None:
        return scripted
    try:
        route = pick_route(catalog, req.chain, behaviour, req.body.get("plugins"))
        bill = meter(catalog, state, config, req, route, behaviour, stream_error)
    except ApiError as exc:
        return exc.response()

    gen_id = _new_generation_id()
    created = int(time.time())
    delay_s = config["stream_chunk_delay_ms"] / 1000 if req.stream else 0
    elapsed_ms = int((time.monotonic() - started) * 1000)
    native_finish = native_finish_reason(route.provider, bill.finish_reason)
    # Written before any byte is sent so a client that aborts can still look it up.
    state.add_generation(_generation_record(gen_id, req, route, bill, behaviour, native_finish,
                                            elapsed_ms, delay_s))

    usage = usage_object(bill, behaviour)
    headers = {"X-Generation-Id": gen_id}
    if not req.stream:
        return json_response(_completion(gen_id, created, route, bill, native_finish, usage), headers=headers)
    head = {"id": gen_id, "provider": route.provider, "model": route.served, "created": created}
    events = stream_events(
        head, bill.pieces, usage, bill.finish_reason, native_finish, behaviour,
        delay_s, config["stream_stall_s"], state.stall_event(),
    )
    return sse_response(events, headers)


def _scripted_failure(behaviour: dict, config: dict, stream_error: bool) -> Response | None:
    """The scripted latency, then a dropped connection or an error status before generating."""
    latency_ms = behaviour.get("latency_ms", config["latency_ms"])
    if latency_ms:
        time.sleep(latency_ms / 1000)
    if behaviour.get("drop_connection"):
        return drop_connection()
    if behaviour.get("status") and not stream_error:
        return scripted_error(behaviour)
    return None


def _generation_record(gen_id: str, req: ChatRequest, route: Route, bill: Bill, behaviour: dict,
                       native_finish: str | None, elapsed_ms: int, delay_s: float) -> dict:
    """What GET /generation returns for this call."""
    tokens = bill.tokens
    return {
        "id": gen_id,
        "total_cost": bill.charged,
        "usage": bill.charged,
        "cache_discount": bill.cost.cache_discount,
        "upstream_inference_cost": bill.upstream,
        "is_byok": bill.byok,
        "model": route.served,
        "provider_name": route.provider,
        "streamed": req.stream,
        "cancelled": req.stream and "stream_stall_after" in behaviour,
        "finish_reason": bill.finish_reason,
        "native_finish_reason": native_finish,
        "latency": elapsed_ms,
        "generation_time": elapsed_ms + int(delay_s * 1000 * (len(bill.pieces) + 2)),
        "tokens_prompt": tokens.prompt,
        "tokens_completion": tokens.completion,
        "native_tokens_prompt": tokens.prompt,
        "native_tokens_completion": tokens.completion,
        "native_tokens_reasoning": tokens.reasoning,
        "native_tokens_cached": tokens.cached,
        "num_media_prompt": tokens.images or None,
        "external_user": req.user,
        "origin": request.headers.get("HTTP-Referer", ""),
        "created_at": datetime.now(UTC).isoformat(),
    }


def _completion(gen_id: str, created: int, route: Route, bill: Bill, native_finish: str | None,
                usage: dict) -> dict:
    """The non-streamed answer body."""
    return {
        "id": gen_id, "provider": route.provider, "model": route.served,
        "object": "chat.completion", "created": created,
        "choices": [{
            "index": 0,
            "logprobs": None,
            "finish_reason": bill.finish_reason,
            "native_finish_reason": native_finish,
            "message": {"role": "assistant", "content": bill.content, "refusal": None},
        }],
        "usage": usage,
    }
