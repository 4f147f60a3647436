"""Leases renewed ahead, off the call's path: a user who keeps calling never waits on a renewal.

When a call admitted from a lease settles and the lease will not admit the user's next call of
the same size (`due`: its amount, its minute's request grant, its admission time or the cached
budget running out), the instance takes the next lease in the background, through the same gate
commit a call makes (gate_call.GateCall: blind increments read back, the ceiling decided on
what the commit read), so a renewal racing calls of the user holds the budget like one more
call would. The old lease closes with its next call's commit (leases.LeaseBook.closes_with_call).

A lease renewed because its minute ends is taken for the next minute: its request grant is
counted in that minute's document, and it admits calls from that minute on. A renewal refused
(the ceiling, the per-minute limit, the in-flight limit) leaves nothing held and remembers no
refusal: the user's next call goes through the gate as it would have. Time-based renewals are
made only for a lease that served more than one call (a user calling again), so a user who
calls once costs no lease they will not use.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from google.cloud import firestore

from tokenledger import background, logs, store
from tokenledger.budgets import admission, gate_call, lease_gate, leases, limits, reservations
from tokenledger.budgets.admitted import FIRESTORE_ERRORS, BudgetExceeded, BudgetUnavailable, FreeQuotaExceeded
from tokenledger.budgets.plans import Plan
from tokenledger.config import Settings

AHEAD_S = 10  # renew this long before a lease (or its minute, or the cached budget) runs out
REFUSALS = (BudgetExceeded, BudgetUnavailable, FreeQuotaExceeded, limits.RateLimited)


def due(lease: leases.Lease, worst_nanos: int, now: datetime, budget_age_s: float, budget_ttl_s: int) -> bool:
    """Will the user's next call like this one need a new lease soon? (pure)"""
    if lease.uncertain:
        return False
    if lease.budget.enforced and lease.nanos + lease.credits_nanos < worst_nanos:
        return True  # spent: the next call of this size does not fit
    if lease.minute is not None and lease.requests <= 0:
        return True  # its minute's request grant is used up
    if lease.calls < 2:
        return False  # one call so far: not (yet) a user who keeps calling
    soon = now.timestamp() + AHEAD_S
    minute_ends = lease.minute is not None and limits.seconds_to_next_minute(now) <= AHEAD_S
    return (lease.admit_until <= soon or minute_ends
            or (budget_ttl_s > AHEAD_S and budget_age_s >= budget_ttl_s - AHEAD_S))


def used_up(lease: leases.Lease, worst_nanos: int) -> bool:
    """It cannot admit the user's next call of this size (its amount or its minute's grant)."""
    return ((lease.budget.enforced and lease.nanos + lease.credits_nanos < worst_nanos)
            or (lease.minute is not None and lease.requests <= 0))


def starts_at(lease: leases.Lease, now: datetime) -> datetime:
    """When the new lease is taken for: now, or the next minute when this one's ends within
    AHEAD_S (its grant counted in that minute)."""
    if lease.minute is None or limits.seconds_to_next_minute(now) > AHEAD_S:
        return now
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def after_settle(db, settings: Settings, gate, lease: leases.Lease, worst_nanos: int, plan: Plan | None,
                 now: datetime) -> None:
    """A call admitted from `lease` (idle again) has settled: the user's leases that can admit
    nothing more are given back, and the next one is taken ahead when due (in the background).
    A spent lease goes back in its successor's own commit, so the user's in-flight slots and
    holds do not rise for it; one still good for a few seconds keeps its slot beside it until it
    is spent (at most AHEAD_S). Not across a month's end: the new month's first call takes its own."""
    uid, month, minute = lease.uid, now.strftime("%Y-%m"), limits.minute_key(now)
    if lease.month != month:
        return  # settled after its month ended: it expires (the new month's first call takes its own)
    start = starts_at(lease, now)
    renew = (start.strftime("%Y-%m") == month
             and due(lease, worst_nanos, now, now.timestamp() - gate.budgets.seen_at(uid), settings.budget_cache_s)
             and (used_up(lease, worst_nanos) or gate.leases.alone(lease))  # ahead of time: a user calling one by one
             and gate.leases.begin_renewal(uid))
    spent = []
    while (stale := gate.leases.stale(uid, month, lease.budget, now.timestamp(), minute if lease.minute else None)):
        spent.append(stale)
    if renew and used_up(lease, worst_nanos) and not any(s is lease for s in spent) and gate.leases.withdraw(lease):
        spent.append(lease)  # its successor's commit gives it back
    handed = next((s for s in spent if s is lease), spent[0]) if renew and spent else None
    for other in spent:
        if other is not handed:
            background.submit(_give_back, db, other, now)
    if renew:
        returned = lease_gate.returned_of(db, handed, now) if handed is not None else None
        background.submit(_renew, db, settings, gate, uid, worst_nanos, plan, now, start, returned)


def _renew(db, settings: Settings, gate, uid: str, worst_nanos: int, plan: Plan | None, now: datetime,
           start: datetime, returned: reservations.Returned | None) -> None:
    try:
        budget = admission.budget_for_renewal(db, settings, gate, uid, plan, now, AHEAD_S)
        if budget is None or not budget.gated(False):
            if returned is not None:
                lease_gate.give_back(db, returned)
            return
        admitted = gate_call.GateCall(db, settings, gate, uid, budget, start, lambda: None, None, False, worst_nanos,
                                      0.0, renewing=True, handed_back=returned).admit()
        if admitted.lease is not None:
            admitted.lease.calls = 0  # and its whole grant unused (the gate counts one for the call taking it)
            admitted.lease.requests += 1 if admitted.lease.minute is not None else 0
            gate.leases.put_back(admitted.lease)  # idle: the user's next call takes it
        elif admitted.reservation is not None:  # near the ceiling: no lease, and no call to hold for
            minute = limits.minute_key(start) if budget.requests_per_minute else None
            reservations.release(db, admitted.reservation, also=lambda batch: _uncount(batch, db, uid, minute, 1))
    except REFUSALS:
        return  # nothing held: the next call goes through the gate
    except FIRESTORE_ERRORS as exc:
        logs.reservation_release_failed(reservation_id=f"renewal:{uid}", error=type(exc).__name__)
    finally:
        gate.leases.end_renewal(uid)


def _uncount(batch, db, uid: str, minute: str | None, requests: int) -> None:
    """Requests a renewal counted and no call will make, out of their minute's count."""
    if minute is not None and requests:
        batch.set(store.user_minute_doc(db, uid, minute), {"requests": firestore.Increment(-requests)}, merge=True)


def _give_back(db, lease: leases.Lease, now: datetime) -> None:
    lease_gate.give_back(db, lease_gate.returned_of(db, lease, now))
