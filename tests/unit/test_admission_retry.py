"""The admission retry loop (budgets.admission.reserve_within_budget), its decisions alone.

The month document is an in-memory ledger here and the clock is the test's: the loop's
Firestore I/O (reservations.reserve / read_month / release) is replaced by functions over it.
What Firestore itself guarantees (blind increments under 50 concurrent calls) is proven on the
emulator by tests/integration/test_budgets_concurrency.py.

Written against the loop as it is before the HOTPATH rework of admission; adapt when it lands.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from google.api_core import exceptions as gexc

from tokenledger.budgets import admission, reservations, rules
from tokenledger.config import Settings

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=timezone.utc)
BUDGET = rules.Budget(monthly_budget_nanos=1_000_000, alert_thresholds=(), enforce=True, source="user")


class Month:
    """One user's month: spent, reserved; `others` is what other calls hold at each read."""

    def __init__(self, cost: int, others: list[int]):
        self.cost = cost
        self.others = list(others)  # one value per read; the last one stays
        self.mine = 0
        self.reserved_calls = 0
        self.released_calls = 0
        self.costs: list[int] = []  # the spent total at each read, when it changes
        self.reads = 0

    def reserve(self, db, uid, month, amount, now, ttl_s):
        self.reserved_calls += 1
        self.mine += amount
        return reservations.Reservation(f"r{self.reserved_calls}", uid, month, amount)

    def read_month(self, db, uid, month, **options):
        others = self.others.pop(0) if len(self.others) > 1 else self.others[0]
        if self.costs:
            self.cost = self.costs.pop(0) if len(self.costs) > 1 else self.costs[0]
        self.reads += 1
        return reservations.MonthTotals(self.cost, self.mine + others, {})

    def release(self, db, reservation):
        self.released_calls += 1
        self.mine -= reservation.amount_nanos
        return True


class Clock:
    def __init__(self):
        self.now = 100.0
        self.pauses: list[float] = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += seconds


@pytest.fixture()
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(admission.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(admission.time, "sleep", clock.sleep)
    monkeypatch.setattr(admission.random, "random", lambda: 0.5)  # pause = exactly the base pause
    return clock


def use(monkeypatch, month: Month) -> Month:
    monkeypatch.setattr(admission.reservations, "reserve", month.reserve)
    monkeypatch.setattr(admission.reservations, "read_month", month.read_month)
    monkeypatch.setattr(admission.reservations, "release", month.release)
    return month


def admit(worst: int):
    return admission.reserve_within_budget(None, Settings(), "u1", "2026-11", BUDGET, worst, NOW)


def test_a_call_that_fits_keeps_its_reservation_at_once(monkeypatch, clock):
    month = use(monkeypatch, Month(cost=400_000, others=[0]))
    reservation = admit(600_000)  # 400,000 + 600,000 = the budget exactly: admitted
    assert reservation.amount_nanos == 600_000
    assert (month.reserved_calls, month.released_calls, month.mine, clock.pauses) == (1, 0, 600_000, [])


def test_a_call_that_cannot_fit_even_alone_is_refused_without_waiting(monkeypatch, clock):
    month = use(monkeypatch, Month(cost=400_000, others=[250_000]))
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(600_001)
    assert (refused.value.spent_nanos, refused.value.reserved_nanos, refused.value.budget_nanos,
            refused.value.estimate_nanos) == (400_000, 250_000, 1_000_000, 600_001)
    assert (month.reserved_calls, month.released_calls, month.mine, clock.pauses) == (1, 1, 0, [])


def test_a_call_blocked_only_by_others_waits_without_a_reservation_until_they_settle(monkeypatch, clock):
    # Others hold 300,000 at the read-back and at the first look; at the second look they have
    # settled: the call reserves again (its second reservation) and fits.
    month = use(monkeypatch, Month(cost=400_000, others=[300_000, 300_000, 0]))
    reservation = admit(600_000)
    assert reservation.reservation_id == "r2"
    assert (month.reserved_calls, month.released_calls, month.mine) == (2, 1, 600_000)
    assert clock.pauses == pytest.approx([0.05, 0.075])  # 0.05, then x1.5 (random half-width at its middle)
    assert month.reads == 4  # two read-backs of its reservations, two looks holding none


def test_a_waiter_that_finds_the_budget_spent_meanwhile_gives_up(monkeypatch, clock):
    month = use(monkeypatch, Month(cost=400_000, others=[300_000]))
    month.costs = [400_000, 700_000]  # the calls it waited for settled, spending 300,000
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(600_000)
    assert (refused.value.spent_nanos, refused.value.reserved_nanos) == (700_000, 300_000)
    assert (month.reserved_calls, month.released_calls, clock.pauses) == (1, 1, pytest.approx([0.05]))


def test_a_call_blocked_by_others_that_never_settle_gives_up_after_the_patience(monkeypatch, clock):
    month = use(monkeypatch, Month(cost=400_000, others=[300_000]))
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(600_000)
    assert refused.value.reserved_nanos == 300_000 and refused.value.spent_nanos == 400_000
    # Pauses grow by 1.5 up to 0.3 s and stop before the next would pass the 2 s patience:
    # 0.05 + 0.075 + 0.1125 + 0.16875 + 0.253125 + 4 x 0.3 = 1.859375 s; one more 0.3 passes 2 s.
    expected = [0.05, 0.075, 0.1125, 0.16875, 0.253125, 0.3, 0.3, 0.3, 0.3]
    assert clock.pauses == pytest.approx(expected)
    assert (month.reserved_calls, month.released_calls, month.mine) == (1, 1, 0)


def test_firestore_down_at_the_reservation_is_budget_unavailable(monkeypatch, clock):
    month = use(monkeypatch, Month(cost=0, others=[0]))

    def down(*args, **kwargs):
        raise gexc.ServiceUnavailable("emulator gone")

    monkeypatch.setattr(admission.reservations, "reserve", down)
    with pytest.raises(admission.BudgetUnavailable):
        admit(1)
    assert month.released_calls == 0


def test_firestore_down_at_the_read_back_gives_the_reservation_back(monkeypatch, clock):
    month = use(monkeypatch, Month(cost=0, others=[0]))

    def down(*args, **kwargs):
        raise gexc.DeadlineExceeded("slow")

    monkeypatch.setattr(admission.reservations, "read_month", down)
    with pytest.raises(admission.BudgetUnavailable):
        admit(1)
    assert (month.reserved_calls, month.released_calls, month.mine) == (1, 1, 0)
