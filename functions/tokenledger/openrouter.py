"""The OpenRouter client (the official openai SDK pointed at OpenRouter) and its errors.

Upstream failures become UpstreamError with the status the app user should see: an
OpenRouter 401/402 is the operator's key or credits, so the user gets a 5xx and the operator
an ERROR log; a 429 keeps its Retry-After.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator

import httpx
import openai

from tokenledger.config import Settings

# Fields of ours that must never reach OpenRouter; `user` is always set from the token.
LOCAL_FIELDS = ("feature", "user", "user_id")


@dataclass
class UpstreamError(Exception):
    status: int  # what our API answers
    code: str
    message: str
    upstream_status: int | None = None
    retry_after: str | None = None
    operator_problem: bool = False
    # The request reached OpenRouter and no answer came back (read timeout, connection reset):
    # it may have been billed, so the call is recorded as pending, not forgotten.
    maybe_billed: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class ChatResult:
    body: dict
    latency_ms: int
    generation_id: str | None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or exc.message or "upstream error")[:500]


def map_status_error(exc: openai.APIStatusError) -> UpstreamError:
    status = exc.status_code
    message = _error_message(exc)
    if status == 400:
        return UpstreamError(400, "upstream_bad_request", f"OpenRouter rejected the request: {message}", status)
    if status in (401, 402):
        # The operator's key is wrong (401) or out of credits (402): not the user's fault.
        return UpstreamError(
            503 if status == 402 else 502,
            "upstream_unavailable",
            "The AI service is unavailable right now; the operator has been notified.",
            status,
            operator_problem=True,
        )
    if status == 403:
        return UpstreamError(403, "content_flagged", f"The request was refused by moderation: {message}", status)
    if status == 408:
        return UpstreamError(504, "upstream_timeout", "The AI service timed out.", status)
    if status == 413:
        return UpstreamError(413, "payload_too_large", f"OpenRouter rejected the request size: {message}", status)
    if status == 422:
        return UpstreamError(400, "upstream_bad_request", f"OpenRouter rejected the request: {message}", status)
    if status == 429:
        return UpstreamError(
            429,
            "rate_limited",
            "The AI service is rate limiting requests; retry later.",
            status,
            retry_after=exc.response.headers.get("retry-after"),
        )
    if status == 503:
        return UpstreamError(503, "upstream_unavailable", f"No AI provider is available: {message}", status)
    if status in (504, 524):
        return UpstreamError(504, "upstream_timeout", "The AI service timed out.", status)
    return UpstreamError(502, "upstream_error", f"The AI service failed: {message}", status)


# Failures that happen before the request is on the wire: nothing can have been billed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def map_transport_error(exc: openai.APIConnectionError) -> UpstreamError:
    sent = not isinstance(exc.__cause__, NOT_SENT)
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError(504, "upstream_timeout", "The AI service timed out.", maybe_billed=sent)
    return UpstreamError(502, "upstream_unreachable", "The AI service could not be reached.", maybe_billed=sent)


class OpenRouterClient:
    def __init__(self, settings: Settings):
        headers = {"X-OpenRouter-Title": settings.app_title, "X-Title": settings.app_title}
        if settings.app_url:
            headers["HTTP-Referer"] = settings.app_url
        # No SDK retries on chat: a retried POST can be billed twice, and 429s go back to
        # the app with their Retry-After.
        self._client = openai.OpenAI(
            base_url=settings.openrouter_base_url,
            api_key=settings.openrouter_api_key or "missing-key",
            default_headers=headers,
            timeout=settings.upstream_timeout_s,
            max_retries=0,
        )

    def chat(self, body: dict, user_id: str) -> ChatResult:
        params = {k: v for k, v in body.items() if k not in LOCAL_FIELDS}
        model = params.pop("model")
        messages = params.pop("messages")
        params.pop("stream", None)
        started = time.perf_counter()
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                model=model, messages=messages, user=user_id, extra_body=params
            )
        except openai.APIStatusError as exc:
            raise map_status_error(exc) from exc
        except openai.APIConnectionError as exc:  # APITimeoutError included
            raise map_transport_error(exc) from exc
        latency_ms = int((time.perf_counter() - started) * 1000)
        try:
            data = raw.http_response.json()
        except ValueError as exc:
            raise UpstreamError(502, "upstream_error", "The AI service answered with invalid JSON.") from exc
        if not isinstance(data, dict):
            raise UpstreamError(502, "upstream_error", "The AI service answered with an unexpected body.")
        if isinstance(data.get("error"), dict) and not data.get("choices"):
            error = data["error"]
            raise UpstreamError(502, "upstream_error", f"The AI service failed: {error.get('message', '')}"[:500])
        return ChatResult(data, latency_ms, raw.headers.get("x-generation-id") or data.get("id"))

    def open_stream(self, body: dict, user_id: str) -> "UpstreamStream":
        """Start a streamed chat call; raises UpstreamError when it fails before the first byte.

        The SDK's raw streaming response is kept open so SSE lines (comments included) can be
        relayed as they arrive; the caller must close() the stream.
        """
        params = {k: v for k, v in body.items() if k not in LOCAL_FIELDS}
        model = params.pop("model")
        messages = params.pop("messages")
        params.pop("stream", None)
        stack = contextlib.ExitStack()
        started = time.perf_counter()
        try:
            response = stack.enter_context(
                self._client.chat.completions.with_streaming_response.create(
                    model=model, messages=messages, user=user_id, stream=True, extra_body=params
                )
            )
        except openai.APIStatusError as exc:
            stack.close()
            raise map_status_error(exc) from exc
        except openai.APIConnectionError as exc:  # APITimeoutError included
            stack.close()
            raise map_transport_error(exc) from exc
        return UpstreamStream(response, stack, started, response.headers.get("x-generation-id"))

    def generation(self, generation_id: str, timeout: float = 10.0) -> dict | None:
        """The generation record (`data` of GET /generation), or None while it is not found (404)."""
        try:
            body = self._client.with_options(timeout=timeout, max_retries=0).get(
                "/generation", cast_to=object, options={"params": {"id": generation_id}}
            )
        except openai.NotFoundError:
            return None
        except openai.APIStatusError as exc:
            raise map_status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(502, "upstream_unreachable", str(exc)) from exc
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else None

    def key_info(self) -> dict:
        """GET /key `data`: the account's own usage totals (USD)."""
        body = self.get_json("/key")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise UpstreamError(502, "upstream_error", "GET /key answered without data.")
        return data

    def get_json(self, path: str, params: dict | None = None, timeout: float = 10.0) -> dict:
        """GET {base}{path} with the key; raises UpstreamError on failure."""
        try:
            return self._client.with_options(timeout=timeout, max_retries=2).get(
                path, cast_to=object, options={"params": params or {}}
            )
        except openai.APIStatusError as exc:
            raise map_status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(502, "upstream_unreachable", str(exc)) from exc

    def list_models(self, page_size: int = 500) -> dict:
        """All models, every modality, every page (OpenRouter pages with offset/limit).

        Stops at a short page, or at a page that adds nothing new (a server that ignores
        `offset` answers the whole list each time).
        """
        models: dict[str, dict] = {}
        offset = 0
        while True:
            page = self.get_json(
                "/models", {"output_modalities": "all", "offset": offset, "limit": page_size}
            )
            entries = [m for m in (page.get("data") or []) if isinstance(m, dict) and m.get("id")]
            new = [m for m in entries if m["id"] not in models]
            models.update((m["id"], m) for m in new)
            if len(entries) < page_size or not new:
                return {"data": list(models.values())}
            offset += page_size


class UpstreamStream:
    """An open streamed chat response: its SSE lines, then close()."""

    def __init__(self, response, stack: contextlib.ExitStack, started: float, generation_id: str | None):
        self._response = response
        self._stack = stack
        self.started = started
        self.generation_id = generation_id

    def lines(self) -> Iterator[str]:
        """Raw SSE lines as they arrive. A read timeout or a dropped connection ends the
        iteration with StreamBroken (what arrived before stays valid)."""
        try:
            yield from self._response.iter_lines()
        except (httpx.TransportError, openai.APIError) as exc:
            raise StreamBroken(type(exc).__name__) from exc

    def close(self) -> None:
        self._stack.close()


class StreamBroken(Exception):
    """The upstream stream ended abnormally (timeout, connection lost)."""
