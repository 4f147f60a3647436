"""Hard caps without transactions: reserve a call's worst-case cost with blind increments on the
user's month document, read back in the same commit (each increment's result), and release or
settle the reservation afterwards.

Why this holds under concurrency: every admitted call read a month total that already included
its own reservation and every reservation committed before it (commits to one document are
applied one after the other; the read-back is the document just after this commit), so the
admitted reservations (each >= the cost it stands for) never add up to more than the budget. Refused calls take their
reservation back. A reservation document with an expiry records each open reservation so the
scheduled check can release the ones whose call crashed.

Each reservation is also one call in flight: `in_flight` on the month document rises with the
reservation and falls when the ledger records the call (final or pending), when the call is
refused or abandoned, or when the expired reservation of a crashed call is released. Users with
a gated budget (see admission.py) reserve on every call, free ones at $0, so `in_flight` is the
per-user concurrency the rate limit reads (limits.py).

Releases are once-only: a release deletes the reservation document with an `exists`
precondition in the same batch as the decrement, so a second release (abandon after expiry, two
checks at once) fails as a whole and changes nothing. The ledger settles a reservation inside
the call's own batch (see ledger.py).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore

from tokenledger import money, periods, store
from tokenledger.budgets.month import (  # noqa: F401 - the month's readers, re-exported
    FEATURE_FIELD, MONTH_FIELDS, MonthTotals, WalletTotals, month_refs, month_totals, read_month, read_month_with,
    totals_of, whole_month)
from tokenledger.metering import hot_users

# Hot-path reads and writes fail fast: the caller retries, a reservation never stalls a call.
QUICK = {"timeout": 10.0}
# Commits of the gate: quick retries for at most 8 s (the client's default retried UNAVAILABLE
# for 60 s). A retried reserve whose first attempt landed fails on its reservation document's
# create() (AlreadyExists): the call is then refused, its reservation left to expire — never
# counted twice. A retried release fails on its `exists` precondition: released once.
GATE_RETRY = gretry.Retry(initial=0.05, maximum=0.5, multiplier=2.0, timeout=8.0)
GATE_COMMIT = {"timeout": 8.0, "retry": GATE_RETRY}


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    user_id: str
    month: str
    amount_nanos: int  # held on the month's allowance (the month document's reserved_nanos)
    shard: int = 0  # the month document it was added to (store.shard_id)
    credits_nanos: int = 0  # held on the user's wallet (user_credits/{uid}.held_nanos; ceiling.py)
    # Taken from that wallet hold by calls a lease settled: charged to the balance when it closes.
    credits_spent_nanos: int = 0
    # Its document's update time as its own commit wrote it (reserve_and_read): the precondition
    # that makes shrink once-only.
    update_time: object | None = field(default=None, compare=False)


def _reserved_amounts(amount_nanos: int, calls: int) -> dict:
    return {"reserved_nanos": amount_nanos, "reserved": money.usd_float(amount_nanos), "in_flight": calls}


def _reserved_delta(amount_nanos: int, calls: int) -> dict:
    return {key: firestore.Increment(value) for key, value in _reserved_amounts(amount_nanos, calls).items()}


def _placed(uid: str, month: str, shard: int) -> dict:
    """The plain fields every write to a month document carries: a shard the fold
    (metering/fold.py) deleted and a late release writes again is still found by its month."""
    return {"user_id": uid, "month": month, **({"shard": shard} if shard else {})}


def settle_writes(amount_nanos: int, held: bool) -> dict:
    """What the ledger adds to the month document when it records a call holding a reservation:
    the call is no longer in flight; its amount is given back unless a pending row holds it."""
    delta = _reserved_delta(0 if held else -amount_nanos, -1)
    return delta if not held else {"in_flight": delta["in_flight"]}


@dataclass(frozen=True)
class Counter:
    """A counter the gate bumps in its reservation's commit, and reads back from it."""
    ref: object
    plain: dict  # fields set beside the increment (user id, period, expiry)
    field: str
    amount: int


