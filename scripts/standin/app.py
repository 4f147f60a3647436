"""Flask app speaking the OpenRouter API (/api/v1) plus test-only /_control routes.

Only wiring lives here: one catalog and one state per app (so each test's app is independent),
errors in OpenRouter's JSON shape, and the two route groups. Imports run one way (no cycles):
  app -> api_routes, control_routes
  api_routes -> chat -> streaming, usage -> metering -> routing, chat_request
  the leaves they all use: responses (-> jsontext), billing (-> catalog), images, catalog, state."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from .api_routes import register_api
from .catalog import Catalog
from .control_routes import register_control
from .responses import error_response
from .state import State


def create_app(api_key: str | None = None, models_path: str | None = None) -> Flask:
    catalog = Catalog.load(models_path)
    state = State(api_key)
    app = Flask("openrouter_standin")
    app.extensions["standin_state"] = state
    app.extensions["standin_catalog"] = catalog

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # A 404/405 (or a 500 Flask made of a crash) in OpenRouter's error shape, not HTML.
        return error_response(exc.code or 500, exc.name)

    register_api(app, catalog, state)
    register_control(app, catalog, state)
    return app
