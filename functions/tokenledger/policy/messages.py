"""Messages: what a client may send in them, and how big they are (pure).

Size is measured as JSON text (ASCII-escaped: every non-ASCII character counts 6 bytes or
more, never fewer than its UTF-8 bytes), because a byte-level tokenizer never makes more than
one token of a byte. Images and files are counted apart: their bytes are not text tokens, they
are priced per item (bounds.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from tokenledger.policy import values as v
from tokenledger.policy.errors import bad

ROLES = ("system", "developer", "user", "assistant", "tool")
MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "reasoning",
                "reasoning_details", "annotations", "function_call"}
DETAILS = ("low", "high", "auto")
CACHE_TTLS = ("5m", "1h")
PART_KEYS = {
    "text": {"type", "text", "cache_control"},
    "image_url": {"type", "image_url", "cache_control"},
    "file": {"type", "file", "cache_control"},
}


@dataclass(frozen=True)
class MessageSize:
    text_bytes: int  # JSON bytes of every message, media payloads left out
    messages: int
    images: int
    files: int
    one_hour_cache: bool = False  # a part marked cache_control {"ttl": "1h"} (written at 2x, not 1.25x)
    low_detail_images: int = 0  # images sent with detail "low" (fewer tokens on OpenAI tile models)


def json_bytes(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _part(field: str, part: object) -> tuple[object, int, int]:
    """(what of the part counts as text, images, files)."""
    if not isinstance(part, dict):
        raise bad(field, "must be an object")
    kind = part.get("type")
    keys = PART_KEYS.get(kind) if isinstance(kind, str) else None
    if keys is None:
        raise bad(f"{field}.type", "must be text, image_url or file (audio and other parts are not metered)",
                  "unsupported_content")
    v.obj(field, part, keys)
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise bad(f"{field}.text", "must be a string")
        return part, 0, 0
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise bad(f"{field}.image_url.url", "must be a URL or a data: URL")
        if isinstance(image, dict) and image.get("detail") is not None:
            v.string(f"{field}.image_url.detail", image["detail"], 10, DETAILS)
        return {"type": "image_url"}, 1, 0
    file = part.get("file")
    if not isinstance(file, dict) or not isinstance(file.get("file_data") or file.get("file_id"), str):
        raise bad(f"{field}.file", "must be an object with file_data (a data: URL)")
    return {"type": "file", "filename": str(file.get("filename", ""))[:200]}, 0, 1


def _one_hour(field: str, part: object) -> bool:
    """Whether the part asks for the 1-hour cache; a cache_control other than Anthropic's two
    documented ones is refused (an unknown ttl could be billed at a price not reserved)."""
    control = part.get("cache_control") if isinstance(part, dict) else None
    if control is None:
        return False
    v.obj(f"{field}.cache_control", control, {"type", "ttl"})
    v.string(f"{field}.cache_control.type", control.get("type"), 20, ("ephemeral",))
    if control.get("ttl") is not None:
        v.string(f"{field}.cache_control.ttl", control["ttl"], 5, CACHE_TTLS)
    return control.get("ttl") == "1h"


def _low_detail(part: object) -> bool:
    image = part.get("image_url") if isinstance(part, dict) and part.get("type") == "image_url" else None
    return isinstance(image, dict) and image.get("detail") == "low"


def measure(messages: object, max_messages: int) -> MessageSize:
    """Check every message and measure the whole list."""
    v.array("messages", messages, max_messages, min_items=1)
    text_bytes = images = files = low = 0
    one_hour = False
    for i, message in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad(field, "must be an object")
        v.obj(field, message, MESSAGE_KEYS)
        v.string(f"{field}.role", message.get("role"), 20, ROLES)
        content = message.get("content")
        if isinstance(content, list):
            counted = []
            for j, part in enumerate(content):
                text, n_images, n_files = _part(f"{field}.content[{j}]", part)
                counted.append(text)
                one_hour = _one_hour(f"{field}.content[{j}]", part) or one_hour
                low += _low_detail(part)
                images += n_images
                files += n_files
            message = {**message, "content": counted}
        elif content is not None and not isinstance(content, str):
            raise bad(f"{field}.content", "must be a string, an array of parts or null")
        if "tool_calls" in message and not isinstance(message["tool_calls"], list):
            raise bad(f"{field}.tool_calls", "must be an array")
        text_bytes += json_bytes(message)
    return MessageSize(text_bytes, len(messages), images, files, one_hour, low)
