"""Chat routes: POST /v1/chat/completions (metered, plain or streamed) and GET /v1/models."""
from __future__ import annotations

from flask import Blueprint, jsonify

from tokenledger.api import validation
from tokenledger.api.auth import current_caller
from tokenledger.api.chat_steps import (
    CHAT_ENDPOINT,
    abandon_call,
    budget_status,
    build_call_record,
    meter_call,
    prepare_call,
    upstream_to_api_error,
)
from tokenledger.api.chat_stream import stream_chat
from tokenledger.api.context import services
from tokenledger.openrouter import UpstreamError

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
        abandon_call(svc, call)
        raise upstream_to_api_error(exc)

    record = build_call_record(svc, call, result.body, result.latency_ms, result.generation_id)
    recorded = meter_call(svc, call, record)
    # Beside `usage`: OpenAI clients ignore fields they do not know.
    response = jsonify({**result.body, "budget": budget_status(svc, call)})
    response.headers["X-Usage-Recorded"] = "true" if recorded else "false"
    if record.generation_id:
        response.headers["X-Generation-Id"] = record.generation_id
    return response


@bp.get("/v1/models")
def list_models():
    svc = services()
    current_caller()
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
