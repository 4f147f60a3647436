"""Per-user rate limits: requests per minute and calls in flight, without transactions.

Gated calls (admission.py) add a blind +1 to the user's minute document and to `in_flight` on
the month document in the commit they make anyway (the reservation), and read both back in the
one round trip they make anyway; the decision is `check` below. Calls that skip the shared gate
(no budget to check, nothing to read) are limited per instance by LocalLimiter, which also
remembers each refusal until it can change (the next minute, or a second for `in_flight`), so a
user flooding an instance is refused from memory: no read, no write.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from tokenledger.budgets.rules import Budget

PER_MINUTE = "requests_per_minute"
IN_FLIGHT = "max_in_flight"
IN_FLIGHT_RETRY_S = 1
MAX_USERS = 10_000  # per-instance memory bound


class RateLimited(Exception):
    def __init__(self, limit_name: str, limit: int, retry_after_s: int):
        super().__init__(f"{limit_name} {limit}")
        self.limit_name = limit_name
        self.limit = limit
        self.retry_after_s = retry_after_s


def minute_key(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M")


def seconds_to_next_minute(now: datetime) -> int:
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return max(1, math.ceil((start - now).total_seconds()))


def check(requests_this_minute: int, in_flight: int, budget: Budget, now: datetime) -> RateLimited | None:
    """The refusal, if any, for a call whose own +1 is already in both counts (pure)."""
    if budget.requests_per_minute and requests_this_minute > budget.requests_per_minute:
        return RateLimited(PER_MINUTE, budget.requests_per_minute, seconds_to_next_minute(now))
    if budget.max_in_flight and in_flight > budget.max_in_flight:
        return RateLimited(IN_FLIGHT, budget.max_in_flight, IN_FLIGHT_RETRY_S)
    return None


@dataclass
class _UserCounts:
    minute: str = ""
    requests: int = 0
    in_flight: int = 0
    refused_until: float = 0.0  # request clock, seconds
    refusal: RateLimited | None = None


class LocalLimiter:
    """This instance's memory of each user's calls (bounded: MAX_USERS)."""

    def __init__(self):
        self._users: dict[str, _UserCounts] = {}
        self._lock = threading.Lock()

    def _entry(self, uid: str) -> _UserCounts:
        entry = self._users.get(uid)
        if entry is None:
            if len(self._users) >= MAX_USERS:
                idle = [k for k, v in self._users.items() if v.in_flight <= 0]
                for key in idle[: MAX_USERS // 10 + 1]:
                    del self._users[key]
            entry = self._users[uid] = _UserCounts()
        return entry

    def refused(self, uid: str, now: datetime) -> RateLimited | None:
        """A refusal this instance made that still holds (the user is refused again at no cost)."""
        entry = self._users.get(uid)
        if entry is None or entry.refusal is None or now.timestamp() >= entry.refused_until:
            return None
        return RateLimited(entry.refusal.limit_name, entry.refusal.limit,
                           max(1, math.ceil(entry.refused_until - now.timestamp())))

    def remember(self, uid: str, refusal: RateLimited, now: datetime) -> None:
        with self._lock:
            entry = self._entry(uid)
            entry.refusal = refusal
            entry.refused_until = now.timestamp() + refusal.retry_after_s

    def acquire(self, uid: str, budget: Budget, now: datetime) -> None:
        """Count a call that skips the shared gate; raises RateLimited (and remembers it)."""
        with self._lock:
            entry = self._entry(uid)
            minute = minute_key(now)
            if entry.minute != minute:
                entry.minute, entry.requests = minute, 0
            entry.requests += 1
            entry.in_flight += 1
            refusal = check(entry.requests, entry.in_flight, budget, now)
            if refusal is not None:
                entry.in_flight -= 1
        if refusal is not None:
            self.remember(uid, refusal, now)
            raise refusal

    def release(self, uid: str) -> None:
        with self._lock:
            entry = self._users.get(uid)
            if entry is not None and entry.in_flight > 0:
                entry.in_flight -= 1
