"""May this call go? The budget gate of a chat call, and the user's month after it.

One gate for the budget, the free quota and the rate limits, with no transaction and, for a user
whose budget this instance knows, no read at all:
  * the user's budget comes from a per-instance cache (cache.py, TOKENLEDGER_BUDGET_CACHE_S); on
    a miss it is read, with the month's alert flags, in one round trip before the commit;
  * a user with nothing to check (no dollar budget, no free quota that applies) skips the shared
    gate: no read, no write before the call; rate limits per instance (limits.py);
  * everyone else is admitted against this instance's lease for the user when it has one that
    covers the call (leases.py: no read, no write before the call), else makes ONE commit of
    blind increments — a new lease (or, near the ceiling and for a free call counted against a
    daily quota, the call's own reservation: its worst case for an enforced budget, else $0)
    with `in_flight` +1, the minute's request count (a lease's grant), the day's free count for
    a free call, an idle lease handed back — which also reads them back: Firestore returns every increment's
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
from tokenledger.budgets import alerts, features, leases, limits, reservations, rules
from tokenledger.budgets.cache import BudgetCache, BudgetDoc, resolved
from tokenledger.budgets.plans import Plan
from tokenledger.budgets.limits import RateLimited
from tokenledger.config import Settings
from tokenledger.metering.usage import COST_PENDING

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
        self.leases = leases.LeaseBook()


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
    lease: leases.Lease | None = None  # admitted against this lease (settled into it by the ledger)


class BudgetUnavailable(Exception):
    """The budget of an enforced user cannot be checked right now (Firestore unreachable)."""


def read_budget(db, uid: str, settings: Settings, plan: Plan | None = None) -> rules.Budget:
    """The user's budget in force (on `plan`); BudgetUnavailable when Firestore cannot be read."""
    try:
        snap = store.budget_doc(db, uid).get(**BUDGET_READ)
    except FIRESTORE_ERRORS as exc:
        raise BudgetUnavailable() from exc
    return rules.budget_from_doc(snap.to_dict() if snap.exists else None, settings, plan)


def budget_in_force(gate: Gate, settings: Settings, uid: str, now: datetime, plan: Plan | None) -> rules.Budget | None:
    """The user's budget as this instance has it cached (no read), resolved on `plan`; after an
    admission, whichever call cached it."""
    return resolved(gate.budgets.recent(uid, now.timestamp()), plan, settings)


