"""Leases renewed ahead (budgets/renewal.py) on the real emulator: a user who keeps calling is
admitted with no commit before OpenRouter after their lease runs out (the next one was taken in
the background when the last call settled), and renewals racing a burst of the user's calls
keep the ceiling and settle to nothing held. Instances are admission.Gate objects; calls are
settled as meter_call settles them (cold_helpers.settle: renewal.after_settle included).
Operations are counted as Firestore bills them (scripts/bench/opcount.py)."""
from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tokenledger.budgets import admission
from tokenledger.config import Settings

from .cold_helpers import DOLLAR, W, eventually, held, reservation_docs, settle, write_budget
from .ledger_checks import expire_leases, held_beyond_leases, leases_of, rows_for

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2048, 4, 10, 9, 30, 5, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2048-04"
# Leases of 2 calls (a grant of 2 requests of the minute's 60): they run out every other call.
SETTINGS = Settings(record_deadline_s=5, lease_calls=2)
COST = 4_000_000
NO_OPS = {"reads": 0, "writes": 0, "deletes": 0, "commits": 0}


def user() -> str:
    return f"renew-{uuid.uuid4().hex[:10]}"


def calls_in_a_row(db, ops, uid: str, start: datetime, count: int, apart_s: float,
                   settings: Settings = SETTINGS) -> tuple[admission.Gate, list[dict]]:
    """`count` calls of one user on one instance, `apart_s` seconds apart (request clock); the
    operations each admission made before the call would go upstream."""
    gate = admission.Gate(settings)
    before_call = []
    for k in range(count):
        when = start + timedelta(seconds=k * apart_s)
        gate.leases.await_renewal(uid, 5)  # the renewal's own commit is not the call's (it ran between calls)
        ops.reset()
        granted = admission.admit(db, settings, gate, uid, False, W, when)
        before_call.append(ops.snapshot())
        settle(db, gate, settings, granted, COST, when)
    gate.leases.await_renewal(uid, 5)
    return gate, before_call


def test_a_user_who_keeps_calling_is_admitted_with_no_commit_after_their_lease_runs_out(db, ops):
    uid = user()
    gate, before_call = calls_in_a_row(db, ops, uid, NOW, 10, 0.3)
    assert before_call[0]["commits"] == 1  # the first call on the instance: cold, one commit
    assert before_call[1:] == [NO_OPS] * 9  # every lease after the first was taken ahead
    rows = rows_for(db, uid)
    assert len(rows) == 10 and sum(r["cost_nanos"] for r in rows) == 10 * COST
    cost, reserved, in_flight = held(db, uid, MONTH)
    leased = leases_of(db, uid)
    assert (cost, reserved, in_flight) == (10 * COST, sum(int(x["amount_nanos"]) for x in leased), len(leased))
    expire_leases(db, uid)
    assert held(db, uid, MONTH) == (10 * COST, 0, 0)


def test_renewed_ahead_leases_do_not_pile_up_on_the_instance(db, ops):
    """Each renewal leaves one lease running out and one taken ahead: the one run out goes back,
    not the new one, so the instance keeps at most two of the user's leases (and their slots)."""
    uid = user()
    calls_in_a_row(db, ops, uid, NOW, 9, 0.3)
    assert eventually(lambda: len(leases_of(db, uid)), 1) == 1


def test_a_user_calling_across_a_minute_boundary_is_admitted_with_no_commit(db, ops):
    """Calls every 0.5 s from 45 s into a minute to 9 s into the next: the leases of the minute's
    last 10 s are taken for the next minute (their grant counted there).
    (Failed on ae21086: a lease whose grant ran out in the minute's last AHEAD_S was renewed for
    the NEXT minute, so the calls of those seconds had no lease and committed on their own path:
    with leases of 2 calls, every other call from :51 to :59.)"""
    uid = user()
    start = NOW.replace(second=45)
    gate, before_call = calls_in_a_row(db, ops, uid, start, 48, 0.5)
    with_commits = [k for k, counted in enumerate(before_call[1:], start=1) if counted["commits"]]
    assert with_commits == []
    assert held(db, uid, MONTH)[0] == 48 * COST
    # nothing piled up: the lease of the minute that passed and the one taken for the next at most
    assert eventually(lambda: held_beyond_leases(db, uid, MONTH), (0, 0)) == (0, 0)
    assert len(leases_of(db, uid)) <= 2
    expire_leases(db, uid)
    assert held(db, uid, MONTH) == (48 * COST, 0, 0)


def test_a_user_calling_across_a_month_boundary_has_each_call_in_its_month(db, ops):
    uid = user()
    start = datetime(2048, 4, 30, 23, 59, 56, tzinfo=timezone.utc)
    _, before_call = calls_in_a_row(db, ops, uid, start, 12, 0.5)  # 8 calls in April (56 s to 59.5 s), 4 in May
    assert held(db, uid, "2048-04")[0] == 8 * COST
    assert held(db, uid, "2048-05")[0] == 4 * COST
    months = [r["month"] for r in sorted(rows_for(db, uid), key=lambda r: r["occurred_at"])]
    assert months == ["2048-04"] * 8 + ["2048-05"] * 4
    expire_leases(db, uid)
    assert held(db, uid, "2048-04") == (8 * COST, 0, 0) and held(db, uid, "2048-05") == (4 * COST, 0, 0)


