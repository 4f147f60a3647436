"""May this call go? The budget gate of a chat call, and the user's month after it.

One gate for the budget, the free quota and the rate limits, with no transaction and at most one
round trip of reads:
  * the user's budget comes from a per-instance cache (cache.py); on a miss the configured
    default is assumed (most users have it) and the budget document is read in the same round
    trip as the month, the assumption corrected if it was wrong;
  * a user with nothing to check (no dollar budget, no free quota that applies) skips the shared
    gate: no read, no write before the call; rate limits per instance (limits.py);
  * everyone else makes ONE commit (blind increments: the reservation — the call's worst case
    for an enforced budget, else $0 — with `in_flight` +1, the minute's request count, the
    day's free count for a free call) and ONE get_all (the month, the minute, the day; the
    budget document on a cache miss), then decides: rate limit (429), free quota (429), budget
    (402). A refused call takes its increments back in one more commit (the minute's count
    stays: refused requests count against the rate). Why blind increments then a read is safe
    under concurrency: reservations.py.
After the call (after_call): the status is what the gate read plus this call's own cost; alerts
are written only when this call crossed a threshold. No read.
When Firestore cannot be reached, an enforced budget fails closed (503 budget_unavailable) unless
the operator chose TOKENLEDGER_BUDGET_FAIL_OPEN.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import firestore

from tokenledger import logs, store
from tokenledger.budgets import alerts, features, limits, reservations, rules
from tokenledger.budgets.cache import BudgetCache
from tokenledger.budgets.limits import RateLimited
from tokenledger.config import Settings

__all__ = ["RateLimited"]

# The budget gate must not hold a call for long when Firestore is down (quick retries, then a
# decision: 503). Not too short either: a fresh instance's first Firestore call opens its channel
# and took over 2 s on a loaded machine; failing closed, a tight deadline would refuse it.
QUICK_RETRY = reservations.GATE_RETRY
BUDGET_READ = {"timeout": 8.0, "retry": QUICK_RETRY}
# How long a call that would fit once other calls' reservations settle keeps trying (seconds).
ADMISSION_PATIENCE_S = 2.0
FIRESTORE_ERRORS = (gexc.GoogleAPIError, gexc.RetryError)
MINUTE_DOC_TTL = timedelta(days=1)  # minute counters expire (Firestore TTL on expire_at)
BUDGET_DOC_FIELDS = ["monthly_budget", "monthly_budget_nanos", *rules.BUDGET_FIELDS[1:]]


class Gate:
    """What one instance keeps between calls: budgets, rate counters, feature names."""

    def __init__(self, settings: Settings):
        self.budgets = BudgetCache(settings.budget_cache_s)
        self.limiter = limits.LocalLimiter()
        self.features = features.FeatureBook()


class BudgetExceeded(Exception):
    def __init__(self, spent_nanos: int, reserved_nanos: int, budget_nanos: int, estimate_nanos: int):
        super().__init__("budget exceeded")
        self.spent_nanos = spent_nanos
        self.reserved_nanos = reserved_nanos  # other calls' open reservations at the check
        self.budget_nanos = budget_nanos
        self.estimate_nanos = estimate_nanos


class FreeQuotaExceeded(Exception):
    def __init__(self, limit: int, retry_after_s: int):
        super().__init__("free quota exceeded")
        self.limit = limit
        self.retry_after_s = retry_after_s


@dataclass
class Admission:
    budget: rules.Budget
    month: str
    day: str
    reservation: reservations.Reservation | None = None
    free_requests_today: int | None = None
    checked: bool = True  # False: Firestore was unreachable and the call went on unchecked (fail-open)
    totals: reservations.MonthTotals | None = None  # as read by the gate (this call's reservation in it)
    reserved_nanos: int = 0  # this call's own reservation (kept after the ledger settles it)
    feature: str | None = None  # the name the call is counted under (features.py)
    local_slot: bool = False  # holds a per-instance in-flight slot (calls that skip the shared gate)
    uid: str = ""


class BudgetUnavailable(Exception):
    """The budget of an enforced user cannot be checked right now (Firestore unreachable)."""


def read_budget(db, uid: str, settings: Settings) -> rules.Budget:
    """The user's budget in force; BudgetUnavailable when Firestore cannot be read."""
    try:
        snap = store.budget_doc(db, uid).get(**BUDGET_READ)
    except FIRESTORE_ERRORS as exc:
        raise BudgetUnavailable() from exc
    return rules.budget_from_doc(snap.to_dict() if snap.exists else None, settings)


