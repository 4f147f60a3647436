"""Attacks on the fold (metering/fold.py) on the real emulator: a reservation's release or a
lease's shrink landing on a shard the fold deleted, and calls with reservations racing folds from
threads. After every attack the month read whole is exact at each step, and once the user cools
down the base document alone holds it: the rows' cost, nothing reserved, nothing in flight."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

from tokenledger import periods, store
from tokenledger.budgets import reservations
from tokenledger.metering import fold, hot_users

from . import hot_tables
from .ledger_checks import rows_for
from .test_fold import MONTH, WHEN, call, docs

LATER = timedelta(seconds=61)


class OnShard:
    """Every write of this process counted on one shard (a hot user's)."""

    def __init__(self, shard: int):
        self.shard = shard

    def place(self, uid, month):
        return self.shard, True

    def marked(self, uid, month):
        pass


def fold_now(db, later: bool = True) -> fold.FoldReport:
    return fold.fold_shards(db, datetime.now(timezone.utc) + (LATER if later else timedelta()), cool_s=60,
                            months=[MONTH])


def whole(db, uid: str) -> tuple[int, int, int]:
    month = periods.read(db, uid, periods.MONTHS, MONTH)
    return int(month.get("cost_nanos", 0)), int(month.get("reserved_nanos", 0)), int(month.get("in_flight", 0))


def base_only(db, uid: str) -> tuple[int, int, int]:
    assert list(docs(db, uid)) == [MONTH], "shards left after the user cooled down"
    base = docs(db, uid)[MONTH]
    return int(base.get("cost_nanos", 0)), int(base.get("reserved_nanos", 0)), int(base.get("in_flight", 0))


def test_a_release_landing_on_a_shard_the_fold_deleted_is_counted_and_folded_later(db, monkeypatch):
    uid = f"atk-fold-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(hot_users, "PLACEMENT", OnShard(7))
    call(db, uid, 1_000)  # counted on shard 7 (with the month's mark)
    reservation = reservations.reserve(db, uid, MONTH, 40_000, WHEN, 60)
    assert reservation.shard == 7 and whole(db, uid) == (1_000, 40_000, 1)
    report = fold_now(db)
    assert f"{uid}/months/{MONTH}" in report.folded and base_only(db, uid) == (1_000, 40_000, 1)
    # The call fails: its reservation goes back to shard 7, which the fold deleted.
    assert reservations.release(db, reservation)
    assert f"{MONTH}~7" in docs(db, uid) and whole(db, uid) == (1_000, 0, 0)
    assert not reservations.release(db, reservation)  # once only
    assert fold_now(db).periods_folded >= 1
    assert base_only(db, uid) == (1_000, 0, 0)


def test_a_lease_shrink_landing_on_a_folded_shard_gives_back_exactly_what_it_shrinks(db, monkeypatch):
    uid = f"atk-fold-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(hot_users, "PLACEMENT", OnShard(3))
    lease, _, _, _ = reservations.reserve_and_read(db, uid, MONTH, 90_000, WHEN, 60, lease_admit_s=30)
    fold_now(db)
    assert base_only(db, uid) == (0, 90_000, 1)
    reservations.shrink(db, lease, 60_000)
    assert whole(db, uid) == (0, 30_000, 1)
    reservations.shrink(db, lease, 60_000)  # a retry of the same shrink after it landed: refused
    assert whole(db, uid) == (0, 30_000, 1)
    fold_now(db)
    assert base_only(db, uid) == (0, 30_000, 1)


def test_calls_with_reservations_racing_folds_lose_and_double_nothing(db, monkeypatch):
    """4 threads x 6 calls of a hot user, each reserving 10,000 on its shard, recording its cost
    (and releasing the reservation in the ledger's commit), while a thread folds without a
    cool-down as fast as it can. Read whole at the end, then folded: exactly the rows."""
    uid = f"atk-fold-{uuid.uuid4().hex[:8]}"
    hot_tables.install(monkeypatch, step=0.01)
    costs = [[1_000 * (t + 1) + i for i in range(6)] for t in range(4)]
    stop = threading.Event()
    errors: list = []

    def caller(t: int) -> None:
        try:
            for cost in costs[t]:
                reservation = reservations.reserve(db, uid, MONTH, 10_000, WHEN, 600)
                assert reservations.release(db, reservation)
                call(db, uid, cost)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def folder() -> None:
        while not stop.is_set():
            try:
                fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH])
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    background = threading.Thread(target=folder)
    background.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    background.join()
    assert errors == []
    expected = sum(sum(c) for c in costs)
    assert expected == 60_060  # 6,000 x (1 + 2 + 3 + 4) + 4 x (0 + 1 + ... + 5)
    assert sum(r["cost_nanos"] for r in rows_for(db, uid)) == expected
    assert whole(db, uid) == (expected, 0, 0)
    fold_now(db)
    assert base_only(db, uid) == (expected, 0, 0)
    assert docs(db, uid)[MONTH]["calls"] == 24


def test_the_first_fold_of_a_month_folds_the_month_before_and_a_late_release_into_it(db, monkeypatch):
    """A hot user's July shard, a reservation on it still open at midnight: the fold run early in
    August (default months: July and August) folds July; the reservation released after that lands
    on the deleted July shard and the next August run folds it too."""
    uid = f"atk-fold-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(hot_users, "PLACEMENT", OnShard(5))
    call(db, uid, 2_500)
    reservation = reservations.reserve(db, uid, MONTH, 30_000, WHEN, 60)
    august = datetime(2043, 8, 1, 0, 5, tzinfo=timezone.utc)  # the shards were written long before (real time)
    assert f"{uid}/months/{MONTH}" in fold.fold_shards(db, august, cool_s=60).folded
    assert base_only(db, uid) == (2_500, 30_000, 1)
    assert reservations.release(db, reservation)
    assert whole(db, uid) == (2_500, 0, 0)
    fold.fold_shards(db, august + timedelta(minutes=5), cool_s=0)
    assert base_only(db, uid) == (2_500, 0, 0)
