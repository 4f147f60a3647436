"""The OpenRouter API under /api/v1: Bearer auth on every path there (known or not, as OpenRouter
answers 401 before 404), the chat request log tests read back, and the read routes /models,
/generation and /key beside POST /chat/completions."""

from __future__ import annotations

import hmac

from flask import Flask, request

from .catalog import Catalog
from .chat import chat as chat_call
from .responses import error_response, json_response
from .state import State

API = "/api/v1"


def register_api(app: Flask, catalog: Catalog, state: State) -> None:
    @app.before_request
    def _log_and_authenticate():
        if request.path == API + "/chat/completions" and request.method == "POST":
            _log_chat_request(state)
        if request.path == API or request.path.startswith(API + "/"):
            return _authenticate(state)
        return None

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
        return chat_call(catalog, state)


def _log_chat_request(state: State) -> None:
    """Logged before auth, so tests also see what a refused client sent (the key redacted)."""
    body = request.get_json(force=True, silent=True)
    if body is None:
        body = request.get_data(as_text=True)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "authorization" in headers:
        headers["authorization"] = "[redacted]"
    state.log_request(body, headers)


def _authenticate(state: State):
    """None when the Bearer key is right (any key when the stand-in has none), else the 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return error_response(401, "No auth credentials found")
    expected = state.config()["api_key"]
    if expected is not None and not hmac.compare_digest(token, expected):
        return error_response(401, "Invalid API key")
    return None
