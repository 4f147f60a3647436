"""Request bodies: JSON parsing and pydantic models, turned into 400s a person can act on."""
from __future__ import annotations

import fnmatch
import json
import math
import re
from typing import Literal, Union

from flask import request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError

from tokenledger.api.errors import ApiError
from tokenledger.config import Settings
from tokenledger.pricing.prices import Catalog, ModelPrice

FEATURE_PATTERN = r"^[A-Za-z0-9_.:/-]{1,64}$"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[dict], None] = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1)
    max_tokens: StrictInt | None = Field(default=None, gt=0)
    max_completion_tokens: StrictInt | None = Field(default=None, gt=0)
    temperature: Union[StrictInt, StrictFloat, None] = Field(default=None, ge=0, le=2)
    stream: StrictBool = False
    feature: str | None = Field(default=None, pattern=FEATURE_PATTERN)


def describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"Invalid request body: {where}: {first.get('msg', 'is not valid')}."


def validated(model, body, code: str, name_field: bool = False):
    """`body` as `model`, or 400 `code` saying what is wrong (and, with `name_field`, which field)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        extra = {"field": ".".join(str(p) for p in first.get("loc", ())) or None} if name_field else None
        raise ApiError(400, code, describe(exc), extra=extra)


def json_body(settings: Settings) -> dict:
    """The request's JSON object, or a 4xx that says what is wrong with it."""
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise ApiError(413, "payload_too_large", f"The request body is over {settings.max_body_bytes} bytes.")
    raw = request.get_data(cache=True)
    if len(raw) > settings.max_body_bytes:
        raise ApiError(413, "payload_too_large", f"The request body is over {settings.max_body_bytes} bytes.")
    return decode_body(raw, settings.max_body_depth)


# A \uD800-\uDFFF escape: a surrogate, legal in JSON text but not in UTF-8 when unpaired.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"{text[:40]} is out of range")
    return value


def decode_body(raw: bytes, max_depth: int) -> dict:
    """JSON bytes -> a dict that can also be sent upstream as UTF-8 JSON (no NaN/Infinity, no
    unpaired surrogates: the HTTP client would fail on them after admission, a 500), or a 400."""
    if not raw.strip():
        raise ApiError(400, "invalid_json", "The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        # Nesting past the interpreter's limit: a 400, not a crash (the policy bounds depth below it).
        raise ApiError(400, "body_too_deep", f"The request body is nested deeper than {max_depth} levels.")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid JSON: {exc}.")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    if _SURROGATE_ESCAPE.search(raw):  # rare: only then pay for the check
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "invalid_json", "The request body holds an unpaired UTF-16 surrogate (\\uD800-\\uDFFF).")
    return body


def chat_request(body: dict, settings: Settings) -> ChatRequest:
    chat = validated(ChatRequest, body, "invalid_request")
    if len(chat.messages) > settings.max_messages:
        raise ApiError(400, "invalid_request", f"Too many messages: at most {settings.max_messages}.")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(chat, name)
        if value is not None and value > settings.max_tokens_cap:
            raise ApiError(
                400, "max_tokens_too_large", f"{name} is {value}; this app allows at most {settings.max_tokens_cap}."
            )
    return chat


def is_allowed(model_id: str, settings: Settings) -> bool:
    return not settings.allowed_models or any(
        fnmatch.fnmatchcase(model_id, pattern) for pattern in settings.allowed_models
    )


def allowed_model(model_id: str, catalog: Catalog, settings: Settings) -> ModelPrice:
    if not is_allowed(model_id, settings):
        raise ApiError(400, "model_not_allowed", f"The model '{model_id}' is not allowed by this app.")
    price = catalog.get(model_id)
    if price is None:
        raise ApiError(400, "model_not_found", f"The model '{model_id}' is not a model OpenRouter offers.")
    return price
