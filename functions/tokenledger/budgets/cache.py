"""Budget documents cached per instance for TOKENLEDGER_BUDGET_CACHE_S (default 60 s).

A budget changed by an admin is in force on the instance that took the PUT at once and on every
other instance within the cache time. Bounded to MAX_USERS entries (the oldest go first).
Times are the request clock (seconds), so tests move it with the emulator's clock header.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from tokenledger.budgets.rules import Budget

MAX_USERS = 10_000


class BudgetCache:
    def __init__(self, ttl_s: int, max_users: int = MAX_USERS):
        self.ttl_s = ttl_s
        self.max_users = max_users
        self._entries: OrderedDict[str, tuple[Budget, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid: str, now_s: float) -> Budget | None:
        entry = self._entries.get(uid)
        if entry is None or not 0 <= now_s - entry[1] < self.ttl_s:
            return None
        return entry[0]

    def put(self, uid: str, budget: Budget, now_s: float) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._entries[uid] = (budget, now_s)
            self._entries.move_to_end(uid)
            while len(self._entries) > self.max_users:
                self._entries.popitem(last=False)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._entries.pop(uid, None)

    def seen_at(self, uid: str) -> float:
        """When the user's entry was put (request clock; -inf when there is none)."""
        entry = self._entries.get(uid)
        return entry[1] if entry is not None else float("-inf")
