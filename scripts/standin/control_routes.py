"""Test-only /_control routes (no auth): reset, config, scripted next answers, price and model
changes, and reading back the request log and generation records. OpenRouter has none of these;
they let a test set up and inspect the stand-in over plain HTTP."""

from __future__ import annotations

from flask import Flask, Response, request

from .catalog import Catalog
from .responses import error_response, json_response
from .state import State


def register_control(app: Flask, catalog: Catalog, state: State) -> None:
    @app.post("/_control/reset")
    def control_reset():
        state.reset()
        catalog.reset()
        return json_response({"ok": True})

    @app.route("/_control/config", methods=["GET", "POST"])
    def control_config():
        return _config(state)

    @app.post("/_control/script")
    def control_script():
        return _script(state)

    @app.post("/_control/pricing")
    def control_pricing():
        return _pricing(catalog)

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


def _config(state: State) -> Response:
    """GET reads the config, POST merges into it; the API key itself is never shown."""
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


def _script(state: State) -> Response:
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


def _pricing(catalog: Catalog) -> Response:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) \
            or not isinstance(body.get("pricing"), dict):
        return error_response(400, 'expected {"model": ..., "pricing": {...}}')
    try:
        pricing = catalog.set_pricing(body["model"], body["pricing"])
    except ValueError as exc:
        return error_response(400, str(exc))
    return json_response({"model": body["model"], "pricing": pricing})
