"""A chat completion request read and checked the way OpenRouter does before it routes it, so a
malformed request gets OpenRouter's 400 and its message, and never reaches the billing maths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import Catalog
from .responses import ApiError


@dataclass(frozen=True)
class ChatRequest:
    body: dict  # the whole JSON body (plugins, tools, provider, ... are read where used)
    chain: list[str]  # model, then the `models` fallbacks, each once, in order
    messages: list[dict]
    max_tokens: int | None
    user: str | None
    stream: bool


def parse_chat(body: Any, catalog: Catalog) -> ChatRequest:
    """The checked request, or ApiError 400 naming the first thing wrong with it."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise ApiError(400, "No model specified")
    fallbacks = body.get("models") if isinstance(body.get("models"), list) else []
    chain = list(dict.fromkeys([model_id] + [m for m in fallbacks if isinstance(m, str)]))
    for candidate in chain:
        if catalog.resolve(candidate) is None:
            raise ApiError(400, f"{candidate} is not a valid model ID")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, 'Input required: specify "prompt" or "messages"')
    # The newer name wins when a client sends both (OpenAI's own precedence).
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ApiError(400, "max_tokens must be a positive integer")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise ApiError(400, "user must be a string")
    return ChatRequest(body, chain, messages, max_tokens, user, body.get("stream") is True)
