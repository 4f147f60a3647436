"""Chat routes: POST /v1/chat/completions (metered) and GET /v1/models."""
from __future__ import annotations

from firebase_functions import logger as flog
from flask import Blueprint, jsonify

from .. import ledger, usage
from ..openrouter import UpstreamError
from ..pricing import fallback_price
from . import validation
from .auth import current_caller
from .context import services
from .errors import ApiError

bp = Blueprint("chat", __name__)

CHAT_ENDPOINT = "/v1/chat/completions"


def upstream_to_api_error(exc: UpstreamError) -> ApiError:
    if exc.operator_problem:
        # The operator must act (key or credits); never log the key itself.
        flog.error("openrouter_operator_error", upstream_status=exc.upstream_status, detail=exc.message)
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
    return ApiError(exc.status, exc.code, exc.message, headers)


@bp.post(CHAT_ENDPOINT)
def chat_completions():
    svc = services()
    caller = current_caller()
    body = validation.json_body(svc.settings)
    chat = validation.chat_request(body, svc.settings)
    if chat.stream:
        raise ApiError(400, "streaming_unsupported", "Streaming is not available yet; send stream: false.")
    catalog = svc.catalog.get()
    validation.allowed_model(chat.model, catalog, svc.settings)

    try:
        result = svc.openrouter.chat(body, caller.uid)
    except UpstreamError as exc:
        raise upstream_to_api_error(exc)

    served = str(result.body.get("model") or chat.model)
    price = catalog.get(served) or catalog.get(chat.model)
    record = usage.build_record(
        response=result.body,
        user_id=caller.uid,
        requested_model=chat.model,
        price=price,
        fallback=fallback_price(
            served, svc.settings.fallback_prompt_price, svc.settings.fallback_completion_price
        ),
        latency_ms=result.latency_ms,
        endpoint=CHAT_ENDPOINT,
        feature=chat.feature,
        metadata=usage.request_metadata(body, svc.settings.store_prompts),
        occurred_at=svc.now(),
        generation_id=result.generation_id,
    )
    recorded = _record(svc, record)
    response = jsonify(result.body)
    response.headers["X-Usage-Recorded"] = "true" if recorded else "false"
    if record.generation_id:
        response.headers["X-Generation-Id"] = record.generation_id
    return response


def _record(svc, record: usage.UsageRecord) -> bool:
    """Commit before answering; if that fails the caller still gets the paid-for answer."""
    if not record.generation_id:
        flog.error("usage_not_recorded", reason="no generation id", record=record.to_log())
        return False
    if record.flags:
        flog.warn("usage_flagged", generation_id=record.generation_id, flags=list(record.flags))
    try:
        ledger.record_usage(svc.db, record, svc.settings)
    except ledger.RecordingFailed as exc:
        # The full record goes to the log; scripts/replay_usage.py re-records it idempotently.
        flog.error("usage_not_recorded", reason=repr(exc.cause)[:500], record=record.to_log())
        return False
    return True


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