def reserve(db, uid: str, month: str, amount_nanos: int, now: datetime, ttl_s: int) -> Reservation:
    """Reserve `amount_nanos` of the user's month (see reserve_and_read)."""
    return reserve_and_read(db, uid, month, amount_nanos, now, ttl_s)[0]


@dataclass(frozen=True)
class Returned:
    """A lease given back in the commit that takes its successor (see leases.py): its amount and
    slot leave the month, and the requests of its grant it did not use leave the minute's count
    when that minute is still the one counted (`minute_ref`)."""
    reservation: Reservation
    minute_ref: object | None = None
    unused_requests: int = 0


class ReturnedGone(Exception):
    """The commit handing back a lease failed: that lease's document was not there. Either the
    check released it after it expired, or this very commit deleted it — it landed, its ack was
    lost and the retry found it gone. `reservation` is what that commit may have taken."""

    def __init__(self, reservation: Reservation):
        super().__init__("the lease handed back was gone")
        self.reservation = reservation


def add_release(batch, db, reservation: Reservation, precondition) -> None:
    """Delete the reservation document (under `precondition`) and take its amount and slot off
    the month document it was added to, and its wallet hold off the wallet (charging the balance
    with what calls it served spent of it)."""
    batch.delete(store.reservation_doc(db, reservation.reservation_id), option=precondition)
    batch.set(store.user_month_shard_doc(db, reservation.user_id, reservation.month, reservation.shard),
              {**_reserved_delta(-reservation.amount_nanos, -1),
               **_placed(reservation.user_id, reservation.month, reservation.shard)}, merge=True)
    add_wallet_change(batch, db, reservation.user_id, -reservation.credits_nanos, reservation.credits_spent_nanos)


def wallet_change(held_nanos: int, spent_nanos: int) -> dict:
    """What a hold's change does to the wallet: `held_nanos` more held, `spent_nanos` off the balance."""
    return {"held_nanos": held_nanos, "balance_nanos": -spent_nanos}


def add_wallet_change(batch, db, uid: str, held_nanos: int, spent_nanos: int) -> None:
    """The wallet's side of a hold opened, closed or settled (nothing when neither changes)."""
    if held_nanos or spent_nanos:
        store.add_merge_increments(batch, store.wallet_doc(db, uid), {"user_id": uid},
                                   wallet_change(held_nanos, spent_nanos))


