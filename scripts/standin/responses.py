"""How the stand-in answers at the HTTP level: JSON bodies, OpenRouter's error shape, and the
scripted failures (an error status, a dropped connection) tests ask for.

Every other module builds its answers here, so the error body is written in one place."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from flask import Response, request

from .jsontext import dumps

# Messages OpenRouter-style clients expect when a behaviour gives only a status.
DEFAULT_ERROR_MESSAGES = {
    400: "Bad request",
    401: "Invalid API key",
    402: "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    403: "Input was flagged by moderation",
    404: "Not found",
    408: "Request timed out",
    413: "Request too large",
    422: "Unprocessable request",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available provider could serve this request",
    524: "Provider timed out",
    529: "Provider overloaded",
}


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(dumps(obj), status=status, mimetype="application/json", headers=headers)


def error_response(code: int, message: str, metadata: dict | None = None,
                   headers: dict | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata:
        error["metadata"] = metadata
    return json_response({"error": error}, code, headers)


class ApiError(Exception):
    """An OpenRouter error answer raised from deep in a chat call (bad input, no model up, a
    context or price limit), so the steps need not pass a Response back up by hand."""

    def __init__(self, code: int, message: str, metadata: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.metadata = code, message, metadata

    def response(self) -> Response:
        return error_response(self.code, self.message, self.metadata)


def error_metadata(behaviour: dict) -> dict:
    """A scripted error's metadata, with its error_type inside as OpenRouter puts it."""
    metadata = dict(behaviour.get("metadata") or {})
    if behaviour.get("error_type"):
        metadata["error_type"] = behaviour["error_type"]
    return metadata


def scripted_error(behaviour: dict) -> Response:
    status = behaviour["status"]
    metadata = error_metadata(behaviour)
    headers = {}
    if behaviour.get("retry_after") is not None:
        headers["Retry-After"] = str(behaviour["retry_after"])
    message = behaviour.get("message") or DEFAULT_ERROR_MESSAGES.get(status, "Error")
    return error_response(status, message, metadata or None, headers)


def drop_connection() -> Response:
    """A response that closes the socket before any byte is sent.

    The error is raised while werkzeug iterates the body (outside Flask's own
    error handling), and werkzeug treats ConnectionError as a dropped client, so
    nothing is written and nothing is logged as a server error.
    """
    sock = request.environ.get("werkzeug.socket")

    def body() -> Iterator[bytes]:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionAbortedError("standin: scripted drop_connection")
        yield b""  # pragma: no cover - makes this a generator

    return Response(body())
