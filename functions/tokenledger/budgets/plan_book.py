"""The plans, cached per instance for TOKENLEDGER_PLAN_CACHE_S (default 60 s).

Plans are few (one per product tier), so an instance reads them all in ONE query and answers
every call from memory until the copy is older than the cache time: no read per call, and a
claim naming a plan that does not exist costs nothing either (no read per unknown id). An admin
PUT/DELETE clears the copy of the instance that took it (in force there at once); other
instances see the change within the cache time. Times are the request clock (seconds).
"""
from __future__ import annotations

import threading

from google.api_core import exceptions as gexc

from tokenledger import logs, store
from tokenledger.budgets import plans
from tokenledger.budgets.plans import Plan
from tokenledger.budgets.reservations import GATE_RETRY

MAX_PLANS = 500  # read per reload; more plans than this is not what a tier list looks like
READ = {"timeout": 8.0, "retry": GATE_RETRY}  # as the budget gate's reads: quick retries, then a decision
MISS_RELOAD_S = 5  # a claim naming a plan the copy lacks reloads it at most this often


class PlansUnavailable(Exception):
    """No copy of the plans yet and Firestore cannot be read."""


class PlanBook:
    def __init__(self, ttl_s: int, default_plan: str):
        self.ttl_s = ttl_s
        self.default_plan = default_plan
        self.reads = 0  # queries made (for tests and the bench)
        self._plans: dict[str, Plan] | None = None
        self._loaded_at = 0.0
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def all(self, db, now_s: float) -> dict[str, Plan]:
        plans_now = self._plans
        if plans_now is not None and 0 <= now_s - self._loaded_at < self.ttl_s:
            return plans_now
        with self._lock:
            if self._plans is not None and 0 <= now_s - self._loaded_at < self.ttl_s:
                return self._plans  # another thread reloaded meanwhile
            try:
                snaps = list(db.collection(store.PLANS).limit(MAX_PLANS).stream(**READ))
            except (gexc.GoogleAPIError, gexc.RetryError) as exc:
                logs.plans_read_failed(error=type(exc).__name__)
                if self._plans is None:
                    raise PlansUnavailable() from exc
                return self._plans  # the last copy, until Firestore answers again
            self.reads += 1
            self._plans = {snap.id: plans.plan_from_doc(snap.id, snap.to_dict()) for snap in snaps}
            self._loaded_at = now_s
            return self._plans

    def plan_for(self, db, claimed: str | None, now_s: float) -> Plan | None:
        """The plan of a caller whose token names `claimed` (None: no claim). A claim naming a
        plan this copy lacks reloads it early, at most once per MISS_RELOAD_S (a plan just
        created elsewhere is found within seconds; forged claims cost at most that)."""
        book = self.all(db, now_s)
        if claimed is not None and claimed not in book and now_s - self._loaded_at >= MISS_RELOAD_S:
            self._loaded_at = -1e18  # expired: the next all() reloads
            book = self.all(db, now_s)
        plan, unknown = plans.choose(book, claimed, self.default_plan)
        if unknown and claimed not in self._warned:
            with self._lock:
                if len(self._warned) < 10_000:
                    self._warned.add(claimed)
            logs.plan_unknown(plan_id=claimed, fallback=plan.plan_id if plan else None)
        return plan

    def forget(self) -> None:
        with self._lock:
            self._plans = None
