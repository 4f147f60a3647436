"""Flask app speaking the OpenRouter API (/api/v1) plus test-only /_control routes."""

from __future__ import annotations

import hmac
import secrets
import string
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .billing import (
    FLOOR_FACTOR,
    Tokens,
    compute_cost,
    count_prompt,
    file_parse_cost,
    loop_prompt,
    native_finish_reason,
    partial_completion,
    plan_completion,
    prefix_key,
    request_prompt,
    stream_pieces,
    wants_1h_cache,
    web_search,
)
from . import images as images_mod
from .catalog import Catalog
from .responses import ApiError, drop_connection, error_response, json_response, scripted_error
from .routing import check_max_price, pick_route
from .state import State
from .streaming import sse_response, stream_events

API = "/api/v1"
BYOK_FEE_RATE = Decimal("0.05")
_ALNUM = string.ascii_letters + string.digits

# Usage override keys that live inside the *_details objects.
_PROMPT_DETAIL_KEYS = {"cached_tokens", "cache_write_tokens", "audio_tokens", "video_tokens"}
_COMPLETION_DETAIL_KEYS = {"reasoning_tokens"}


def _new_generation_id() -> str:
    suffix = "".join(secrets.choice(_ALNUM) for _ in range(20))
    return f"gen-{int(time.time())}-{suffix}"


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _int_override(overrides: dict, key: str, default: int) -> int:
    value = overrides.get(key, default)
    # Non-int overrides (e.g. null) only change what is reported, not the maths.
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _build_usage(tokens: Tokens, cost, charged: Decimal, upstream: Decimal, byok: bool,
                 behaviour: dict) -> dict:
    usage: dict[str, Any] = {
        "prompt_tokens": tokens.prompt,
        "completion_tokens": tokens.completion,
        "total_tokens": tokens.prompt + tokens.completion,
        "prompt_tokens_details": {
            "cached_tokens": tokens.cached,
            "cache_write_tokens": tokens.cache_write,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": tokens.reasoning},
        "cost": charged,
        "is_byok": byok,
        "cost_details": {
            "upstream_inference_cost": upstream,
            "upstream_inference_prompt_cost": cost.prompt,
            "upstream_inference_completions_cost": cost.completion,
        },
    }
    if behaviour.get("omit_cost"):
        del usage["cost"], usage["cost_details"]
    elif behaviour.get("cost_null"):
        usage["cost"] = None
    for key, value in (behaviour.get("usage") or {}).items():
        if key in _PROMPT_DETAIL_KEYS and isinstance(usage["prompt_tokens_details"], dict):
            usage["prompt_tokens_details"][key] = value
        elif key in _COMPLETION_DETAIL_KEYS and isinstance(usage["completion_tokens_details"], dict):
            usage["completion_tokens_details"][key] = value
        else:
            usage[key] = value
    return usage


def create_app(api_key: str | None = None, models_path: str | None = None) -> Flask:
    catalog = Catalog.load(models_path)
    state = State(api_key)
    app = Flask("openrouter_standin")
    app.extensions["standin_state"] = state
    app.extensions["standin_catalog"] = catalog

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.name)

    @app.before_request
    def _log_and_authenticate():
        if request.path == API + "/chat/completions" and request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if body is None:
                body = request.get_data(as_text=True)
            headers = {k.lower(): v for k, v in request.headers.items()}
            if "authorization" in headers:
                headers["authorization"] = "[redacted]"
            state.log_request(body, headers)
        if request.path == API or request.path.startswith(API + "/"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return error_response(401, "No auth credentials found")
            expected = state.config()["api_key"]
            if expected is not None and not hmac.compare_digest(token, expected):
                return error_response(401, "Invalid API key")
        return None

    # -- OpenRouter API ---------------------------------------------------------

    @app.get(API + "/models")
    def models():
        raw = request.args.get("output_modalities", "text").strip().lower()
        wanted = None if raw == "all" else {m.strip() for m in raw.split(",") if m.strip()}
        try:
            offset = int(request.args.get("offset", 0))
            limit = request.args.get("limit")
            limit = int(limit) if limit is not None else None
        except ValueError:
            return error_response(400, "offset and limit must be integers")
        if offset < 0 or (limit is not None and limit < 0):
            return error_response(400, "offset and limit must be >= 0")
        items = catalog.listing(wanted)
        end = offset + limit if limit is not None else None
        return json_response({"data": items[offset:end]})

    @app.get(API + "/generation")
    def generation():
        gen_id = request.args.get("id", "")
        if not gen_id:
            return error_response(400, "Missing generation id")
        record = state.generation(gen_id)
        if record is None:
            return error_response(404, "Generation not found")
        return json_response({"data": record})

    @app.get(API + "/key")
    def key():
        usage = state.key_usage()
        data = {"label": "standin", "limit": None, "limit_remaining": None, "limit_reset": None}
        for prefix in ("usage", "byok_usage"):
            for suffix in ("", "_daily", "_weekly", "_monthly"):
                data[prefix + suffix] = usage[prefix + suffix]
        data["is_free_tier"] = False
        return json_response({"data": data})

    @app.post(API + "/chat/completions")
    def chat():
        return _chat(catalog, state)

    # -- test control (no auth) ---------------------------------------------------

    @app.post("/_control/reset")
    def control_reset():
        state.reset()
        catalog.reset()
        return json_response({"ok": True})

    @app.route("/_control/config", methods=["GET", "POST"])
    def control_config():
        if request.method == "GET":
            config = state.config()
        else:
            patch = request.get_json(force=True, silent=True)
            if not isinstance(patch, dict):
                return error_response(400, "config must be a JSON object")
            try:
                config = state.update_config(patch)
            except ValueError as exc:
                return error_response(400, str(exc))
        config["api_key"] = "[set]" if config["api_key"] is not None else None
        return json_response({"config": config})

    @app.post("/_control/script")
    def control_script():
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
            return error_response(400, 'expected {"user": ..., "responses": [...]}')
        user = body.get("user")
        if user is not None and not isinstance(user, str):
            return error_response(400, "user must be a string or null")
        try:
            queued = state.queue_behaviours(user, body["responses"])
        except ValueError as exc:
            return error_response(400, str(exc))
        return json_response({"user": user, "queued": queued})

    @app.post("/_control/pricing")
    def control_pricing():
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) \
                or not isinstance(body.get("pricing"), dict):
            return error_response(400, 'expected {"model": ..., "pricing": {...}}')
        try:
            pricing = catalog.set_pricing(body["model"], body["pricing"])
        except ValueError as exc:
            return error_response(400, str(exc))
        return json_response({"model": body["model"], "pricing": pricing})

    @app.post("/_control/models")
    def control_models():
        entry = request.get_json(force=True, silent=True)
        try:
            catalog.add_model(entry)
        except ValueError as exc:
            return error_response(400, str(exc))
        return json_response({"model": entry["id"]})

    @app.get("/_control/requests")
    def control_requests():
        return json_response({"requests": state.requests()})

    @app.get("/_control/generations")
    def control_generations():
        has_user = "user" in request.args
        records = state.generations(request.args.get("user"), any_user=not has_user)
        return json_response({"generations": records})

    return app