def reserve_and_read(db, uid: str, month: str, amount_nanos: int, now: datetime, ttl_s: int,
                     counters: tuple = (), lease_admit_s: int = 0, returned: Returned | None = None,
                     credits_nanos: int | None = None) -> tuple[Reservation, MonthTotals, bool, list[int]]:
    """Blind increment of the month's `reserved` and `in_flight`, the reservation document and
    the caller's `counters`, in one commit, which also reads them back: Firestore returns each
    increment's result, so the month document's totals (its cost read by an increment of 0) come
    with the commit, no read.

    `credits_nanos` (not None: the user has a wallet and asks it for that much, ceiling.py): the
    wallet's `held_nanos` rises by it in the same commit, which reads the wallet's balance and
    held back too (MonthTotals.wallet). `amount_nanos` is then the allowance's share of the ask.

    The month document written is the base, or for a user writing faster than a document takes,
    a shard (metering/hot_users.py, the table the ledger's writes share): a hot user's
    reservations would otherwise put every call's write on the base document. Returns
    (reservation, that document's totals with this reservation in them, whether the month has
    other documents to add (with_shards), each counter's value after its increment).

    `lease_admit_s` > 0 makes it a lease (leases.py): its document expires that much later than a
    call's reservation. `returned` is an idle lease given back in the same commit, before the
    increments read back (they include its release); the commit fails with ReturnedGone when that
    lease is gone: give back what it may have taken, retry without it."""
    shard, mark_sharded = hot_users.PLACEMENT.place(uid, month)
    reservation = Reservation(uuid.uuid4().hex, uid, month, amount_nanos, shard, credits_nanos=credits_nanos or 0)
    batch = db.batch()
    read_back = {**_reserved_amounts(amount_nanos, 1), "cost_nanos": 0, "credits_nanos": 0}
    wallet = {**wallet_change(credits_nanos, 0), "low_alert_epoch": 0} if credits_nanos is not None else None
    if returned is not None:
        read_back, wallet, counters = _add_returned(batch, db, returned, month, read_back, wallet, counters)
    preceding = len(batch._write_pbs)  # the returned lease's writes come first
    if not shard:
        read_back[store.SHARD_MARK] = 0
    paths = store.add_merge_increments(
        batch, store.user_month_shard_doc(db, uid, month, shard),
        {"user_id": uid, "month": month, **({"shard": shard} if shard else {})}, read_back, server_times=())
    counter_paths = [store.add_merge_increments(batch, c.ref, c.plain, {c.field: c.amount}, server_times=())
                     for c in counters]
    wallet_paths = (store.add_merge_increments(batch, store.wallet_doc(db, uid), {"user_id": uid}, wallet,
                                               server_times=()) if wallet is not None else None)
    if mark_sharded:
        store.add_sharded_mark(batch, db, uid, month)
    created = len(batch._write_pbs)  # the reservation document's write: its update time, for shrink
    store.add_create(batch, store.reservation_doc(db, reservation.reservation_id),
                     _reservation_fields(reservation, now, ttl_s, lease_admit_s))
    try:
        results = batch.commit(**GATE_COMMIT)
    except (gexc.NotFound, gexc.FailedPrecondition) as exc:
        if returned is None:
            raise
        raise ReturnedGone(reservation) from exc
    if mark_sharded:
        hot_users.PLACEMENT.marked(uid, month)
    reservation = replace(reservation, update_time=results[created].update_time)
    totals, sharded, values = _read_back(results[preceding:], paths, counter_paths, counters, wallet_paths)
    return reservation, totals, bool(shard or sharded), values


def _read_back(results, paths: list, counter_paths: list, counters: tuple,
               wallet_paths: list | None) -> tuple[MonthTotals, bool, list[int]]:
    """The gate commit's write results (from its month document's on) as the month's totals (the
    wallet's too when it was written), whether the base marks shards, each counter's value."""
    own = store.counter_values(results[0], paths)
    values = [int(store.counter_values(result, counter)[(c.field,)])
              for result, counter, c in zip(results[1:], counter_paths, counters)]
    wallet_read = None
    if wallet_paths is not None:
        read = store.counter_values(results[1 + len(counters)], wallet_paths)
        wallet_read = WalletTotals(int(read[("balance_nanos",)]), int(read[("held_nanos",)]),
                                   int(read[("low_alert_epoch",)]))
    totals = MonthTotals(int(own[("cost_nanos",)]), int(own[("reserved_nanos",)]), None, int(own[("in_flight",)]),
                         credits_nanos=int(own[("credits_nanos",)]), wallet=wallet_read)
    return totals, bool(own.get((store.SHARD_MARK,))), values


def _reservation_fields(reservation: Reservation, now: datetime, ttl_s: int, lease_admit_s: int) -> dict:
    return {
        "user_id": reservation.user_id,
        "month": reservation.month,
        "shard": reservation.shard,
        "amount_nanos": reservation.amount_nanos,
        "amount": money.usd_float(reservation.amount_nanos),
        **({"credits_nanos": reservation.credits_nanos, "credits_spent_nanos": 0} if reservation.credits_nanos else {}),
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl_s + lease_admit_s),
        **({"lease": True} if lease_admit_s else {}),
    }


