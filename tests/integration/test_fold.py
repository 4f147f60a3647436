"""The fold (metering/fold.py) on the real emulator: a cooled hot user's shards move into the base
documents with the money exact; it waits for the cool-down, loses to a concurrent writer, is
once-only under a retried commit, and no reader of the month — the budget gate's among them — ever
sees the month as more or less than it is while folds run beside calls."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tokenledger import periods, store
from tokenledger.budgets import reservations
from tokenledger.config import Settings
from tokenledger.metering import fold, hot_users, ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from . import hot_tables
from .lost_acks import lose_an_ack
from .ledger_checks import rows_for

WHEN = datetime(2043, 7, 9, 12, 0, tzinfo=timezone.utc)  # a month no other test writes
MONTH, DAY = "2043-07", "2043-07-09"
SETTINGS = Settings(record_deadline_s=5)


def call(db, uid: str, cost_nanos: int) -> None:
    response = {
        "id": f"gen-fold-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "cost": float(Decimal(cost_nanos) / Decimal(10**9))},
    }
    record = build_record(response, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", WHEN, latency_ms=3),
                          Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))))
    ledger.record_usage(db, record, SETTINGS)


def hot_user(db, monkeypatch, calls: int = 12) -> tuple[str, int]:
    """A user whose month and day are over a base and shards; (uid, the rows' cost)."""
    hot_tables.install(monkeypatch, step=0.06)
    uid = f"fold-{uuid.uuid4().hex[:8]}"
    for i in range(calls):
        call(db, uid, 1_000 + i)
    assert len(docs(db, uid)) > 1
    return uid, sum(r["cost_nanos"] for r in rows_for(db, uid))


def docs(db, uid: str, kind: str = store.MONTHS) -> dict:
    return {s.id: s.to_dict() for s in db.collection("user_usage").document(uid).collection(kind).stream()}


def base_cost(db, uid: str) -> int:
    return int(store.user_month_doc(db, uid, MONTH).get().to_dict()["cost_nanos"])


def groups_of(db, uid: str) -> dict:
    report = fold.FoldReport()
    return {key: snaps for key, snaps in fold._shards_of(db, store.MONTHS, MONTH, report).items() if key[0] == uid}


def test_the_fold_moves_every_shard_into_the_base_once_the_user_cooled_down(db, monkeypatch):
    uid, cost = hot_user(db, monkeypatch)
    month_shards, day_shards = len(docs(db, uid)) - 1, len(docs(db, uid, store.DAYS)) - 1
    assert base_cost(db, uid) < cost
    # Written just now: not cool for a minute yet.
    early = fold.fold_shards(db, datetime.now(timezone.utc), cool_s=60, months=[MONTH])
    assert f"{uid}/months/{MONTH}" not in early.folded and len(docs(db, uid)) == month_shards + 1
    later = fold.fold_shards(db, datetime.now(timezone.utc) + timedelta(seconds=61), cool_s=60, months=[MONTH])
    assert {f"{uid}/months/{MONTH}", f"{uid}/days/{DAY}"} <= set(later.folded)
    assert list(docs(db, uid)) == [MONTH] and list(docs(db, uid, store.DAYS)) == [DAY]
    base = docs(db, uid)[MONTH]
    assert base["cost_nanos"] == cost and base["calls"] == 12 and base["sharded"] is True
    assert base["by_model"]["openai/gpt-4o-mini"]["cost_nanos"] == cost
    assert docs(db, uid, store.DAYS)[DAY]["cost_nanos"] == cost
    # The cost in writes: one base write and one delete per shard, per period.
    assert month_shards + day_shards + 2 <= later.writes
    # Again: nothing left to fold, nothing changes.
    again = fold.fold_shards(db, datetime.now(timezone.utc) + timedelta(seconds=61), cool_s=60, months=[MONTH])
    assert f"{uid}/months/{MONTH}" not in again.folded and base_cost(db, uid) == cost


def test_a_call_landing_on_a_shard_between_the_folds_read_and_commit_makes_it_fold_nothing(db, monkeypatch):
    uid, cost = hot_user(db, monkeypatch)
    stale = groups_of(db, uid)[(uid, MONTH)]
    shard = stale[0].get("shard")

    class OnThatShard:  # the next call is counted on a shard the fold has read
        def place(self, uid, month):
            return shard, False

    monkeypatch.setattr(hot_users, "PLACEMENT", OnThatShard())
    call(db, uid, 777)
    report = fold.FoldReport()
    fold._fold_period(db, uid, store.MONTHS, MONTH, MONTH, stale, report)
    assert report.periods_raced == 1 and report.periods_folded == 0
    assert periods.read(db, uid, periods.MONTHS, MONTH)["cost_nanos"] == cost + 777
    assert base_cost(db, uid) < cost  # nothing moved
    fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH])  # the next run folds it
    assert list(docs(db, uid)) == [MONTH] and base_cost(db, uid) == cost + 777


def test_a_fold_whose_ack_is_lost_is_retried_without_moving_the_money_twice(db, monkeypatch):
    uid, cost = hot_user(db, monkeypatch)
    lost = lose_an_ack(db, monkeypatch)
    group = groups_of(db, uid)[(uid, MONTH)]
    lost["armed"] = True
    report = fold.FoldReport()
    fold._fold_period(db, uid, store.MONTHS, MONTH, MONTH, group, report)
    assert lost["lost"] == 1  # landed, then its retry found the shards gone: reported, not applied again
    assert base_cost(db, uid) == cost and list(docs(db, uid)) == [MONTH]
    # A second fold over the same snapshots (two runs at once): nothing either.
    fold._fold_period(db, uid, store.MONTHS, MONTH, MONTH, group, report)
    assert base_cost(db, uid) == cost and periods.read(db, uid, periods.MONTHS, MONTH)["cost_nanos"] == cost


