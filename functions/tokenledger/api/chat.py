"""Chat routes: POST /v1/chat/completions (metered, plain or streamed) and GET /v1/models."""
from __future__ import annotations

from flask import Blueprint, jsonify

from tokenledger.api import validation
from tokenledger.api.auth import current_caller
from tokenledger.api.chat_steps import (
    CHAT_ENDPOINT,
    OVERHEAD_HEADER,
    abandon_call,
    budget_status,
    build_call_record,
    downgrade_headers,
    overhead_ms,
    prepare_call,
    record_lost_answer,
    recorded_header,
    settle_call,
    upstream_to_api_error,
)
from tokenledger.api.plans import caller_plan, tier_of
from tokenledger.api.chat_stream import stream_chat
from tokenledger.api.context import services
from tokenledger.openrouter import UpstreamError
from tokenledger.policy import candidates

bp = Blueprint("chat", __name__)


@bp.post(CHAT_ENDPOINT)
def chat_completions():
    svc = services()
    call = prepare_call(svc)
    if call.chat.stream:
        return stream_chat(svc, call)
    try:
        result = svc.openrouter.chat(call.upstream_body, call.caller.uid)
    except UpstreamError as exc:
        if exc.maybe_billed:
            record_lost_answer(svc, call, exc)  # sent, no answer: a pending row holds the reservation
        else:
            abandon_call(svc, call)
        error = upstream_to_api_error(exc)
        error.headers[OVERHEAD_HEADER] = overhead_ms(call)
        raise error
    call.upstream_ms = result.latency_ms

    # From here on OpenRouter has answered (and billed): nothing below may turn into a 500.
    record, recorded = settle_call(
        svc, call, lambda: build_call_record(svc, call, result.body, result.latency_ms, result.generation_id),
        answer=result.body,
    )
    # Beside `usage`: OpenAI clients ignore fields they do not know.
    response = jsonify({**result.body, "budget": budget_status(svc, call, record, recorded)})
    response.headers["X-Usage-Recorded"] = recorded_header(call, recorded)
    if result.generation_id:
        response.headers["X-Generation-Id"] = result.generation_id
    response.headers[OVERHEAD_HEADER] = overhead_ms(call)
    response.headers.update(downgrade_headers(call))
    return response


@bp.get("/v1/models")
def list_models():
    svc = services()
    caller = current_caller()
    tier = tier_of(caller_plan(svc, caller, svc.now()))  # only what the caller's plan allows
    catalog = svc.catalog.get()
    models = [
        {
            "id": price.model_id,
            "name": price.name,
            "is_free": price.is_free,
            "variable_price": price.variable,
            "pricing": price.pricing_strings(),
            "context_length": price.context_length,
            "max_completion_tokens": price.max_completion_tokens,
        }
        for price in sorted(catalog.models.values(), key=lambda p: p.model_id)
        if validation.is_allowed(price.model_id, svc.settings)
        and (tier is None or candidates.is_allowed(price.model_id, tier.allowed))
    ]
    return jsonify(
        {
            "catalog": {
                "source": catalog.source,
                "fetched_at": catalog.fetched_at.isoformat() if catalog.fetched_at else None,
            },
            "data": models,
        }
    )