def admit(db, settings: Settings, gate: Gate, uid: str, is_free: bool, worst_case_nanos: int, now: datetime,
          feature: str | None = None, plan: Plan | None = None) -> Admission:
    """Raises RateLimited / FreeQuotaExceeded / BudgetExceeded / BudgetUnavailable (nothing left
    reserved) when the call may not go."""
    refusal = gate.limiter.refused(uid, now)
    if refusal is not None:
        raise refusal
    month = now.strftime("%Y-%m")
    budget = resolved(gate.budgets.get(uid, now.timestamp()), plan, settings)  # their document cached, on their plan
    wants_features = gate.features.needs_read(uid, month, feature, settings.max_features)
    alerts_sent = None
    names_unknown = False  # the month's feature names could not be read: count under `other`
    if budget is None or wants_features:
        try:
            read = _read_before(db, settings, uid, month, read_budget=budget is None, read_features=wants_features)
        except FIRESTORE_ERRORS:
            if budget is None:
                return _unchecked(settings, uid, rules.budget_from_doc(None, settings, plan), now, feature)
            read = None
            names_unknown = wants_features
        if read is not None:
            if budget is None:
                gate.budgets.put(uid, read.budget, now.timestamp())
                budget = read.budget.resolve(plan, settings)
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
    budget: BudgetDoc | None
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
        budget = BudgetDoc(snap.to_dict() if snap is not None and snap.exists else None)
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
    # A call counted against a daily free quota is counted one by one (one commit each); every
    # other gated call may be admitted against a lease of this instance (leases.py).
    lease_calls = 0 if count_free else settings.lease_calls
    lease_minute = minute if budget.requests_per_minute else None
    if lease_calls:
        lease = gate.leases.take(uid, month, budget, amount, now.timestamp(), lease_minute)
        if lease is not None:
            return _from_lease(lease, budget, month, day, amount, alerts_sent, counted_as(), uid)
    asked = leases.ask_nanos(amount, budget, lease_calls, gate.leases.seen_spent(uid, month))
    leasing = asked is not None
    asked = amount if asked is None else asked
    asked_requests = leases.ask_requests(budget, lease_calls) if leasing else 1
    # An idle lease this instance holds for the user goes back in the same commit (near the
    # ceiling too: what it holds is then room for this call).
    returned = _returnable(gate, db, uid, month, budget, now, lease_minute) if settings.lease_calls else None
    deadline = time.monotonic() + ADMISSION_PATIENCE_S
    pause = 0.05
    counted_minute = False  # the minute's grant is counted once per call, not per retry
    swept = False  # expired reservations of this user released once, on an in-flight refusal

    def undo(batch):  # a refused call's increments back, but for the one request it was
        if count_free:
            batch.set(day_ref, {"free_requests": firestore.Increment(-1)}, merge=True)
        if budget.requests_per_minute and asked_requests > 1:
            batch.set(minute_ref, {"requests": firestore.Increment(1 - asked_requests)}, merge=True)

    while True:
        counters = []
        if budget.requests_per_minute:  # no limit, no counter: one write less on a hot user's path
            counters.append(reservations.Counter(minute_ref, {"user_id": uid, "expire_at": now + MINUTE_DOC_TTL},
                                                 "requests", asked_requests - (1 if counted_minute else 0)))
        if count_free:
            counters.append(reservations.Counter(day_ref, {"user_id": uid, "month": month, "day": day},
                                                 "free_requests", 1))
        try:
            reservation, totals, sharded, counted = reservations.reserve_and_read(
                db, uid, month, asked, now, settings.reservation_ttl_s, tuple(counters),
                lease_admit_s=leases.ADMIT_S if leasing else 0, returned=returned)
        except reservations.ReturnedGone as gone:
            # The lease handed back was released after it expired — or by this commit, landed
            # before a lost ack: then its reservation is there too. Given back (once-only: a
            # reservation that never landed is not found), the minute's count left as counted.
            _give_back(db, gone.reservation)
            returned = None
            continue
        except FIRESTORE_ERRORS:
            return _unchecked(settings, uid, budget, now, counted_as())
        returned = None  # given back in that commit
        counted_minute = True
        counted = {c.field: value for c, value in zip(counters, counted)}
        if sharded:
            try:
                totals = reservations.with_shards(db, uid, month, totals, reservation.shard, retry=QUICK_RETRY)
            except FIRESTORE_ERRORS:
                _give_back(db, reservation, undo)
                return _unchecked(settings, uid, budget, now, counted_as())
        refusal = limits.check(counted.get("requests", 0) - (asked_requests - 1), totals.in_flight, budget, now)
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
        kept = leases.kept_nanos(totals.cost_nanos, totals.reserved_nanos, asked, amount,
                                 budget.monthly_budget_nanos) if asked else 0
        gate.leases.saw(uid, month, totals.cost_nanos, totals.reserved_nanos - asked + (kept or 0))
        if kept is None:
            _give_back(db, reservation, undo)
            others = totals.reserved_nanos - asked
            fits_alone = rules.admits(totals.cost_nanos, amount, budget.monthly_budget_nanos)
            if not fits_alone or others <= 0 or time.monotonic() + pause > deadline:
                raise BudgetExceeded(totals.cost_nanos, others, budget.monthly_budget_nanos, amount)
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 1.5, 0.3)
            lease = gate.leases.take(uid, month, budget, amount, now.timestamp(), lease_minute) if lease_calls else None
            if lease is not None:  # a call of this user on this instance ended meanwhile: its lease serves
                return _from_lease(lease, budget, month, day, amount, alerts_sent, counted_as(), uid)
            continue
        others = reservations.MonthTotals(totals.cost_nanos, totals.reserved_nanos - asked, alerts_sent,
                                          totals.in_flight)
        if leasing:
            reservation, lease = _keep(db, gate, reservation, budget, others, asked, kept,
                                       counted.get("requests", 0), asked_requests, lease_minute, now,
                                       settings.reservation_ttl_s)
            if lease is not None:
                return Admission(budget, month, day, totals=others, reserved_nanos=amount, feature=counted_as(),
                                 uid=uid, lease=lease)
            totals = replace(totals, reserved_nanos=others.reserved_nanos + amount)
        return Admission(budget, month, day, reservation, free_requests_today=free_today,
                         totals=replace(totals, alerts_sent=alerts_sent), reserved_nanos=amount,
                         feature=counted_as(), uid=uid)