def _chat(catalog: Catalog, state: State) -> Response:
    started = time.monotonic()
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return error_response(400, "Request body must be a JSON object")
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        return error_response(400, "No model specified")
    fallbacks = body.get("models") if isinstance(body.get("models"), list) else []
    chain = list(dict.fromkeys([model_id] + [m for m in fallbacks if isinstance(m, str)]))
    for candidate in chain:
        if catalog.resolve(candidate) is None:
            return error_response(400, f"{candidate} is not a valid model ID")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return error_response(400, 'Input required: specify "prompt" or "messages"')
    # The newer name wins when a client sends both (OpenAI's own precedence).
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        return error_response(400, "max_tokens must be a positive integer")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        return error_response(400, "user must be a string")
    stream = body.get("stream") is True

    behaviour = state.next_behaviour(user)
    config = state.config()
    latency_ms = behaviour.get("latency_ms", config["latency_ms"])
    if latency_ms:
        time.sleep(latency_ms / 1000)
    if behaviour.get("drop_connection"):
        return drop_connection()
    # status means "fail before generating", unless it describes an in-stream error.
    stream_error = stream and "stream_error_after" in behaviour
    if behaviour.get("status") and not stream_error:
        return scripted_error(behaviour)
    stream_stall = stream and "stream_stall_after" in behaviour

    try:
        route = pick_route(catalog, chain, behaviour, body.get("plugins"))
    except ApiError as exc:
        return exc.response()
    variant, served, priced, provider = route.variant, route.served, route.priced, route.provider

    asked = request_prompt(body)
    size = behaviour.get("image_size")
    image_model = served if served in catalog else priced
    image_tokens = sum(images_mod.image_tokens(image_model, detail, tuple(size) if size else None)
                       for detail in asked.image_details)
    web = web_search(body, variant == "online", int(behaviour.get("web_searches", 1)),
                     behaviour.get("web_results_found"))
    first_call, images = asked.tokens + image_tokens + web.plugin_tokens, asked.images
    context = (catalog.model(priced) or {}).get("context_length")
    if context and first_call > context:
        return error_response(400, f"This endpoint's maximum context length is {context} tokens. However, you "
                              f"requested about {first_call} tokens.", {"error_type": "context_length_exceeded"})
    plan = plan_completion(messages, max_tokens, catalog.is_reasoning(served))
    steps, searches, extras = web.steps, web.searches, web.cost + file_parse_cost(body, asked)
    searching = catalog.searching(priced)
    if searching:  # it searches by itself: a fee per search, each search read on the next step
        n = int(behaviour.get("web_searches", searching.get("searches", 1)))
        steps, searches = steps + (int(searching.get("read_tokens", 0)),) * n, searches + n
        extras += n * catalog.prices(priced).web_search
    calls = len(steps) + 1

    cached = cache_write = 0
    prefix = messages[:-1]
    prefix_tokens, _ = count_prompt(prefix)
    listed = catalog.prices(priced)
    if prefix and prefix_tokens >= config["cache_min_tokens"] and listed.cache_read is not None:
        if state.check_prefix(priced, prefix_key(prefix)):
            cached = prefix_tokens
        elif listed.cache_write is not None:
            cache_write = prefix_tokens

    overrides = behaviour.get("usage") or {}
    completion = _int_override(overrides, "completion_tokens", plan.completion_tokens)
    if max_tokens is not None:
        completion = min(completion, max_tokens)  # never longer than the max_tokens sent (per call)
    prompt_tokens = loop_prompt(first_call, steps, completion, context)
    largest_call = min(first_call + sum(steps) + (calls - 1) * completion, context or 10**12)
    largest_call = _int_override(overrides, "prompt_tokens", largest_call)  # the tier a scripted bill reaches
    prices = catalog.prices(priced).in_force(largest_call, wants_1h_cache(messages))
    if variant == "floor":
        prices = prices.scaled(FLOOR_FACTOR)
    try:
        check_max_price(body, route, listed)
    except ApiError as exc:
        return exc.response()
    reasoning = min(_int_override(overrides, "reasoning_tokens", plan.reasoning_tokens), completion)
    tokens = Tokens(
        prompt=_int_override(overrides, "prompt_tokens", prompt_tokens),
        completion=completion * calls,
        reasoning=reasoning * calls,
        cached=_int_override(overrides, "cached_tokens", cached),
        cache_write=_int_override(overrides, "cache_write_tokens", cache_write),
        images=images,
    )

    pieces = stream_pieces(plan.content)
    finish_reason = plan.finish_reason
    if stream_error:
        # Only what was generated before the failure is billed.
        billed = partial_completion(tokens.completion, tokens.reasoning,
                                    behaviour["stream_error_after"], len(pieces))
        tokens = tokens.with_completion(billed, min(tokens.reasoning, billed))
        finish_reason = "error"

    cost = compute_cost(prices, tokens, extras)
    byok = bool(behaviour.get("byok"))
    upstream = cost.total
    if "cost" in behaviour:
        charged = _money(behaviour["cost"])
    elif byok:
        charged = upstream * BYOK_FEE_RATE
    else:
        charged = upstream
    if not byok:
        upstream = charged  # non-BYOK: upstream cost is what the account paid

    gen_id = _new_generation_id()
    created = int(time.time())
    delay_s = config["stream_chunk_delay_ms"] / 1000 if stream else 0
    elapsed_ms = int((time.monotonic() - started) * 1000)
    native_finish = native_finish_reason(provider, finish_reason)
    # Written before any byte is sent so a client that aborts can still look it up.
    state.add_generation({
        "id": gen_id,
        "total_cost": charged,
        "usage": charged,
        "cache_discount": cost.cache_discount,
        "upstream_inference_cost": upstream,
        "is_byok": byok,
        "model": served,
        "provider_name": provider,
        "streamed": stream,
        "cancelled": stream_stall,
        "finish_reason": finish_reason,
        "native_finish_reason": native_finish,
        "latency": elapsed_ms,
        "generation_time": elapsed_ms + int(delay_s * 1000 * (len(pieces) + 2)),
        "tokens_prompt": tokens.prompt,
        "tokens_completion": tokens.completion,
        "native_tokens_prompt": tokens.prompt,
        "native_tokens_completion": tokens.completion,
        "native_tokens_reasoning": tokens.reasoning,
        "native_tokens_cached": tokens.cached,
        "num_media_prompt": images or None,
        "external_user": user,
        "origin": request.headers.get("HTTP-Referer", ""),
        "created_at": datetime.now(timezone.utc).isoformat(),
    })

    if "completion_tokens" in overrides:  # reported as billed: clamped to the max_tokens sent
        behaviour = {**behaviour, "usage": {**overrides, "completion_tokens": tokens.completion}}
    usage = _build_usage(tokens, cost, charged, upstream, byok, behaviour)
    if searches:
        # The prose docs and the OpenAPI schema name it differently: send both.
        usage["server_tool_use"] = {"web_search_requests": searches}
        usage["server_tool_use_details"] = {"web_search_requests": searches, "web_search_results": web.results}
    head = {"id": gen_id, "provider": provider, "model": served, "created": created}
    headers = {"X-Generation-Id": gen_id}
    if not stream:
        payload = {
            "id": gen_id, "provider": provider, "model": served,
            "object": "chat.completion", "created": created,
            "choices": [{
                "index": 0,
                "logprobs": None,
                "finish_reason": finish_reason,
                "native_finish_reason": native_finish,
                "message": {"role": "assistant", "content": plan.content, "refusal": None},
            }],
            "usage": usage,
        }
        return json_response(payload, headers=headers)

    events = stream_events(
        head, pieces, usage, finish_reason, native_finish, behaviour,
        delay_s, config["stream_stall_s"], state.stall_event(),
    )
    return sse_response(events, headers)