def _add_returned(batch, db, returned: Returned, month: str, read_back: dict, wallet: dict | None,
                  counters: tuple) -> tuple[dict, dict | None, tuple]:
    """One write per document (a commit does not write a document twice): what the returned lease
    takes off its month is folded into the new lease's month write (readers sum the month's
    documents: any of them may carry a release), its wallet hold into the wallet's write, its
    unused requests into the minute's count when that is this minute's."""
    old = returned.reservation
    batch.delete(store.reservation_doc(db, old.reservation_id), option=db.write_option(exists=True))
    if old.month == month:
        read_back = {**read_back, **_reserved_amounts(read_back["reserved_nanos"] - old.amount_nanos, 0)}
    else:
        batch.set(store.user_month_shard_doc(db, old.user_id, old.month, old.shard),
                  {**_reserved_delta(-old.amount_nanos, -1), **_placed(old.user_id, old.month, old.shard)}, merge=True)
    if old.credits_nanos or old.credits_spent_nanos:
        if wallet is None:
            add_wallet_change(batch, db, old.user_id, -old.credits_nanos, old.credits_spent_nanos)
        else:
            wallet = {**wallet, **wallet_change(wallet["held_nanos"] - old.credits_nanos, old.credits_spent_nanos)}
    if returned.minute_ref is not None and returned.unused_requests:
        unused, path = returned.unused_requests, returned.minute_ref.path
        if any(c.ref.path == path for c in counters):
            counters = tuple(replace(c, amount=c.amount - unused) if c.ref.path == path else c for c in counters)
        else:
            batch.set(returned.minute_ref, {"requests": firestore.Increment(-unused)}, merge=True)
    return read_back, wallet, counters


def with_shards(db, uid: str, month: str, known: MonthTotals, shard: int = 0, **options) -> MonthTotals:
    """A hot user's month after the reservation's commit: every document of the month, the one
    the reservation read back (`shard`) included, in one query (periods.read_docs). Read after
    that commit, the snapshot holds this reservation and every one committed before it (the
    ceiling's argument); read as one, a fold between the commit and the query cannot make the
    month read less (the base read back before it, the folded shard gone after it) or more."""
    whole = whole_month(db, uid, month, ["cost_nanos", "reserved_nanos", "in_flight", "credits_nanos"], **options)
    return MonthTotals(whole.cost_nanos, whole.reserved_nanos, known.alerts_sent, whole.in_flight, known.features,
                       whole.credits_nanos, known.wallet)


def shrink(db, reservation: Reservation, nanos: int, minute_ref=None, requests: int = 0,
           call_expires_at: datetime | None = None, credits_nanos: int = 0) -> None:
    """Give back part of a lease just taken (leases.py): its document's amount, the month's
    reserved and the minute's count fall by what it does not keep. `call_expires_at`: it becomes
    one call's reservation, which expires then.

    Once-only: the document is written under the precondition of its update time as the
    reservation's commit left it, so a retried commit whose first attempt landed (a lost
    acknowledgement) fails whole (FailedPrecondition) instead of giving the amount and the
    requests back twice. Nothing else writes the document before the call settles (the check
    deletes it only after it expired: NotFound), so that failure means this shrink landed."""
    batch = db.batch()
    ref = store.reservation_doc(db, reservation.reservation_id)
    # `shrunk` changes the document even when no money is given back (requests only): a write
    # that changes nothing keeps the update time, and the retry would pass the precondition.
    change = {"amount_nanos": firestore.Increment(-nanos), "amount": firestore.Increment(-money.usd_float(nanos)),
              "shrunk": True}
    if call_expires_at is not None:
        change.update({"lease": False, "expires_at": call_expires_at})
    if credits_nanos:  # the wallet's share given back likewise (ceiling.py)
        change["credits_nanos"] = firestore.Increment(-credits_nanos)
    precondition = (db.write_option(last_update_time=reservation.update_time) if reservation.update_time is not None
                    else db.write_option(exists=True))
    batch.update(ref, change, option=precondition)  # always: it carries the once-only precondition
    if nanos:
        batch.set(store.user_month_shard_doc(db, reservation.user_id, reservation.month, reservation.shard),
                  {**_reserved_delta(-nanos, 0), **_placed(reservation.user_id, reservation.month, reservation.shard)},
                  merge=True)
    if requests and minute_ref is not None:
        batch.set(minute_ref, {"requests": firestore.Increment(-requests)}, merge=True)
    add_wallet_change(batch, db, reservation.user_id, -credits_nanos, 0)
    try:
        batch.commit(**GATE_COMMIT)
    except gexc.FailedPrecondition:
        if reservation.update_time is None:
            raise
        # A retry of this very commit after it landed: given back once, as intended.


