"""Every failure leaves the API as JSON `{"error": {"code": slug, "message": sentence}}`."""
from __future__ import annotations

import traceback

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from tokenledger import logs

# Slugs for the HTTP errors Flask/werkzeug raise themselves (routing, body size).
HTTP_SLUGS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}  # further machine-readable fields of the error object


def error_response(status: int, code: str, message: str, headers: dict | None = None, extra: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message, **(extra or {})}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        messages = {
            404: "No such route. See the README for the API.",
            405: "This route does not accept that method.",
            413: "The request body is larger than this API accepts.",
        }
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return error_response(
            status, HTTP_SLUGS.get(status, "http_error"), messages.get(status, exc.description or ""), headers
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Our bug, not the client's: log the trace for the operator, say little to the caller.
        logs.unhandled_error(error=type(exc).__name__, trace=traceback.format_exc()[-4000:])
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
