"""The HTTPS API: one Flask app behind the `api` Cloud Function, routes by area."""
from __future__ import annotations

from flask import Flask, jsonify

from tokenledger.api import analytics, budgets, chat, credits, deliveries, errors, ledger, plans, users

# Response headers a browser page may read. CORS hides every non-basic header from a page on
# another origin unless listed here, and Firebase's CorsOptions has no setting for it.
EXPOSED_HEADERS = ("X-Usage-Recorded", "X-Generation-Id", "Retry-After", "X-Tokenledger-Overhead-Ms",
                   "X-Tokenledger-Downgraded")
# Firebase Hosting's rewrite of `/api/**` to this function keeps the full path.
HOSTING_PREFIX = "/api"


def create_app() -> Flask:
    flask_app = Flask("tokenledger")
    flask_app.json.sort_keys = False
    errors.register(flask_app)
    flask_app.register_blueprint(chat.bp)
    flask_app.register_blueprint(analytics.bp)
    flask_app.register_blueprint(budgets.bp)
    flask_app.register_blueprint(ledger.bp)
    flask_app.register_blueprint(credits.bp)
    flask_app.register_blueprint(plans.bp)
    flask_app.register_blueprint(users.bp)
    flask_app.register_blueprint(deliveries.bp)

    @flask_app.after_request
    def expose_headers(response):
        response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        return response

    @flask_app.get("/healthz")
    def healthz():
        return jsonify({"ok": True})

    return flask_app


class App:
    """Adapter from the Cloud Functions request to the Flask app's routing and errors."""

    def __init__(self):
        self.flask = create_app()

    def handle(self, req):
        environ = req.environ
        path = environ.get("PATH_INFO", "")
        if path == HOSTING_PREFIX or path.startswith(HOSTING_PREFIX + "/"):
            # Called through the Hosting rewrite (same-origin app): route as if called directly.
            environ = {**environ, "PATH_INFO": path[len(HOSTING_PREFIX):] or "/",
                       "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + HOSTING_PREFIX}
        with self.flask.request_context(environ):
            return self.flask.full_dispatch_request()


app = App()
