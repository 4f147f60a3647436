"""What is written to Firestore for one call: the usage row and every rollup, in one batch.

Exactly once: the row is written with `create()`, so a batch whose row already exists fails
as a whole (AlreadyExists) and applies none of its increments. A retried commit whose first
attempt landed (lost acknowledgement) therefore changes nothing. No transactions: the hot
per-user documents take blind increments, which never contend.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore

from tokenledger import money, store
from tokenledger.config import Settings
from tokenledger.metering import rollups
from tokenledger.metering import hot_users
from tokenledger.metering.usage import COST_PENDING, UsageRecord

TRANSIENT_ERRORS = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Aborted,
    gexc.ResourceExhausted,
    gexc.Unknown,
)




class RecordingFailed(Exception):
    """The call could not be recorded after every retry; the record must be kept elsewhere."""

    def __init__(self, record: UsageRecord, cause: BaseException):
        super().__init__(f"usage {record.generation_id} not recorded: {cause!r}")
        self.record = record
        self.cause = cause


@dataclass(frozen=True)
class RecordOutcome:
    generation_id: str
    # recorded: this call wrote it; already_recorded: it was there (a lost ack or a replay).
    status: str
    attempts: int
    # The month document the call was counted in, after this commit (None: already recorded).
    # shard 0 is the whole month for a user without shards: its cost_nanos is then the user's
    # exact month total just after this call, known without a read (budgets/admission.py).
    shard: int = 0
    month_counters: dict | None = None
    # The call's reservation (or lease) was gone: released after it expired, recorded without it.
    reservation_gone: bool = False

    @property
    def month_reserved_nanos(self) -> int | None:
        """The user's month reserved just after this call, when this commit can tell (as above)."""
        counters = self.month_counters
        if self.month_cost_nanos is None or ("reserved_nanos",) not in counters:
            return None
        return int(counters[("reserved_nanos",)])

    @property
    def month_credits_nanos(self) -> int | None:
        """Of month_cost_nanos, what prepaid credits paid (the allowance spent is the rest)."""
        if self.month_cost_nanos is None:
            return None
        return int(self.month_counters.get(("credits_nanos",), 0))

    @property
    def month_cost_nanos(self) -> int | None:
        """The user's exact month cost just after this call, when this commit can tell: the call
        was counted in the base document and the month has no shards."""
        counters = self.month_counters
        if self.shard or not counters or counters.get((store.SHARD_MARK,), 1):
            return None
        return int(counters[("cost_nanos",)])


def increments(delta: dict) -> dict:
    """A nested dict of numbers -> the same shape of Firestore Increments."""
    return {
        key: increments(value) if isinstance(value, dict) else firestore.Increment(value)
        for key, value in delta.items()
    }


def _row(record: UsageRecord, settings: Settings, replay: bool, healed: bool, holds_reservation: bool) -> dict:
    """The usage_tracking document of the call."""
    row = record.row()
    # A replayed or healed call keeps the time it happened; a live one takes the server's clock.
    row["timestamp"] = record.occurred_at if replay or healed else firestore.SERVER_TIMESTAMP
    row["recorded_at"] = firestore.SERVER_TIMESTAMP
    if replay:
        row["replayed"] = True
    if healed:
        row["healed"] = True
    row["expire_at"] = record.occurred_at + timedelta(days=settings.usage_ttl_days)
    row["reserved_nanos"] = record.reserved_nanos if holds_reservation else 0
    return row


def add_call_writes(batch, db, record: UsageRecord, settings: Settings, replay: bool = False, shard: int = 0,
                    mark_sharded: bool = False, healed: bool = False) -> list:
    """Add one call's writes (row create + rollup increments) to a batch; commit is the caller's.

    `shard` is the user's rollup shard the call is counted in (0: the base documents); a
    reservation it settles is taken off that shard too: readers sum every shard (store.py).
    `mark_sharded` also marks the base month document `sharded` (see hot_users.py).
    `healed`: committed later from the outbox (heal.py): settled as the call's own commit would
    have been (its reservation released), but the row keeps the time the call happened.
    The month document's write is the batch's first: the commit's first WriteResult holds its
    counters after the call (store.counter_values with the paths returned here)."""
    user_delta = rollups.user_delta(record)
    month_delta = rollups.month_delta(record)
    # A pending row keeps its reservation until reconcile.py settles it (and releases it).
    holds_reservation = record.cost_source == COST_PENDING and not replay
    # A final row releases the call's reservation in this batch; a pending row takes it over
    # (reconcile releases it when it settles the row). A replay never does: by then the
    # reservation has expired and the budget check has released it (or will).
    lease = record.lease and bool(record.reservation_id) and not replay
    # What leaves a lease's amount: the cost (at most the call's worst case), or for a pending
    # row the worst case it takes over (UsageRecord.lease_share_nanos).
    from_lease = record.lease_share_nanos if lease else 0
    # What leaves the month's reserved: a call's own reservation its whole amount; a lease the
    # call's share, which moves from the lease to the month's cost (the rest stays the lease's).
    released = 0 if holds_reservation or replay else from_lease if lease else record.reserved_nanos
    if released or lease:
        month_delta["reserved_nanos"] = -released  # by 0 too: read back (RecordOutcome)
        month_delta["reserved"] = -money.usd_float(released)
    if record.reservation_id and not replay and not lease:
        # The call is over (a pending row holds its money, not a slot): see budgets/reservations.py.
        # A lease keeps its slot for the next call.
        month_delta["in_flight"] = -1
    if not shard and not replay:
        month_delta[store.SHARD_MARK] = 0  # read back: has the month shards elsewhere? (RecordOutcome)
        month_delta.setdefault("credits_nanos", 0)  # read back: what credits paid of the month's cost
    placement = {"shard": shard} if shard else {}
    month_plain = {"user_id": record.user_id, "month": record.month, **placement}
    day_plain = {**month_plain, "day": record.day}
    month_paths = store.add_merge_increments(
        batch, store.user_month_shard_doc(db, record.user_id, record.month, shard), month_plain, month_delta)

    store.add_create(batch, store.usage_doc(db, record.generation_id),
                     _row(record, settings, replay, healed, holds_reservation))
    _add_hold_writes(batch, db, record, replay, lease, from_lease)
    if shard and mark_sharded:
        store.add_sharded_mark(batch, db, record.user_id, record.month)
    store.add_merge_increments(batch, store.user_day_shard_doc(db, record.user_id, record.day, shard),
                               day_plain, user_delta)
    store.add_merge_increments(
        batch, store.totals_shard_doc(db, record.month, store.shard_index(record.generation_id, settings.total_shards)),
        {"month": record.month}, rollups.totals_delta(record), server_times=(),
    )
    return month_paths