def test_the_gate_reads_the_whole_month_across_a_fold_after_its_reservation(db, monkeypatch):
    """The gate's reservation lands on the base (a cooled user), reads the base back in its
    commit; a fold then moves the shards into the base; the gate's read of the rest must give
    the month as it is — not the base before the fold plus no shards (too little)."""
    uid, cost = hot_user(db, monkeypatch)
    hot_tables.install(monkeypatch, step=60.0)  # a minute between writes: the base again
    reservation, known, sharded, _ = reservations.reserve_and_read(db, uid, MONTH, 5_000, WHEN, 60)
    assert reservation.shard == 0 and sharded and known.cost_nanos < cost
    fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH])
    whole = reservations.with_shards(db, uid, MONTH, known, reservation.shard)
    assert (whole.cost_nanos, whole.reserved_nanos, whole.in_flight) == (cost, 5_000, 1)
    assert reservations.release(db, reservation)
    # The release landed on the base; released once, the month holds nothing.
    assert reservations.read_month(db, uid, MONTH).reserved_nanos == 0


def test_a_month_read_across_a_fold_between_its_base_and_its_shards_is_exact(db, monkeypatch):
    """read_month reads the base (beside other documents), sees `sharded`, then the rest: a fold
    landing in between must not make the month read less."""
    uid, cost = hot_user(db, monkeypatch)
    real_get_all = db.get_all
    folded = []

    def get_all_then_fold(*args, **kwargs):
        found = list(real_get_all(*args, **kwargs))
        if not folded:
            folded.append(fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH]))
        return iter(found)

    monkeypatch.setattr(db, "get_all", get_all_then_fold)
    assert reservations.read_month(db, uid, MONTH).cost_nanos == cost
    assert folded and f"{uid}/months/{MONTH}" in folded[0].folded


def test_readers_never_see_a_month_other_than_a_prefix_of_its_calls_while_folds_run(db, monkeypatch):
    """One writer records calls costing 1, 2, 4, ... nano-dollars (every prefix sum is distinct),
    folds run in a loop beside it, readers read the month: every value read is the cost of the
    first k calls for some k — a read that missed money in motion, or counted it twice, is not."""
    hot_tables.install(monkeypatch, step=0.06)
    uid = f"fold-race-{uuid.uuid4().hex[:8]}"
    costs = [2 ** i for i in range(22)]
    prefixes = {sum(costs[:k]) for k in range(len(costs) + 1)}
    done = threading.Event()
    seen: list[int] = []
    folds = []

    def folder():
        while not done.is_set():
            folds.append(fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH]))

    def reader():
        while not done.is_set():
            seen.append(periods.read(db, uid, periods.MONTHS, MONTH).get("cost_nanos", 0))
            seen.append(reservations.read_month(db, uid, MONTH).cost_nanos)

    reader_thread = threading.Thread(target=reader)
    threads = [threading.Thread(target=folder), reader_thread]
    for thread in threads:
        thread.start()
    try:
        for cost in costs:
            call(db, uid, cost)
            read_before = len(seen)  # the reader reads at least once more between calls, however slow
            while len(seen) < read_before + 2 and reader_thread.is_alive():
                time.sleep(0.005)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert sum(f.shards_folded for f in folds) > 0  # folds did move shards while calls came in
    assert len(seen) >= 2 * len(costs) and set(seen) <= prefixes
    fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH])
    assert list(docs(db, uid)) == [MONTH] and base_cost(db, uid) == sum(costs)


def test_the_scheduled_fold_shards_function_folds_a_user_cool_for_longer_than_the_cool_down(db, monkeypatch):
    """The deployed function (functions/main.py) run by the Functions emulator as Cloud Scheduler
    would, with its configured cool-down: at the time of the call nothing is folded; scheduled
    past the cool-down, this month's shards are in the base (the user's month and day)."""
    from scripts.trigger_schedule import trigger

    hot_tables.install(monkeypatch, step=0.06)
    uid = f"fold-sched-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    month, day = now.strftime("%Y-%m"), now.strftime("%Y-%m-%d")
    for i in range(10):
        response = {"id": f"gen-fold-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
                    "choices": [{"finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cost": 0.00002}}
        ledger.record_usage(db, build_record(response, CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions",
                                                                 now, latency_ms=3),
                                             Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003")))),
                            SETTINGS)
    months = db.collection("user_usage").document(uid).collection("months")
    assert len(list(months.stream())) > 1
    status, body = trigger("fold_shards", timeout=120)
    assert status == 200, body
    assert len(list(months.stream())) > 1  # written within the cool-down: left alone
    later = (now + timedelta(seconds=Settings().fold_cool_s + 60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body = trigger("fold_shards", schedule_time=later, timeout=120)
    assert status == 200, body
    assert [s.id for s in months.stream()] == [month]
    assert months.document(month).get().to_dict()["cost_nanos"] == 10 * 20_000
    days = db.collection("user_usage").document(uid).collection("days")
    assert [s.id for s in days.stream()] == [day] and days.document(day).get().to_dict()["calls"] == 10


def test_the_operator_tool_folds_by_hand(db, monkeypatch):
    import subprocess
    import sys

    uid, cost = hot_user(db, monkeypatch)
    out = subprocess.run([sys.executable, "-m", "tokenledger.tools.fold_shards", "--month", MONTH, "--cool-s", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "periods folded" in out.stdout
    assert list(docs(db, uid)) == [MONTH] and base_cost(db, uid) == cost
