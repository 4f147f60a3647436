"""Delivery rules (pure): what an attempt's outcome means for a target, when to try again, and
when to give up.

Per target, on the alert document under `deliveries.<target id>`:
  status        pending | retrying | delivered | blocked | failed
  attempts      requests sent (a blocked target: 0)
  last_error    the last failure ("HTTP 500", "timeout", the guard's reason), never a URL
  delivered_at  when a 2xx came back
  next_at       when a retrying target is due again
  event_id      the event's id (the same on every attempt)
Retried: timeouts, connection errors, 429 and 5xx, with exponential backoff (1 s, 2 s, 4 s ...
capped at 1 h) or the receiver's `Retry-After` when it says longer (capped at 6 h). Not retried:
other 4xx and 3xx (`failed`), a refusal of the guard (`blocked`). The trigger tries a target up to
IN_RUN_ATTEMPTS times while the waits are short (IN_RUN_WAIT_S); the scheduled sweep re-drives
what is due later and gives up GIVE_UP after the alert was created (`failed`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

PENDING, RETRYING, DELIVERED, BLOCKED, FAILED = "pending", "retrying", "delivered", "blocked", "failed"
FINAL = frozenset({DELIVERED, BLOCKED, FAILED})
IN_RUN_ATTEMPTS = 4
IN_RUN_WAIT_S = 10.0  # a wait longer than this is left to the sweep
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 3600.0
RETRY_AFTER_CAP_S = 6 * 3600.0
GIVE_UP = timedelta(hours=24)


@dataclass(frozen=True)
class Outcome:
    """One attempt: exactly one of status_code (an answer came) or error (none did), or blocked."""
    status_code: int | None = None
    error: str | None = None
    retry_after: str | None = None  # the header as sent
    blocked: str | None = None  # the guard's reason (with status_code: a redirect to a refused place)


def classify(outcome: Outcome) -> str:
    """DELIVERED, RETRYING (try again later), FAILED (a permanent answer) or BLOCKED."""
    if outcome.blocked:
        return BLOCKED
    if outcome.status_code is None:
        return RETRYING  # timeout, connection refused or reset, DNS failure
    code = outcome.status_code
    if 200 <= code < 300:
        return DELIVERED
    if code == 429 or code >= 500:
        return RETRYING
    return FAILED


def describe(outcome: Outcome) -> str:
    if outcome.blocked:
        return f"blocked: {outcome.blocked}"
    if outcome.status_code is not None:
        return f"HTTP {outcome.status_code}"
    return outcome.error or "no answer"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def wait_seconds(attempts: int, outcome: Outcome, now: datetime) -> float:
    """How long to wait before the next attempt, after `attempts` attempts (>= 1)."""
    backoff = min(BACKOFF_BASE_S * (2 ** (attempts - 1)), BACKOFF_CAP_S)
    asked = retry_after_seconds(outcome.retry_after, now)
    return backoff if asked is None else min(max(asked, backoff), RETRY_AFTER_CAP_S)


def after_attempt(state: dict, outcome: Outcome, now: datetime) -> dict:
    """The target's new state after one attempt (or refusal)."""
    status = classify(outcome)
    sent = status != BLOCKED or outcome.status_code is not None  # a refused redirect was one request
    attempts = int(state.get("attempts") or 0) + (1 if sent else 0)
    new = {**state, "status": status, "attempts": attempts, "updated_at": now}
    if status == DELIVERED:
        new.update(delivered_at=now, next_at=None)
    else:
        new["last_error"] = describe(outcome)
        new["next_at"] = now + timedelta(seconds=wait_seconds(attempts, outcome, now)) if status == RETRYING else None
    return new


def due(state: dict | None, now: datetime) -> bool:
    """Whether a target should be tried now (no state yet: yes)."""
    if not state:
        return True
    if state.get("status") in FINAL:
        return False
    next_at = state.get("next_at")
    return next_at is None or next_at <= now


def expired(created_at: datetime | None, now: datetime) -> bool:
    return created_at is not None and now - created_at >= GIVE_UP


def given_up(state: dict, now: datetime) -> dict:
    return {**state, "status": FAILED, "next_at": None, "updated_at": now,
            "last_error": f"gave up after {GIVE_UP.total_seconds() / 3600:.0f} h: {state.get('last_error') or 'not delivered'}"}


def pending(deliveries: dict) -> bool:
    return any(state.get("status") not in FINAL for state in deliveries.values())


def undelivered(deliveries: dict) -> bool:
    return any(state.get("status") != DELIVERED for state in deliveries.values())


def next_due(deliveries: dict):
    """The earliest next_at of the targets still open (None when all are final)."""
    times = [s["next_at"] for s in deliveries.values() if s.get("status") not in FINAL and s.get("next_at")]
    return min(times) if times else None