def release(db, reservation: Reservation, also=None) -> bool:
    """Give the reservation back (refused or failed call). False when it was already released.
    `also(batch)` undoes the caller's own writes in the same commit."""
    return _release(db, reservation, db.write_option(exists=True), also)


def _release(db, reservation: Reservation, precondition, also=None) -> bool:
    """Taken off the document it was added to (readers sum them all: any would do, that one
    keeps a hot user's base document out of it)."""
    batch = db.batch()
    add_release(batch, db, reservation, precondition)
    if also is not None:
        also(batch)
    try:
        batch.commit(**GATE_COMMIT)
    except (gexc.NotFound, gexc.FailedPrecondition):
        return False  # released or settled by someone else: nothing to give back twice
    return True


def release_expired(db, now: datetime, page_size: int = 500, progress=None,
                    user_id: str | None = None) -> tuple[int, int]:
    """Release every reservation whose expiry has passed (its call crashed before settling), or
    only one user's.

    Returns (released, reads). Each release is guarded by the document's update time, so a call
    that settles at the same moment and a second check running in parallel never double-count.
    """
    released = reads = 0
    query = db.collection(store.RESERVATIONS)
    if user_id is not None:
        query = query.where(filter=firestore.FieldFilter("user_id", "==", user_id))
    query = query.where(filter=firestore.FieldFilter("expires_at", "<=", now)).order_by("expires_at").limit(page_size)
    last = None
    while True:
        page = list((query.start_after(last) if last is not None else query).stream())
        reads += max(len(page), 1)
        for snap in page:
            if _release(db, stored_reservation(snap), db.write_option(last_update_time=snap.update_time)):
                released += 1
        if progress:
            progress(len(page))
        if len(page) < page_size:
            return released, reads
        last = page[-1]


def stored_reservation(snap) -> Reservation:
    """A reservation document as a Reservation (what releasing it gives back)."""
    data = snap.to_dict() or {}
    return Reservation(snap.id, data["user_id"], data["month"], int(data["amount_nanos"]), int(data.get("shard") or 0),
                       credits_nanos=int(data.get("credits_nanos") or 0),
                       credits_spent_nanos=int(data.get("credits_spent_nanos") or 0))


def leased_nanos(db, uid: str, month: str, **options) -> int:
    """What the user's leases (leases.py) hold of the month: reserved for their next calls by the
    instances that served them, not held by a call in progress. One query (one read per
    reservation document of the user, one when there is none)."""
    query = db.collection(store.RESERVATIONS).where(filter=firestore.FieldFilter("user_id", "==", uid))
    docs = (snap.to_dict() or {} for snap in query.select(["month", "amount_nanos", "lease"]).stream(**options))
    return sum(int(doc.get("amount_nanos") or 0) for doc in docs if doc.get("lease") and doc.get("month") == month)


# ---- free-model daily quota ---------------------------------------------------------------------

def free_requests_today(db, uid: str, day: str) -> int:
    """The free calls counted today (the day read whole, periods.read)."""
    return int(periods.read(db, uid, periods.DAYS, day, ["free_requests"], **QUICK).get("free_requests") or 0)