def _add_hold_writes(batch, db, record: UsageRecord, replay: bool, lease: bool, from_lease: int) -> None:
    """What the call held, settled in the same batch: its lease's document (the call's share off
    it) or its own reservation's (deleted), and the wallet's side (budgets/ceiling.py)."""
    if lease:
        # Only if it is still there, as below: a lease the check released after it expired. What
        # the call's credits paid stays on it until it closes (the wallet is charged then).
        spent = {"credits_spent_nanos": record.credits_nanos} if record.credits_nanos else {}
        store.add_merge_increments(
            batch, store.reservation_doc(db, record.reservation_id), {},
            {"amount_nanos": -from_lease, "amount": -money.usd_float(from_lease), **spent}, server_times=(),
            exists=True)
    elif record.reservation_id and not replay:
        # Only if it is still there: a reservation the budget check released (it expired while
        # the call ran) fails the batch (NotFound), and record_usage records without it.
        batch.delete(store.reservation_doc(db, record.reservation_id), option=db.write_option(exists=True))
    held, charged = record.wallet_effect(replay)
    if held or charged:  # once with the row: a retried or replayed record changes nothing twice
        store.add_merge_increments(batch, store.wallet_doc(db, record.user_id), {"user_id": record.user_id},
                                   {"held_nanos": held, "balance_nanos": -charged})


def record_usage(db, record: UsageRecord, settings: Settings, replay: bool = False, healed: bool = False,
                 deadline_s: float | None = None, extra_writes=None) -> RecordOutcome:
    """Commit the row and rollups for one call, retrying transient errors with back-off.

    Raises RecordingFailed when it cannot commit within `deadline_s` (settings.record_deadline_s).
    `healed`: see add_call_writes. `extra_writes(batch)` adds writes that land only with the row.
    """
    if not record.generation_id:
        raise ValueError("a usage record needs a generation id")
    attempts = 0
    gone = False
    deadline = settings.record_deadline_s if deadline_s is None else deadline_s
    late = replay or healed  # on the base documents: a shard is an instance's choice for live calls
    shard, mark_sharded = (0, False) if late else hot_users.PLACEMENT.place(record.user_id, record.month)

    def commit_once() -> dict:
        nonlocal attempts
        attempts += 1
        batch = db.batch()  # a fresh batch each attempt: a committed batch is spent
        paths = add_call_writes(batch, db, record, settings, replay, shard, mark_sharded, healed)
        if extra_writes is not None:
            extra_writes(batch)
        results = batch.commit(retry=None, timeout=deadline)  # the Retry below is the only retry loop
        return store.counter_values(results[0], paths)

    retrying = gretry.Retry(
        predicate=gretry.if_exception_type(*TRANSIENT_ERRORS),
        initial=0.1,
        maximum=2.0,
        multiplier=2.0,
        timeout=deadline,
    )
    try:
        try:
            counters = retrying(commit_once)()
        except (gexc.NotFound, gexc.FailedPrecondition):
            if not record.reservation_id or replay:
                raise
            # The reservation is gone: it expired while the call ran (a stream longer than
            # TOKENLEDGER_RESERVATION_TTL_S) and the check released it. Released once is enough:
            # record the call holding no reservation (its row then holds none for reconcile).
            # Its wallet hold was released then too (and what a lease's earlier calls spent charged):
            # this call's credits are charged alone.
            record = replace(record, reservation_id=None, reserved_nanos=0, lease=False, wallet_release_nanos=0,
                             wallet_charge_nanos=record.credits_nanos)
            gone = True
            counters = retrying(commit_once)()
    except gexc.AlreadyExists:
        # On a retry this means the earlier attempt landed; on the first, the call was
        # recorded before (a replay). Either way the ledger already counts it once.
        return RecordOutcome(record.generation_id, "already_recorded", attempts)
    except (gexc.GoogleAPIError, gexc.RetryError, OSError) as exc:
        raise RecordingFailed(record, exc) from exc
    if mark_sharded:  # the mark is in: later spread writes of this instance need not carry it
        hot_users.PLACEMENT.marked(record.user_id, record.month)
    return RecordOutcome(record.generation_id, "recorded", attempts, shard, counters, gone)
