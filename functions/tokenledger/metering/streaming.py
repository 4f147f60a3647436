"""Reading an OpenRouter SSE stream into what the ledger needs (pure: no I/O).

What peer tools get wrong here: the usage chunk arrives once, last, with an EMPTY `choices`
array, so nothing may index `choices[0]` blindly; comment lines (`: OPENROUTER PROCESSING`)
are not data; an error after streaming started is a chunk with an `error` object and
`finish_reason: "error"`, not an HTTP status.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

DONE = "[DONE]"

# What one SSE line is, for the relay.
COMMENT = "comment"
DATA = "data"
DONE_EVENT = "done"
OTHER = "other"


@dataclass(frozen=True)
class StreamEvent:
    kind: str  # comment | data | done | other
    chunk: dict | None = None  # the parsed JSON of a data line

    @property
    def usage(self) -> dict | None:
        usage = (self.chunk or {}).get("usage")
        return usage if isinstance(usage, dict) else None

    @property
    def error(self) -> dict | None:
        error = (self.chunk or {}).get("error")
        return error if isinstance(error, dict) else None


def parse_line(line: str) -> StreamEvent | None:
    """One SSE line -> StreamEvent; None for a blank line (an event separator)."""
    line = line.rstrip("\r\n")
    if not line:
        return None
    if line.startswith(":"):
        return StreamEvent(COMMENT)
    if not line.startswith("data:"):
        return StreamEvent(OTHER)  # `event:`, `id:`, `retry:` fields: relayed, not read
    payload = line[5:].strip()
    if payload == DONE:
        return StreamEvent(DONE_EVENT)
    try:
        chunk = json.loads(payload)
    except ValueError:
        return StreamEvent(OTHER)
    return StreamEvent(DATA, chunk if isinstance(chunk, dict) else None)


@dataclass
class StreamState:
    """Everything learned from the chunks so far."""

    generation_id: str | None = None
    model: str | None = None
    provider: str | None = None
    created: int | None = None
    content_chars: int = 0
    chunks: int = 0
    finish_reason: str | None = None
    usage: dict | None = None
    error: dict | None = None
    done: bool = False
    extra: dict = field(default_factory=dict)

    def add(self, event: StreamEvent) -> None:
        if event.kind == DONE_EVENT:
            self.done = True
            return
        chunk = event.chunk
        if event.kind != DATA or chunk is None:
            return
        self.chunks += 1
        if isinstance(chunk.get("id"), str) and chunk["id"]:
            self.generation_id = self.generation_id or chunk["id"]
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        if isinstance(chunk.get("created"), int) and not isinstance(chunk["created"], bool):
            self.created = chunk["created"]
        if isinstance(chunk.get("provider"), str) and chunk["provider"]:
            self.provider = chunk["provider"]
        for choice in chunk.get("choices") or []:  # empty on the usage chunk
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, dict):
                for name in ("content", "reasoning"):
                    if isinstance(delta.get(name), str):
                        self.content_chars += len(delta[name])
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        if event.usage is not None:
            self.usage = event.usage
        if event.error is not None:
            self.error = event.error
            self.finish_reason = "error"

    def response_body(self) -> dict:
        """The chunks assembled into the shape of a plain completion, for usage.build_record."""
        body: dict = {
            "id": self.generation_id,
            "model": self.model,
            "choices": [{"finish_reason": self.finish_reason}],
            "usage": self.usage or {},
        }
        if self.provider:
            body["provider"] = self.provider
        return body

    def partial_usage(self, prompt_tokens_guess: int) -> dict:
        """Token counts so far when no usage chunk came: the prompt guess plus about four
        characters a token of what was streamed (no `cost`, so the catalog prices it)."""
        completion = math.ceil(self.content_chars / 4)
        return {
            "prompt_tokens": prompt_tokens_guess,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens_guess + completion,
        }


def sse_data(obj: dict) -> str:
    return "data: " + json.dumps(obj, separators=(",", ":")) + "\n\n"


def with_fields(line: str, fields: dict) -> str:
    """A data line of a JSON object with `fields` added at its end, the upstream's own text kept
    byte for byte (its numbers, `usage.cost` among them, are not re-printed)."""
    head = line.rstrip()
    if not head.endswith("}"):
        raise ValueError("not a data line holding a JSON object")
    body = head[:-1].rstrip()
    added = json.dumps(fields, separators=(",", ":"))[1:-1]
    return body + ("" if body.endswith("{") else ",") + added + "}"


def signal_chunk(state: StreamState, fields: dict) -> str:
    """A last chunk with empty `choices` (like OpenRouter's usage chunk) carrying `fields`: what
    happened to the call when no usage chunk came to carry it."""
    chunk: dict = {"object": "chat.completion.chunk", "choices": []}
    if state.generation_id:
        chunk["id"] = state.generation_id
    if state.created is not None:
        chunk["created"] = state.created
    if state.model:
        chunk["model"] = state.model
    return sse_data({**chunk, **fields})


def sse_error(code: str, message: str, generation_id: str | None = None) -> str:
    """An error event in OpenRouter's in-stream shape (the openai SDK raises on it)."""
    chunk: dict = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
        "error": {"code": code, "message": message},
    }
    if generation_id:
        chunk["id"] = generation_id
    return sse_data(chunk)