def _from_lease(lease: leases.Lease, budget: rules.Budget, month: str, day: str, amount: int,
                alerts_sent: dict | None, feature: str | None, uid: str) -> Admission:
    """Admitted in memory against this instance's lease: no write, no read. Its totals are the
    month as the lease last saw it, other calls' and instances' reservations only."""
    others = reservations.MonthTotals(lease.cost_nanos, lease.reserved_nanos - lease.nanos, alerts_sent)
    return Admission(budget, month, day, totals=others, reserved_nanos=amount, feature=feature, uid=uid, lease=lease)


def _returnable(gate: Gate, db, uid: str, month: str, budget: rules.Budget, now: datetime,
                minute: str | None) -> reservations.Returned | None:
    """An idle lease of this user to give back in the commit that takes the next reservation:
    one that can admit nothing more, else one too small for this call."""
    lease = gate.leases.stale(uid, month, budget, now.timestamp(), minute) or gate.leases.spare(uid)
    if lease is None:
        return None
    unused = lease.requests if lease.minute is not None and lease.minute == limits.minute_key(now) else 0
    return reservations.Returned(
        reservations.Reservation(lease.lease_id, uid, lease.month, lease.nanos, lease.shard),
        store.user_minute_doc(db, uid, lease.minute) if unused else None, unused)


def _keep(db, gate: Gate, reservation: reservations.Reservation, budget: rules.Budget,
          others: reservations.MonthTotals, asked: int, kept: int, counted_requests: int, asked_requests: int,
          minute: str | None, now: datetime, ttl_s: int) -> tuple[reservations.Reservation, leases.Lease | None]:
    """What an admitted lease's commit keeps: the lease (busy with this call), or — the month
    too close to its ceiling for one (kept < asked) — the call's own reservation. Giving back
    what is not kept is one more commit, near the ceiling or the per-minute limit only. When
    that commit fails, the document's amount is not known: it serves this call as a lease that
    is then forgotten, and the check releases what it holds when it expires."""
    kept_requests = leases.kept_requests(counted_requests, asked_requests, budget.requests_per_minute)
    as_call = kept < asked
    if as_call:
        kept_requests = 1
    lease = leases.Lease(reservation.reservation_id, reservation.user_id, reservation.month, reservation.shard,
                         budget, nanos=kept, admit_until=now.timestamp() + leases.ADMIT_S,
                         minute=minute, requests=kept_requests - 1 if minute is not None else 0,
                         cost_nanos=others.cost_nanos, reserved_nanos=others.reserved_nanos + kept)
    if as_call or kept_requests < asked_requests:
        minute_ref = store.user_minute_doc(db, lease.uid, minute) if minute is not None else None
        try:
            reservations.shrink(db, reservation, asked - kept, minute_ref, asked_requests - kept_requests,
                                now + timedelta(seconds=ttl_s) if as_call else None)
        except FIRESTORE_ERRORS as exc:
            lease.nanos, lease.uncertain = asked, True
            logs.reservation_release_failed(reservation_id=reservation.reservation_id, error=type(exc).__name__)
            gate.leases.add(lease)
            return reservation, lease
    if as_call:
        return replace(reservation, amount_nanos=kept), None
    gate.leases.add(lease)
    return reservation, lease


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
    """The call failed before anything was billed: give its reservation (and slot) back — a
    lease just goes back to this instance's book, nothing written."""
    if admission is None:
        return
    finish(gate, admission)
    if admission.lease is not None:
        gate.leases.put_back(admission.lease)
        admission.lease = None
    if admission.reservation is not None:
        reservations.release(db, admission.reservation)
        admission.reservation = None


