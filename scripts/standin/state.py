"""All mutable stand-in state behind one lock (the server is threaded)."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_LOGGED_REQUESTS = 1000

def _non_negative(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("must be a number >= 0")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be an integer >= 0")
    return value


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("must be a number") from exc


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be a string or null")
    return value


# key -> (default, validator returning the stored value or raising ValueError)
CONFIG_FIELDS = {
    "latency_ms": (0, _non_negative),
    "stream_chunk_delay_ms": (0, _non_negative),
    "generation_delay_s": (0, _non_negative),
    "key_usage_offset": (Decimal(0), _money),
    "cache_min_tokens": (64, _non_negative_int),
    # How long stream_stall_after holds the connection open (seconds).
    "stream_stall_s": (30, _non_negative),
    "api_key": (None, _optional_str),
}

BEHAVIOUR_KEYS = {
    "status", "message", "retry_after", "error_type", "metadata",
    "omit_cost", "cost_null", "cost", "served_model", "provider", "usage", "byok",
    "latency_ms", "drop_connection",
    "stream_error_after", "stream_no_usage", "stream_stall_after",
    # models (ids as requested) that fail, so a `models` fallback list moves on; searches the
    # model runs with the web search server tool (default 1)
    "unavailable", "web_searches",
    # results each search finds (fewer than max_results: allowed_domains with little on them), and
    # the [width, height] of every image in the request (default 1,024 x 1,024)
    "web_results_found", "image_size",
}


def _check_behaviour(behaviour: Any) -> dict:
    if not isinstance(behaviour, dict):
        raise ValueError("each behaviour must be an object")
    unknown = set(behaviour) - BEHAVIOUR_KEYS
    if unknown:
        raise ValueError(f"unknown behaviour keys: {sorted(unknown)}")
    status = behaviour.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError("status must be an HTTP error code (400-599)")
    for key in ("stream_error_after", "stream_stall_after"):
        if key in behaviour:
            _non_negative_int(behaviour[key])
    if "cost" in behaviour:
        _money(behaviour["cost"])
    if "unavailable" in behaviour and not (
        isinstance(behaviour["unavailable"], list) and all(isinstance(m, str) for m in behaviour["unavailable"])
    ):
        raise ValueError("unavailable must be a list of model ids")
    if "web_searches" in behaviour:
        _non_negative_int(behaviour["web_searches"])
    if "usage" in behaviour and not isinstance(behaviour["usage"], dict):
        raise ValueError("usage must be an object")
    return dict(behaviour)


class State:
    def __init__(self, api_key: str | None = None):
        self._lock = threading.Lock()
        self._defaults = {k: default for k, (default, _) in CONFIG_FIELDS.items()}
        self._defaults["api_key"] = api_key
        self._stall = threading.Event()
        self.reset()

    # -- control -----------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._config = dict(self._defaults)
            self._scripts: dict[str | None, deque] = {}
            self._generations: dict[str, dict] = {}
            self._requests: deque = deque(maxlen=MAX_LOGGED_REQUESTS)
            self._prefixes: set[tuple[str, str]] = set()
            # Wake any stalled stream so reset also frees its thread.
            self._stall.set()
            self._stall = threading.Event()

    def update_config(self, patch: dict) -> dict:
        unknown = set(patch) - set(CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        checked = {}
        for key, value in patch.items():
            try:
                checked[key] = CONFIG_FIELDS[key][1](value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        with self._lock:
            self._config.update(checked)
            return dict(self._config)

    def config(self) -> dict:
        with self._lock:
            return dict(self._config)

    def queue_behaviours(self, user: str | None, behaviours: list) -> int:
        checked = [_check_behaviour(b) for b in behaviours]
        with self._lock:
            queue = self._scripts.setdefault(user, deque())
            queue.extend(checked)
            return len(queue)

    def next_behaviour(self, user: str | None) -> dict:
        """Pop the next scripted behaviour for this caller: own queue first, then any-user."""
        with self._lock:
            for key in ([user] if user is not None else []) + [None]:
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
        return {}

    def stall_event(self) -> threading.Event:
        with self._lock:
            return self._stall

    # -- request log ---------------------------------------------------------
    def log_request(self, body: Any, headers: dict) -> None:
        with self._lock:
            self._requests.append({"body": body, "headers": headers})

    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    # -- prompt cache --------------------------------------------------------
    def check_prefix(self, model: str, key: str) -> bool:
        """True when (model, prefix) was seen before; remembers it either way."""
        with self._lock:
            seen = (model, key) in self._prefixes
            self._prefixes.add((model, key))
            return seen

    # -- generations -----------------------------------------------------------
    def add_generation(self, record: dict) -> None:
        with self._lock:
            delay = float(self._config["generation_delay_s"])
            self._generations[record["id"]] = {
                "record": record,
                "visible_at": time.monotonic() + delay,
                "created": datetime.now(timezone.utc),
            }

    def generation(self, gen_id: str) -> dict | None:
        """The record, or None if unknown or still inside generation_delay_s."""
        with self._lock:
            entry = self._generations.get(gen_id)
            if entry is None or time.monotonic() < entry["visible_at"]:
                return None
            return dict(entry["record"])

    def generations(self, user: str | None = None, any_user: bool = True) -> list[dict]:
        with self._lock:
            records = [dict(e["record"]) for e in self._generations.values()]
        if any_user:
            return records
        return [r for r in records if r.get("external_user") == user]

    def key_usage(self) -> dict:
        now = datetime.now(timezone.utc)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = {
            "": None,
            "_daily": day,
            "_weekly": day - timedelta(days=day.weekday()),
            "_monthly": day.replace(day=1),
        }
        with self._lock:
            entries = list(self._generations.values())
            offset = self._config["key_usage_offset"]
        out = {}
        for suffix, start in starts.items():
            recent = [e["record"] for e in entries if start is None or e["created"] >= start]
            out["usage" + suffix] = sum((r["total_cost"] for r in recent), Decimal(0)) + offset
            out["byok_usage" + suffix] = sum(
                (r["upstream_inference_cost"] for r in recent if r["is_byok"]), Decimal(0)
            )
        return out