def admit(db, settings: Settings, gate: Gate, uid: str, is_free: bool, worst_case_nanos: int, now: datetime,
          feature: str | None = None) -> Admission:
    """Raises RateLimited / FreeQuotaExceeded / BudgetExceeded / BudgetUnavailable (nothing left
    reserved) when the call may not go."""
    refusal = gate.limiter.refused(uid, now)
    if refusal is not None:
        raise refusal
    cached = gate.budgets.get(uid, now.timestamp())
    budget = cached or rules.default_budget(settings)
    if cached is None and not budget.gated(is_free):
        # The default would skip the gate, but this user's own document may not: read it.
        try:
            budget = read_budget(db, uid, settings)
        except BudgetUnavailable:
            return _unchecked(settings, uid, budget, now, feature)
        gate.budgets.put(uid, budget, now.timestamp())
        cached = budget
    if not budget.gated(is_free):
        return _admit_locally(db, settings, gate, uid, budget, now, feature)
    return _admit_through_gate(db, settings, gate, uid, is_free, worst_case_nanos, now, feature, budget,
                               known=cached is not None)


def _unchecked(settings: Settings, uid: str, budget: rules.Budget, now: datetime, feature: str | None) -> Admission:
    """Firestore unreachable: 503, unless the operator prefers availability (fail-open)."""
    if not settings.budget_fail_open:
        raise BudgetUnavailable()
    logs.budget_unavailable(user_id=uid, error="unreachable")
    return Admission(budget, now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), checked=False, feature=feature, uid=uid)


def _admit_locally(db, settings: Settings, gate: Gate, uid: str, budget: rules.Budget, now: datetime,
                   feature: str | None) -> Admission:
    """Nothing to check in Firestore: per-instance rate limits; no read unless a feature name is
    new to this instance."""
    month = now.strftime("%Y-%m")
    gate.limiter.acquire(uid, budget, now)
    admission = Admission(budget, month, now.strftime("%Y-%m-%d"), local_slot=True, uid=uid)
    try:
        if gate.features.needs_read(uid, month, feature, settings.max_features):
            gate.features.learn(uid, month, _month_features(db, uid, month))
        admission.feature = gate.features.choose(uid, month, feature, settings.max_features)
    except FIRESTORE_ERRORS:
        admission.feature = features.OTHER  # cannot tell: count it where the map cannot grow
    return admission


def _month_features(db, uid: str, month: str) -> frozenset:
    snaps = db.get_all(reservations.month_refs(db, uid, month), field_paths=[reservations.FEATURE_FIELD],
                       **reservations.QUICK)
    return reservations.totals_of(s.to_dict() if s.exists else None for s in snaps).features or frozenset()


