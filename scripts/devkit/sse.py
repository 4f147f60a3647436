"""Reading a text/event-stream response as a web app would: events as they arrive."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterator

import requests


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the request was sent
    raw: str  # the SSE line
    data: dict | None  # parsed `data:` JSON (None for comments and [DONE])

    @property
    def done(self) -> bool:
        return self.raw.strip() == "data: [DONE]"

    @property
    def is_comment(self) -> bool:
        return self.raw.startswith(":")


def events(response: requests.Response, started: float | None = None) -> Iterator[Event]:
    started = time.perf_counter() if started is None else started
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            continue
        data = None
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            data = json.loads(line[5:])
        yield Event(time.perf_counter() - started, line, data)
