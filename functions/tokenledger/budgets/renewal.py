"""Leases renewed ahead, off the call's path: a user who keeps calling never waits on a renewal.

When a call admitted from a lease settles and the lease will not admit the user's next call of
the same size (`due`: its amount, its minute's request grant, its admission time or the cached
budget running out), the instance takes the next lease in the background, through the same gate
commit a call makes (gate_call.GateCall: blind increments read back, the ceiling decided on
what the commit read), so a renewal racing calls of the user holds the budget like one more
call would. An old lease that has run out (money, grant) goes back in its successor's own commit
(taken out of the book first, LeaseBook.retire: idle beside the new one it would make the NEW one
close with the next call), so the user's in-flight slots and holds do not rise for a renewal;
one that still admits closes with its next call's commit (leases.LeaseBook.closes_with_call).
Not across a month's end: the new month's first call takes its own lease.

A lease renewed because its minute ends is taken for the next minute: its request grant is
counted in that minute's document, and it admits calls from that minute on (one such lease at a
time: LeaseBook.has_ahead). A lease that runs out in those last seconds is renewed for now: the
next call is still in this minute. A renewed lease carries its predecessor's call count. A renewal refused
(the ceiling, the per-minute limit, the in-flight limit) leaves nothing held and remembers no
refusal: the user's next call goes through the gate as it would have. Time-based renewals are
made only for a lease that served more than one call and is its user's only lease on the
instance (a user calling again, one call at a time), so a user who calls once costs no lease
they will not use and a burst holds no extra in-flight slot for one.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from tokenledger import background, logs, store
from tokenledger.budgets import admission, gate_call, lease_gate, leases, limits, reservations
from tokenledger.budgets.admitted import FIRESTORE_ERRORS, BudgetExceeded, BudgetUnavailable, FreeQuotaExceeded
from tokenledger.budgets.plans import Plan
from tokenledger.config import Settings

AHEAD_S = leases.RENEW_AHEAD_S  # renew this long before a lease (or its minute, or the cached budget) runs out
REFUSALS = (BudgetExceeded, BudgetUnavailable, FreeQuotaExceeded, limits.RateLimited)


def due(lease: leases.Lease, worst_nanos: int, now: datetime, budget_age_s: float, budget_ttl_s: int) -> bool:
    """Will the user's next call like this one need a new lease soon? (pure)"""
    if lease.uncertain:
        return False
    if runs_out(lease, worst_nanos):
        return True
    if lease.calls < 2:
        return False  # one call so far: not (yet) a user who keeps calling
    soon = now.timestamp() + AHEAD_S
    minute_ends = lease.minute is not None and limits.seconds_to_next_minute(now) <= AHEAD_S
    return (lease.admit_until <= soon or minute_ends
            or (budget_ttl_s > AHEAD_S and budget_age_s >= budget_ttl_s - AHEAD_S))


def runs_out(lease: leases.Lease, worst_nanos: int) -> bool:
    """It cannot admit the user's next call of this size: spent, or its minute's grant used up (pure)."""
    return ((lease.budget.enforced and lease.nanos + lease.credits_nanos < worst_nanos)
            or (lease.minute is not None and lease.requests <= 0))


def starts_at(lease: leases.Lease, now: datetime, worst_nanos: int = 0) -> datetime:
    """When the new lease is taken for: now, or the next minute when this one's ends within
    AHEAD_S (its grant counted in that minute) — but now when this one runs out: the user's next
    call, within this minute, needs it (the next minute's is taken by a later call's settle)."""
    if lease.minute is None or limits.seconds_to_next_minute(now) > AHEAD_S or runs_out(lease, worst_nanos):
        return now
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


def after_settle(db, settings: Settings, gate, lease: leases.Lease, worst_nanos: int, plan: Plan | None,
                 now: datetime) -> None:
    """A call admitted from `lease` (idle again) has settled: the user's leases that can admit
    nothing more are given back, and the next one is taken ahead when due (in the background)."""
    uid, month, minute = lease.uid, now.strftime("%Y-%m"), limits.minute_key(now)
    if lease.month != month:
        return  # settled after its month ended: it expires (the new month's first call takes its own)
    start = starts_at(lease, now, worst_nanos)
    taken = start != now and gate.leases.has_ahead(uid, month, minute)  # the next minute's is in the book
    renew = (not taken and start.strftime("%Y-%m") == month
             and due(lease, worst_nanos, now, now.timestamp() - gate.budgets.seen_at(uid), settings.budget_cache_s)
             and (runs_out(lease, worst_nanos) or gate.leases.alone(lease))  # ahead of time: one call at a time
             and gate.leases.begin_renewal(uid))
    spent = []
    while (stale := gate.leases.stale(uid, month, lease.budget, now.timestamp(), minute if lease.minute else None)):
        spent.append(stale)
    if renew and runs_out(lease, worst_nanos) and not any(s is lease for s in spent) and gate.leases.retire(lease):
        spent.append(lease)  # its successor's commit gives it back
    handed = next((s for s in spent if s is lease), spent[0]) if renew and spent else None
    for other in spent:
        if other is not handed:
            background.submit(_give_back, db, other, now)
    if renew:
        returned = lease_gate.returned_of(db, handed, now) if handed is not None else None
        background.submit(_renew, db, settings, gate, uid, worst_nanos, plan, now, start, returned, lease.calls)


def _renew(db, settings: Settings, gate, uid: str, worst_nanos: int, plan: Plan | None, now: datetime,
           start: datetime, returned: reservations.Returned | None, calls: int) -> None:
    try:
        budget = admission.budget_for_renewal(db, settings, gate, uid, plan, now, AHEAD_S)
        if budget is None or not budget.gated(False):
            if returned is not None:
                lease_gate.give_back(db, returned)
            return
        admitted = gate_call.GateCall(db, settings, gate, uid, budget, start, lambda: None, None, False, worst_nanos,
                                      0.0, renewing=True, handed_back=returned).admit()
        if admitted.lease is not None:
            # The calls of the lease it follows (a user who keeps calling), and its whole grant unused
            # (the gate counts one for the call taking it).
            admitted.lease.calls = calls
            admitted.lease.requests += 1 if admitted.lease.minute is not None else 0
            gate.leases.put_back(admitted.lease)  # idle: the user's next call takes it
        elif admitted.reservation is not None:  # near the ceiling: no lease, and no call to hold for
            minute = store.user_minute_doc(db, uid, limits.minute_key(start)) if budget.requests_per_minute else None
            lease_gate.give_back(db, reservations.Returned(admitted.reservation, minute, 1 if minute else 0))
    except REFUSALS:
        return  # nothing held: the next call goes through the gate
    except FIRESTORE_ERRORS as exc:
        logs.reservation_release_failed(reservation_id=f"renewal:{uid}", error=type(exc).__name__)
    finally:
        gate.leases.end_renewal(uid)


def _give_back(db, lease: leases.Lease, now: datetime) -> None:
    lease_gate.give_back(db, lease_gate.returned_of(db, lease, now))
