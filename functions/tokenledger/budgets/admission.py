"""May this call go? The budget gate of a chat call, and the user's month after it.

One gate for the budget, the free quota and the rate limits, with no transaction and, for a user
whose budget this instance knows, no read at all:
  * the user's budget comes from a per-instance cache (cache.py, TOKENLEDGER_BUDGET_CACHE_S); on
    a miss it is read, with the month's alert flags, in one round trip before the commit;
  * a user with nothing to check (no dollar budget, no free quota that applies) skips the shared
    gate: no read, no write before the call; rate limits per instance (limits.py);
  * everyone else makes ONE commit of blind increments — the reservation (the call's worst case
    for an enforced budget, else $0) with `in_flight` +1, the minute's request count, the day's
    free count for a free call — which also reads them back: Firestore returns every increment's
    result, and an increment by 0 of the month's cost reads it (reservations.reserve_and_read).
    A hot user's month has shards: their totals are added in one get_all. Then the decision: rate
    limit (429), free quota (429), budget (402). A refused call takes its increments back in one
    more commit (the minute's count stays: refused requests count against the rate). Why blind
    increments read back are safe under concurrency: reservations.py.
After the call (after_call): the status is the month's cost as the ledger's commit read it back
(exact, for a user without shards), else what the gate read plus this call's own cost; alerts are
written for thresholds this call crossed. No read.
When Firestore cannot be reached, an enforced budget fails closed (503 budget_unavailable) unless
the operator chose TOKENLEDGER_BUDGET_FAIL_OPEN.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
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
    month = now.strftime("%Y-%m")
    budget = gate.budgets.get(uid, now.timestamp())
    wants_features = gate.features.needs_read(uid, month, feature, settings.max_features)
    alerts_sent = None
    names_unknown = False  # the month's feature names could not be read: count under `other`
    if budget is None or wants_features:
        try:
            read = _read_before(db, settings, uid, month, read_budget=budget is None, read_features=wants_features)
        except FIRESTORE_ERRORS:
            if budget is None:
                return _unchecked(settings, uid, rules.default_budget(settings), now, feature)
            read = None
            names_unknown = wants_features
        if read is not None:
            if budget is None:
                budget = read.budget
                gate.budgets.put(uid, budget, now.timestamp())
            if wants_features:
                gate.features.learn(uid, month, read.features)
            alerts_sent = read.alerts_sent

    def counted_as() -> str | None:  # chosen once admitted: a refused call adds no name
        return features.OTHER if names_unknown else gate.features.choose(uid, month, feature, settings.max_features)

    if not budget.gated(is_free):
        gate.limiter.acquire(uid, budget, now)  # per-instance rate limits; nothing in Firestore
        return Admission(budget, month, now.strftime("%Y-%m-%d"), local_slot=True, uid=uid, feature=counted_as())
    return _admit_through_gate(db, settings, gate, uid, is_free, worst_case_nanos, now, counted_as, budget,
                               alerts_sent)


@dataclass(frozen=True)
class _ReadBefore:
    budget: rules.Budget | None
    features: frozenset
    alerts_sent: dict


def _read_before(db, settings: Settings, uid: str, month: str, read_budget: bool, read_features: bool) -> _ReadBefore:
    """What the gate's commit cannot read back, in one round trip: the budget document (not in
    this instance's cache), the month's alert flags and feature names (maps, not counters)."""
    budget_ref = store.budget_doc(db, uid)
    extra = [budget_ref] if read_budget else []
    paths = ["alerts_sent"] + (BUDGET_DOC_FIELDS if read_budget else [])
    if read_features:  # the names are spread over a hot user's shards: read the month whole
        docs, snaps = reservations.read_month_with(db, uid, month, extra, paths + [reservations.FEATURE_FIELD],
                                                   **BUDGET_READ)
    else:  # the flags are on the base document only (alerts.py)
        base_ref = store.user_month_doc(db, uid, month)
        snaps = {snap.reference.path: snap for snap in db.get_all([base_ref, *extra], field_paths=paths, **BUDGET_READ)}
        base = snaps.get(base_ref.path)
        docs = [base.to_dict() if base is not None and base.exists else None]
    budget = None
    if read_budget:
        snap = snaps.get(budget_ref.path)
        budget = rules.budget_from_doc(snap.to_dict() if snap is not None and snap.exists else None, settings)
    totals = reservations.totals_of(docs)
    return _ReadBefore(budget, totals.features or frozenset(), totals.alerts_sent)


def _unchecked(settings: Settings, uid: str, budget: rules.Budget, now: datetime, feature: str | None) -> Admission:
    """Firestore unreachable: 503, unless the operator prefers availability (fail-open)."""
    if not settings.budget_fail_open:
        raise BudgetUnavailable()
    logs.budget_unavailable(user_id=uid, error="unreachable")
    return Admission(budget, now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), checked=False, feature=feature, uid=uid)


def _admit_through_gate(db, settings: Settings, gate: Gate, uid: str, is_free: bool, worst_case_nanos: int,
                        now: datetime, counted_as, budget: rules.Budget, alerts_sent: dict | None) -> Admission:
    """One commit that reserves and reads back, a decision; see the module's docstring. When only
    other calls' open reservations stand in the way (the call would fit once they settle), try
    again after a short random pause for up to ADMISSION_PATIENCE_S: in a burst, refused calls'
    momentary reservations would otherwise refuse calls that fit."""
    month, day, minute = now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), limits.minute_key(now)
    minute_ref, day_ref = store.user_minute_doc(db, uid, minute), store.user_day_doc(db, uid, day)
    amount = worst_case_nanos if (not is_free and budget.enforced) else 0
    count_free = is_free and budget.free_daily_requests is not None
    deadline = time.monotonic() + ADMISSION_PATIENCE_S
    pause = 0.05
    counted_minute = False  # the minute's +1 is made once per call, not per retry (+0 reads it back)
    swept = False  # expired reservations of this user released once, on an in-flight refusal

    def undo(batch):
        if count_free:
            batch.set(day_ref, {"free_requests": firestore.Increment(-1)}, merge=True)

    while True:
        counters = []
        if budget.requests_per_minute:  # no limit, no counter: one write less on a hot user's path
            counters.append(reservations.Counter(minute_ref, {"user_id": uid, "expire_at": now + MINUTE_DOC_TTL},
                                                 "requests", 0 if counted_minute else 1))
        if count_free:
            counters.append(reservations.Counter(day_ref, {"user_id": uid, "month": month, "day": day},
                                                 "free_requests", 1))
        try:
            reservation, totals, sharded, counted = reservations.reserve_and_read(
                db, uid, month, amount, now, settings.reservation_ttl_s, tuple(counters))
        except FIRESTORE_ERRORS:
            return _unchecked(settings, uid, budget, now, counted_as())
        counted_minute = True
        counted = {c.field: value for c, value in zip(counters, counted)}
        if sharded:
            try:
                totals = reservations.with_shards(db, uid, month, totals, reservation.shard, retry=QUICK_RETRY)
            except FIRESTORE_ERRORS:
                _give_back(db, reservation, undo)
                return _unchecked(settings, uid, budget, now, counted_as())
        refusal = limits.check(counted.get("requests", 0), totals.in_flight, budget, now)
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
        free_today = counted["free_requests"] if count_free else None
        if count_free and free_today > budget.free_daily_requests:
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
        return Admission(budget, month, day, reservation, free_requests_today=free_today,
                         totals=replace(totals, alerts_sent=alerts_sent), reserved_nanos=amount, feature=counted_as(),
                         uid=uid)


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
               now: datetime, month_cost_nanos: int | None = None) -> dict | None:
    """The user's month after the call, with no read: from what the gate's commit read back plus
    this call's own cost (cost_nanos None: the call was not recorded) — or, better, the month's
    exact cost just after this call when the ledger's commit read it back (`month_cost_nanos`:
    a user without shards). Alerts are written for the thresholds this call crossed, and for
    reached ones whose flag the gate found missing when it read the flags (each alert at most
    once, see alerts.py; the scheduled check writes any other)."""
    if not admission.checked:
        return None
    budget, totals = admission.budget, admission.totals
    if totals is None:  # the call skipped the gate: nothing was read, the month is not known here
        return rules.status(budget, admission.month, None, None, admission.free_requests_today)
    cost, reserved = totals.cost_nanos, totals.reserved_nanos
    before = cost
    if cost_nanos is not None:
        cost = month_cost_nanos if month_cost_nanos is not None else cost + cost_nanos
        before = cost - cost_nanos
        if not held:
            reserved -= admission.reserved_nanos
    if budget.has_dollar_budget:
        sent = totals.alerts_sent if totals.alerts_sent is not None else rules.presumed_sent(budget, before)
        if rules.missing_alerts(budget, cost, sent):
            alerts.write_missing(db, admission.uid, admission.month, budget, cost, sent, alerts.REALTIME, now,
                                 settings.mail_enabled)
    return rules.status(budget, admission.month, cost, reserved, admission.free_requests_today)