def test_renewals_racing_a_burst_keep_the_ceiling_and_settle_to_nothing_held(db):
    """A budget a few leases deep (leases of 2 x $0.01, kept while 4 times that is left), 6
    threads of one user calling on one instance until refused: renewals run constantly in the
    background beside the calls. The month's cost never passes the budget, every admitted call
    is in the ledger once, and nothing is held once the leases are given back."""
    uid = user()
    budget = 30 * W + W // 2
    write_budget(db, uid, monthly_budget_nanos=budget, enforce=True, requests_per_minute=None)
    cost = 7_000_000
    gate = admission.Gate(SETTINGS)
    admitted, seen_over, lock = [], [], threading.Lock()
    start = NOW

    def caller(n: int) -> None:
        refused = 0
        k = 0
        while refused < 20:
            k += 1
            when = start + timedelta(milliseconds=10 * k)
            try:
                granted = admission.admit(db, SETTINGS, gate, uid, False, W, when)
            except (admission.BudgetExceeded, admission.RateLimited):
                refused += 1
                continue
            refused = 0
            outcome = settle(db, gate, SETTINGS, granted, cost, when)
            with lock:
                admitted.append(n)
                month = held(db, uid, MONTH)
                if month[0] > budget:  # (cost + reserved may pass it a moment: a refused ask before it goes back)
                    seen_over.append(month)
            assert outcome.status == "recorded"

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    gate.leases.await_renewal(uid, 5)
    rows = rows_for(db, uid)
    assert seen_over == []
    assert len(rows) == len(admitted) and len({r["_id"] for r in rows}) == len(rows)
    assert len(admitted) * cost <= budget and held(db, uid, MONTH)[0] == len(admitted) * cost
    # the ceiling reached: what is left would not hold one more call
    assert budget - len(admitted) * cost < W

    def settled():
        cost_now, reserved, in_flight = held(db, uid, MONTH)
        leased = leases_of(db, uid)
        return reserved - sum(int(x["amount_nanos"]) for x in leased), in_flight - len(leased)

    assert eventually(settled, (0, 0)) == (0, 0)
    assert [r for r in reservation_docs(db, uid) if not r.get("lease")] == []
    expire_leases(db, uid)
    assert held(db, uid, MONTH) == (len(admitted) * cost, 0, 0)


def test_a_call_that_finds_the_renewal_under_way_waits_for_it_and_takes_its_lease(db, monkeypatch):
    """The renewal's commit is slowed down (300 ms); the user's next call comes at once, finds no
    lease that admits it and the renewal under way: it waits and is admitted from the renewed
    lease — not a commit and a lease of its own beside it (two slots held for one user)."""
    import time as clock

    from tokenledger.budgets import renewal

    uid = user()
    slow = renewal.admission.budget_for_renewal

    def slowed(*args, **kwargs):
        clock.sleep(0.3)
        return slow(*args, **kwargs)

    monkeypatch.setattr(renewal.admission, "budget_for_renewal", slowed)
    gate = admission.Gate(SETTINGS)
    for k in range(2):  # the lease's grant of 2 used up: renewed when the second call settles
        settle(db, gate, SETTINGS, admission.admit(db, SETTINGS, gate, uid, False, W, NOW), COST, NOW)
    third = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    assert third.lease is not None and third.lease.calls == 3  # the renewed lease (it carries the 2 calls)
    assert held(db, uid, MONTH)[1:] == (2 * W, 1)  # one lease, one slot: the one run out went back
    settle(db, gate, SETTINGS, third, COST, NOW)
    expire_leases(db, uid)
    assert held(db, uid, MONTH) == (3 * COST, 0, 0)


def test_calls_one_by_one_to_the_ceiling_with_renewals_ahead_admit_exactly_what_fits(db):
    """$0.10 enforced, no per-minute limit, worst case $0.01, cost $0.004: a lease of 2 worst
    cases serves 3 calls and is renewed ahead when it runs out, near the ceiling a renewal keeps
    no lease (the call's own reservation, given back). One by one, call k is admitted while
    (k - 1) x cost + W <= budget: (100 - 10) // 4 + 1 = 23 calls."""
    uid = user()
    budget = 100_000_000
    write_budget(db, uid, monthly_budget_nanos=budget, enforce=True, requests_per_minute=None)
    gate = admission.Gate(SETTINGS)
    admitted = 0
    while True:
        gate.leases.await_renewal(uid, 5)
        try:
            granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW + timedelta(seconds=admitted))
        except admission.BudgetExceeded as refused:
            assert (refused.spent_nanos, refused.budget_nanos) == (23 * COST, budget)
            break
        settle(db, gate, SETTINGS, granted, COST, NOW + timedelta(seconds=admitted))
        admitted += 1
    assert admitted == (budget - W) // COST + 1 == 23
    assert len(rows_for(db, uid)) == 23
    assert eventually(lambda: held(db, uid, MONTH), (23 * COST, 0, 0)) == (23 * COST, 0, 0)
    assert reservation_docs(db, uid) == []