def holding(gate: Gate, admission: Admission, record):
    """The call's record (metering.usage.UsageRecord) with what it holds for the ledger to settle
    in its commit: the call's own reservation (released whole), or its lease (the call's cost
    taken off it) — closed instead, released whole, when this instance holds another idle lease
    for the user (leases.LeaseBook.closes_with_call; not for a pending row, which takes the call's
    worst case over from the lease, nor for a lease whose amount is not known for sure: its
    shrink may have landed, and releasing the amount asked would take more off the month than
    the document holds). Returns (record, reservation, lease): the one held."""
    if admission.reservation is not None:
        reservation = admission.reservation
        return replace(record, reserved_nanos=reservation.amount_nanos,
                       reservation_id=reservation.reservation_id), reservation, None
    lease = admission.lease
    if lease is None:
        return record, None, None
    if record.cost_source != COST_PENDING and not lease.uncertain and gate.leases.closes_with_call(lease):
        gate.leases.drop(lease)
        admission.lease = None
        return replace(record, reserved_nanos=lease.nanos, reservation_id=lease.lease_id), None, None
    return replace(record, reserved_nanos=admission.reserved_nanos, reservation_id=lease.lease_id, lease=True), None, lease


def settled(gate: Gate, admission: Admission, outcome, record) -> None:
    """The ledger recorded the call (ledger.RecordOutcome; None: it could not): its lease is
    idle again with the call's share taken off (record.lease_share_nanos: its cost, at most its
    worst case; a pending row's worst case), or forgotten when its document's amount is not
    known for sure (it then expires: the check releases it)."""
    lease = admission.lease
    if lease is None:
        return
    admission.lease = None
    if outcome is None or outcome.status != "recorded" or outcome.reservation_gone or lease.uncertain:
        gate.leases.drop(lease)
        return
    lease.nanos -= record.lease_share_nanos  # as the ledger took it off the lease's document
    # The month as the lease sees it: this call's cost counted, its share of the lease moved out
    # of reserved (a pending row's worst case stays reserved) — or exactly, when the ledger's
    # commit read it back.
    if record.cost_source != COST_PENDING:
        lease.cost_nanos += record.cost_nanos
        lease.reserved_nanos -= record.lease_share_nanos
    if outcome.month_cost_nanos is not None and outcome.month_reserved_nanos is not None:
        lease.cost_nanos, lease.reserved_nanos = outcome.month_cost_nanos, outcome.month_reserved_nanos
        gate.leases.saw(lease.uid, lease.month, lease.cost_nanos, lease.reserved_nanos)
    gate.leases.put_back(lease)


def finish(gate: Gate, admission: Admission | None) -> None:
    """The call is over on this instance: its per-instance slot is free again."""
    if admission is not None and admission.local_slot:
        admission.local_slot = False
        gate.limiter.release(admission.uid)


def after_call(db, settings: Settings, admission: Admission, cost_nanos: int | None, held: bool,
               now: datetime, month_cost_nanos: int | None = None, month_reserved_nanos: int | None = None,
               lease_nanos: int | None = None) -> dict | None:
    """The user's month after the call, with no read: from what the gate's commit read back plus
    this call's own cost (cost_nanos None: the call was not recorded) — or, better, the month's
    exact cost just after this call when the ledger's commit read it back (`month_cost_nanos`:
    a user without shards). Alerts are written for the thresholds this call crossed, and for
    reached ones whose flag the gate found missing when it read the flags (each alert at most
    once, see alerts.py; the scheduled check writes any other).

    A call admitted from a lease (`lease_nanos`: what the lease holds after it) shows the month's
    reserved without that lease's amount — what other calls and instances hold — taken from the
    ledger's read-back when it told (`month_reserved_nanos`), else as the lease last saw it."""
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
        if lease_nanos is not None:  # totals hold other calls' reservations only
            if month_cost_nanos is not None and month_reserved_nanos is not None:
                reserved = month_reserved_nanos - lease_nanos
            elif held:
                reserved += admission.reserved_nanos
        elif not held:
            reserved -= admission.reserved_nanos
    if budget.has_dollar_budget:
        sent = totals.alerts_sent if totals.alerts_sent is not None else rules.presumed_sent(budget, before)
        if rules.missing_alerts(budget, cost, sent):
            alerts.write_missing(db, admission.uid, admission.month, budget, cost, sent, alerts.REALTIME, now,
                                 settings.mail_enabled)
    return rules.status(budget, admission.month, cost, reserved, admission.free_requests_today)