def _admit_through_gate(db, settings: Settings, gate: Gate, uid: str, is_free: bool, worst_case_nanos: int,
                        now: datetime, feature: str | None, budget: rules.Budget, known: bool) -> Admission:
    """One commit, one get_all, a decision; see the module's docstring. When only other calls'
    open reservations stand in the way (the call would fit once they settle), try again after a
    short random pause for up to ADMISSION_PATIENCE_S: in a burst, refused calls' momentary
    reservations would otherwise refuse calls that fit."""
    month, day, minute = now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), limits.minute_key(now)
    minute_ref, day_ref = store.user_minute_doc(db, uid, minute), store.user_day_doc(db, uid, day)
    budget_ref = store.budget_doc(db, uid)
    deadline = time.monotonic() + ADMISSION_PATIENCE_S
    pause = 0.05
    counted_minute = False  # the minute's +1 is made once per call, not per retry
    swept = False  # expired reservations of this user released once, on an in-flight refusal
    while True:
        amount = worst_case_nanos if (not is_free and budget.enforced) else 0
        count_free = is_free and budget.free_daily_requests is not None
        want_features = gate.features.needs_read(uid, month, feature, settings.max_features)

        def writes(batch, count_minute=not counted_minute, count_free=count_free):
            if count_minute:
                batch.set(minute_ref, {"requests": firestore.Increment(1), "user_id": uid,
                                       "expire_at": now + MINUTE_DOC_TTL}, merge=True)
            if count_free:
                batch.set(day_ref, {"free_requests": firestore.Increment(1), "user_id": uid, "month": month,
                                    "day": day}, merge=True)

        def undo(batch, count_free=count_free):
            if count_free:
                batch.set(day_ref, {"free_requests": firestore.Increment(-1)}, merge=True)

        try:
            reservation = reservations.reserve(db, uid, month, amount, now, settings.reservation_ttl_s, also=writes)
        except FIRESTORE_ERRORS:
            return _unchecked(settings, uid, budget, now, feature)
        counted_minute = True
        refs = reservations.month_refs(db, uid, month)
        extra = [minute_ref] + ([day_ref] if count_free else []) + ([] if known else [budget_ref])
        paths = reservations.MONTH_FIELDS + ["requests", "free_requests"] \
            + ([reservations.FEATURE_FIELD] if want_features else []) + ([] if known else BUDGET_DOC_FIELDS)
        try:
            snaps = {s.reference.path: s for s in db.get_all(refs + extra, field_paths=paths,
                                                              **{**reservations.QUICK, "retry": QUICK_RETRY})}
        except FIRESTORE_ERRORS:
            _give_back(db, reservation, undo)
            return _unchecked(settings, uid, budget, now, feature)

        def doc(ref):
            snap = snaps.get(ref.path)
            return snap.to_dict() if snap is not None and snap.exists else None

        totals = reservations.totals_of(doc(ref) for ref in refs)
        if not known:
            real = rules.budget_from_doc(doc(budget_ref), settings)
            gate.budgets.put(uid, real, now.timestamp())
            known = True
            if real != budget:
                budget = real
                if (worst_case_nanos if (not is_free and real.enforced) else 0) != amount \
                        or (is_free and real.free_daily_requests is not None) != count_free or not real.gated(is_free):
                    _give_back(db, reservation, undo)  # assumed the default; this user has their own
                    if not real.gated(is_free):
                        return _admit_locally(db, settings, gate, uid, real, now, feature)
                    continue
        refusal = limits.check(int((doc(minute_ref) or {}).get("requests") or 0), totals.in_flight, budget, now)
        if refusal is not None and refusal.limit_name == limits.IN_FLIGHT and not swept:
            # Slots of crashed calls come back when their reservations expire: free this user's
            # now rather than at the next scheduled check (a query, on this refusal path only).
            swept = True
            if _sweep_expired(db, uid, now):
                _give_back(db, reservation, undo)
                continue
        if refusal is not None:
            _give_back(db, reservation, undo)
            gate.limiter.remember(uid, refusal, now)
            raise refusal
        free_today = None
        if count_free:
            free_today = int((doc(day_ref) or {}).get("free_requests") or 0)
            if free_today > budget.free_daily_requests:
                _give_back(db, reservation, undo)
                raise FreeQuotaExceeded(budget.free_daily_requests, rules.seconds_to_next_day(now))
        if amount and not reservations.admitted(totals, budget):
            _give_back(db, reservation, undo)
            others = totals.reserved_nanos - amount
            fits_alone = rules.admits(totals.cost_nanos, amount, budget.monthly_budget_nanos)
            if not fits_alone or others <= 0 or time.monotonic() + pause > deadline:
                raise BudgetExceeded(totals.cost_nanos, others, budget.monthly_budget_nanos, amount)
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 1.5, 0.3)
            continue
        if want_features:
            gate.features.learn(uid, month, totals.features or ())
        chosen = gate.features.choose(uid, month, feature, settings.max_features)
        return Admission(budget, month, day, reservation, free_requests_today=free_today, totals=totals,
                         reserved_nanos=amount, feature=chosen, uid=uid)


def _sweep_expired(db, uid: str, now: datetime) -> int:
    try:
        released, _ = reservations.release_expired(db, now, page_size=50, user_id=uid)
    except FIRESTORE_ERRORS:
        return 0
    return released


def _give_back(db, reservation: reservations.Reservation, undo=None) -> None:
    """Best effort: if Firestore is down the release fails too, and the budget check releases
    the reservation when it expires."""
    try:
        reservations.release(db, reservation, also=undo)
    except FIRESTORE_ERRORS as exc:
        logs.reservation_release_failed(reservation_id=reservation.reservation_id, error=type(exc).__name__)


def abandon(db, gate: Gate, admission: Admission | None) -> None:
    """The call failed before anything was billed: give its reservation (and slot) back."""
    if admission is None:
        return
    finish(gate, admission)
    if admission.reservation is not None:
        reservations.release(db, admission.reservation)
        admission.reservation = None


def finish(gate: Gate, admission: Admission | None) -> None:
    """The call is over on this instance: its per-instance slot is free again."""
    if admission is not None and admission.local_slot:
        admission.local_slot = False
        gate.limiter.release(admission.uid)


def after_call(db, settings: Settings, admission: Admission, cost_nanos: int | None, held: bool,
               now: datetime) -> dict | None:
    """The user's month after the call, from what the gate read plus this call's own cost
    (cost_nanos None: the call was not recorded); alerts written only for thresholds this call
    crossed (each at most once, see alerts.py). No read."""
    if not admission.checked:
        return None
    budget, totals = admission.budget, admission.totals
    if totals is None:  # the call skipped the gate: nothing was read, the month is not known here
        return rules.status(budget, admission.month, None, None, admission.free_requests_today)
    cost, reserved = totals.cost_nanos, totals.reserved_nanos
    if cost_nanos is not None:
        cost += cost_nanos
        if not held:
            reserved -= admission.reserved_nanos
    if budget.has_dollar_budget and rules.missing_alerts(budget, cost, totals.alerts_sent):
        alerts.write_missing(db, admission.uid, admission.month, budget, cost, totals.alerts_sent,
                             alerts.REALTIME, now, settings.mail_enabled)
    return rules.status(budget, admission.month, cost, reserved, admission.free_requests_today)
