"""The fold: a hot user's shards moved back into their base documents once the user cools down.

While a user calls faster than a document takes writes, part of their month and day is counted
in shards `{period}~{k}` (hot_users.py). Readers that go through periods.py sum them; a page that
reads only the base document (`getDoc(user_usage/{uid}/months/{YYYY-MM})`) would see part of the
month. So the scheduled `fold_shards` function (every TOKENLEDGER_FOLD_SCHEDULE) folds every
period whose shards nobody wrote for TOKENLEDGER_FOLD_COOL_S: afterwards the base document alone
holds the whole period, to the nano-dollar.

One period, one commit: the base document takes the sum of its shards' counters as blind
increments (fold_delta, pure), and each shard is deleted under the precondition of the update
time it was read at. Hence:
  * exact at every instant: the commit is atomic, and every reader reads a period in one
    snapshot (periods.py), so the money is in the shards before it and in the base after it;
  * concurrent writers: a call (or a release) that writes a shard after the fold read it fails
    the whole commit (FailedPrecondition): nothing moves, the next run folds it once cool; a call
    writing the base meanwhile commutes with the fold's increments;
  * retries and two folds at once: the second commit finds the shards gone or changed and fails
    whole: never folded twice.
A shard written again after its fold (a late release of a reservation it held) is created again
with its month fields (budgets/reservations.py) and folded at a later run. The base keeps its
`sharded` mark for the month: an instance that committed it spreads further writes without
marking again (hot_users.py), so readers must keep reading the month whole.

Cost: per run, one query per month folded and kind (4: this month and the previous one, months
and days; one read each when there is nothing to fold), plus one read per shard found; per
folded period, 1 write to the base and 1 delete per shard.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger import periods, store

# A fold's commit retries transient errors (a retry after a landed commit fails on its
# preconditions: nothing twice) for at most 30 s; the next run picks up what is left.
FOLD_RETRY = gretry.Retry(initial=0.1, maximum=2.0, multiplier=2.0, timeout=30.0)
# Fields of a shard that are not counters: they stay behind (and leave with the shard).
NOT_FOLDED = periods.NOT_SUMMED | {"sharded", "alerts_sent"}


@dataclass
class FoldReport:
    periods_folded: int = 0
    shards_folded: int = 0
    periods_still_hot: int = 0  # a shard written within the cool-down: left for a later run
    periods_raced: int = 0  # a shard changed between the read and the commit: left for a later run
    reads: int = 0
    writes: int = 0
    folded: list[str] = field(default_factory=list)  # "uid/months/2026-12", for logs and tests


def fold_delta(shards: Iterable[dict]) -> dict:
    """What the base document takes from these shards: every counter (nested maps too) summed;
    flags, names, times and NOT_FOLDED fields left out."""
    whole = periods.summed(shards)
    return _numbers({k: v for k, v in whole.items() if k not in NOT_FOLDED})


def _numbers(doc: dict) -> dict:
    out = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            inner = _numbers(value)
            if inner:
                out[key] = inner
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


def fold_shards(db, now: datetime, cool_s: int, months: Iterable[str] | None = None) -> FoldReport:
    """Fold every cooled period of `months` (default: now's month and the one before)."""
    report = FoldReport()
    this_month = now.strftime("%Y-%m")
    for month in months or (previous_month(this_month), this_month):
        for kind in (periods.MONTHS, periods.DAYS):
            groups = _shards_of(db, kind, month, report)
            for (uid, period), snaps in sorted(groups.items()):
                if max(_written_at(snap) for snap in snaps) > now - timedelta(seconds=cool_s):
                    report.periods_still_hot += 1
                    continue
                _fold_period(db, uid, kind, period, month, snaps, report)
    return report


def _written_at(snap) -> datetime:
    """A snapshot's update time (a protobuf Timestamp here) as an aware datetime."""
    stamp = snap.update_time
    return stamp.ToDatetime(tzinfo=timezone.utc) if hasattr(stamp, "ToDatetime") else stamp


def _shards_of(db, kind: str, month: str, report: FoldReport) -> dict[tuple[str, str], list]:
    """{(uid, period): shard snapshots} of one month (composite index: kind, month ASC, shard ASC)."""
    query = (db.collection_group(kind).where(filter=FieldFilter("month", "==", month))
             .where(filter=FieldFilter("shard", ">", 0)))
    snaps = list(query.stream())
    report.reads += max(len(snaps), 1)
    groups: dict[tuple[str, str], list] = {}
    for snap in snaps:
        groups.setdefault((snap.reference.parent.parent.id, store.period_of(snap.id)), []).append(snap)
    return groups


def _fold_period(db, uid: str, kind: str, period: str, month: str, snaps: list, report: FoldReport) -> None:
    """One commit: the base takes the shards' sum, each shard deleted if unchanged since read."""
    batch = db.batch()
    plain = {"user_id": uid, "month": month}
    if kind == periods.DAYS:
        plain["day"] = period
    else:  # already there (a shard is written only with or after it): kept true whatever happens
        plain.update({"sharded": True, store.SHARD_MARK: store.USER_SHARDS})
    base = db.collection(store.USER_USAGE).document(uid).collection(kind).document(period)
    store.add_merge_increments(batch, base, plain, fold_delta(snap.to_dict() or {} for snap in snaps),
                               server_times=("updated_at", "folded_at"))
    for snap in snaps:
        batch.delete(snap.reference, option=db.write_option(last_update_time=snap.update_time))
    try:
        batch.commit(retry=FOLD_RETRY, timeout=10.0)
    except (gexc.FailedPrecondition, gexc.NotFound):
        report.periods_raced += 1  # written since the read, or this very fold landed before a retry
        return
    report.periods_folded += 1
    report.shards_folded += len(snaps)
    report.writes += 1 + len(snaps)
    report.folded.append(f"{uid}/{kind}/{period}")


def log_fields(report: FoldReport) -> dict:
    return {k: v for k, v in report.__dict__.items() if k != "folded"}

