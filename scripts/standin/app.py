"""Flask app speaking the OpenRouter API (/api/v1) plus test-only /_control routes."""

from __future__ import annotations

import hmac

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from .catalog import Catalog
from .chat import chat as chat_call
from .responses import error_response, json_response
from .state import State

API = "/api/v1"


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
        return chat_call(catalog, state)

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
