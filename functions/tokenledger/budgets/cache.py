"""Budget documents cached per instance for TOKENLEDGER_BUDGET_CACHE_S (default 60 s).

A budget changed by an admin is in force on the instance that took the PUT at once and on every
other instance within the cache time. Bounded to MAX_USERS entries (the oldest go first).
Times are the request clock (seconds), so tests move it with the emulator's clock header.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from tokenledger.budgets import rules
from tokenledger.budgets.plans import Plan
from tokenledger.budgets.rules import Budget
from tokenledger.config import Settings

MAX_USERS = 10_000


class BudgetDoc:
    """A user's budget document as read (None: they have none), resolved against their plan on
    use: the plan comes from the caller's token and the plan cache, so a plan changed by an admin
    (or a user moved to another plan) needs no new read of the user's document. The last
    resolution is kept (plans are the same objects until the plan cache reloads)."""

    def __init__(self, doc: dict | None):
        self.doc = doc
        self._last: tuple[Plan | None, Budget] | None = None

    def resolve(self, plan: Plan | None, settings: Settings) -> Budget:
        last = self._last
        if last is not None and last[0] is plan:
            return last[1]
        budget = rules.budget_from_doc(self.doc, settings, plan)
        self._last = (plan, budget)
        return budget


def resolved(entry: BudgetDoc | Budget | None, plan: Plan | None, settings: Settings) -> Budget | None:
    """The budget in force from a cache entry (a Budget put there whole is used as it is)."""
    if entry is None or isinstance(entry, Budget):
        return entry
    return entry.resolve(plan, settings)


class BudgetCache:
    def __init__(self, ttl_s: int, max_users: int = MAX_USERS):
        self.ttl_s = ttl_s
        self.max_users = max_users
        self._entries: OrderedDict[str, tuple[BudgetDoc | Budget, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid: str, now_s: float) -> BudgetDoc | Budget | None:
        entry = self._entries.get(uid)
        if entry is None or not 0 <= now_s - entry[1] < self.ttl_s:
            return None
        return entry[0]

    def recent(self, uid: str, now_s: float) -> BudgetDoc | Budget | None:
        """As get, but an entry stamped after `now_s` counts too: put by a call that started
        after this one (a call that read its clock before another call cached the budget)."""
        entry = self._entries.get(uid)
        if entry is None or not now_s - entry[1] < self.ttl_s:
            return None
        return entry[0]

    def put(self, uid: str, budget: BudgetDoc | Budget, now_s: float) -> None:
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
