"""The HTTPS API: one Flask app behind the `api` Cloud Function, routes by area."""
from __future__ import annotations

from flask import Flask, jsonify

from tokenledger.api import analytics, budgets, chat, errors


def create_app() -> Flask:
    flask_app = Flask("tokenledger")
    flask_app.json.sort_keys = False
    errors.register(flask_app)
    flask_app.register_blueprint(chat.bp)
    flask_app.register_blueprint(analytics.bp)
    flask_app.register_blueprint(budgets.bp)

    @flask_app.get("/healthz")
    def healthz():
        return jsonify({"ok": True})

    return flask_app


class App:
    """Adapter from the Cloud Functions request to the Flask app's routing and errors."""

    def __init__(self):
        self.flask = create_app()

    def handle(self, req):
        with self.flask.request_context(req.environ):
            return self.flask.full_dispatch_request()


app = App()
