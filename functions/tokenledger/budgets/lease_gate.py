"""The gate's side of leases (leases.py): admitting from one in memory, the idle lease handed back
in the next commit, and what an admitted commit keeps — a lease, or near a ceiling the call's
own holds, on every account it asked (ceiling.py)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import firestore

from tokenledger import logs, store
from tokenledger.budgets import ceiling, leases, limits, reservations, rules

FIRESTORE_ERRORS = (gexc.GoogleAPIError, gexc.RetryError)


def call_holds(lease: leases.Lease, amount: int) -> list[int]:
    """What a call admitted from a lease holds of each account: its worst case, allowance first."""
    return ceiling.call_holds(amount, [lease.nanos, lease.credits_nanos]) if amount else [0, 0]


def returnable(gate, db, uid: str, month: str, budget: rules.Budget, now: datetime,
               minute: str | None) -> reservations.Returned | None:
    """An idle lease of this user to give back in the commit that takes the next reservation:
    one that can admit nothing more, else one too small for this call."""
    lease = gate.leases.stale(uid, month, budget, now.timestamp(), minute) or gate.leases.spare(uid, month, minute)
    if lease is None:
        return None
    return returned_of(db, lease, now)


def returned_of(db, lease: leases.Lease, now: datetime) -> reservations.Returned:
    """A lease as a commit gives it back: its document, and the requests of its grant not used
    when its minute has not passed (they count against the limit no more)."""
    unused = lease.requests if lease.minute is not None and lease.minute >= limits.minute_key(now) else 0
    return reservations.Returned(lease.reservation(), store.user_minute_doc(db, lease.uid, lease.minute) if unused else None,
                                 unused)


def give_back(db, returned: reservations.Returned) -> None:
    """A hold given back by a commit of its own, its unused requests with it (best effort: when
    it fails, the hold expires and the check releases it)."""
    def unused_requests(batch) -> None:
        if returned.minute_ref is not None and returned.unused_requests:
            batch.set(returned.minute_ref, {"requests": firestore.Increment(-returned.unused_requests)}, merge=True)

    try:
        reservations.release(db, returned.reservation, also=unused_requests)
    except FIRESTORE_ERRORS as exc:
        logs.reservation_release_failed(reservation_id=returned.reservation.reservation_id, error=type(exc).__name__)


def keep(db, gate, reservation: reservations.Reservation, budget: rules.Budget, seen: tuple[int, int],
         asked: list[int], kept: list[int], requests: tuple[int, int], minute: str | None, now: datetime,
         ttl_s: int) -> tuple[reservations.Reservation, leases.Lease | None]:
    """What an admitted lease's commit keeps: the lease (busy with this call), or — an account too
    close to its ceiling for one (kept < asked) — the call's own holds. Giving back what is not
    kept is one more commit, near a ceiling or the per-minute limit only. When that commit fails,
    the document's amounts are not known: it serves this call as a lease that is then forgotten,
    and the check releases what it holds when it expires. `seen`: the month's allowance spent and
    other calls' holds on it; `requests`: (counted this minute, asked)."""
    counted_requests, asked_requests = requests
    kept_requests = leases.kept_requests(counted_requests, asked_requests, budget.requests_per_minute)
    as_call = sum(kept) < sum(asked)
    if as_call:
        kept_requests = 1
    lease = leases.Lease(reservation.reservation_id, reservation.user_id, reservation.month, reservation.shard,
                         budget, nanos=kept[ceiling.ALLOWANCE], admit_until=now.timestamp() + leases.ADMIT_S,
                         minute=minute, requests=kept_requests - 1 if minute is not None else 0,
                         cost_nanos=seen[0], reserved_nanos=seen[1] + kept[ceiling.ALLOWANCE],
                         credits_nanos=kept[ceiling.CREDITS])
    if as_call or kept_requests < asked_requests:
        minute_ref = store.user_minute_doc(db, lease.uid, minute) if minute is not None else None
        try:
            reservations.shrink(db, reservation, asked[0] - kept[0], minute_ref, asked_requests - kept_requests,
                                now + timedelta(seconds=ttl_s) if as_call else None,
                                credits_nanos=asked[1] - kept[1])
        except FIRESTORE_ERRORS as exc:
            lease.nanos, lease.credits_nanos, lease.uncertain = asked[0], asked[1], True
            logs.reservation_release_failed(reservation_id=reservation.reservation_id, error=type(exc).__name__)
            gate.leases.add(lease)
            return reservation, lease
    if as_call:
        return replace(reservation, amount_nanos=kept[0], credits_nanos=kept[1]), None
    gate.leases.add(lease)
    return reservation, lease
