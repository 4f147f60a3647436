"""Round trips of a call, timed in the serving process (bench only): every Firestore RPC, every
Auth backend lookup and the upstream (OpenRouter) call, with when each started and ended and on
which thread. `critical_path` folds the ones before the upstream call into what the call waited
for: round trips that overlap in time cost one wait, ones after another cost one each.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

_lock = threading.Lock()
BACKGROUND_THREADS = "tokenledger-io"  # tokenledger/background.py's pool


@dataclass(frozen=True)
class Trip:
    kind: str  # commit | read | query | auth | upstream
    start: float
    end: float
    background: bool  # ran on the I/O pool (beside the call, or after it)


TRIPS: list[Trip] = []


def record(kind: str, start: float) -> None:
    trip = Trip(kind, start, time.monotonic(), threading.current_thread().name.startswith(BACKGROUND_THREADS))
    with _lock:
        TRIPS.append(trip)


def take() -> list[Trip]:
    with _lock:
        trips = sorted(TRIPS, key=lambda t: t.start)
        TRIPS.clear()
    return trips


def timed(kind: str, fn):
    def wrapper(*args, **kwargs):
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            record(kind, start)
    return wrapper


def install() -> None:
    """Time the Auth lookup and the upstream call (opcount.install times Firestore's RPCs)."""
    from firebase_admin import auth

    from tokenledger import openrouter

    auth.get_user = timed("auth", auth.get_user)
    for name in ("chat", "open_stream"):
        setattr(openrouter.OpenRouterClient, name, timed("upstream", getattr(openrouter.OpenRouterClient, name)))


def critical_path(trips: list[Trip]) -> tuple[int, int, list[str]]:
    """Of the round trips that began before the upstream call (all of them when it was never
    called): (how many, how many the call waited for one after another, their kinds in waves:
    'auth+read+commit' ran side by side). A round trip of the pool that was over before the
    request thread began its next one was not waited for (the thread was working meanwhile)."""
    upstream = next((t.start for t in trips if t.kind == "upstream"), None)
    before = [t for t in trips if t.kind != "upstream" and (upstream is None or t.start < upstream)]
    own = [t for t in before if not t.background]
    waited = [t for t in before if not t.background or not any(o.start >= t.end for o in own)]
    waves: list[list[Trip]] = []
    for trip in waited:
        if waves and trip.start < max(t.end for t in waves[-1]):
            waves[-1].append(trip)
        else:
            waves.append([trip])
    return len(before), len(waves), ["+".join(t.kind for t in wave) for wave in waves]


def after_answer(trips: list[Trip]) -> list[str]:
    """Round trips that began after the upstream call started, on the pool: off the call's path."""
    upstream = next((t.start for t in trips if t.kind == "upstream"), None)
    return [t.kind for t in trips if t.background and (upstream is not None and t.start >= upstream)]
