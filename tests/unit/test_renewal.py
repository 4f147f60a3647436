"""Leases renewed ahead, the pure part (budgets/renewal.py `due`, `starts_at`; leases.py `_ahead`,
`_spent` and the book's handling of a lease taken for a minute that has not begun). The
Firestore part: tests/integration/test_cold_renewal.py."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from tokenledger.budgets import leases, renewal, rules

W = 1_000_000  # a call's worst case, nano-dollars
BUDGET = rules.Budget(monthly_budget_nanos=100 * W, alert_thresholds=(), enforce=True, source="user")
PER_MINUTE = replace(BUDGET, requests_per_minute=60)
T0 = datetime(2030, 5, 6, 7, 8, 20, tzinfo=timezone.utc)  # 40 s left in the minute
MONTH, MINUTE, NEXT_MINUTE = "2030-05", "2030-05-06T07:08", "2030-05-06T07:09"


def lease(**fields) -> leases.Lease:
    values = dict(lease_id="l1", uid="u1", month=MONTH, shard=0, budget=BUDGET, nanos=8 * W,
                  admit_until=T0.timestamp() + 60, minute=None, requests=0, cost_nanos=0, reserved_nanos=8 * W,
                  busy=False, calls=2)
    return leases.Lease(**{**values, **fields})


def at(second: float, minute: int = 8) -> datetime:
    return T0.replace(minute=minute, second=int(second), microsecond=round((second % 1) * 1_000_000))


# ---- due: will the next call need a new lease soon? ----------------------------------------------

def test_a_lease_whose_money_no_longer_covers_the_next_call_is_due():
    assert renewal.due(lease(nanos=W - 1, calls=1), W, T0, 0, 60)
    assert not renewal.due(lease(nanos=W, calls=1), W, T0, 0, 60)  # exactly one more call fits
    # the wallet hold counts with the allowance's
    assert not renewal.due(lease(nanos=W - 1, credits_nanos=1, calls=1), W, T0, 0, 60)
    # an unenforced lease holds no money: never due for money
    assert not renewal.due(lease(nanos=0, budget=replace(BUDGET, enforce=False), calls=1), W, T0, 0, 60)


def test_a_lease_whose_minute_grant_is_used_up_is_due():
    assert renewal.due(lease(budget=PER_MINUTE, minute=MINUTE, requests=0, calls=1), W, T0, 0, 60)
    assert not renewal.due(lease(budget=PER_MINUTE, minute=MINUTE, requests=1, calls=1), W, T0, 0, 60)


def test_an_uncertain_lease_is_never_renewed_from():
    assert not renewal.due(lease(nanos=0, uncertain=True), W, T0, 0, 60)


def test_time_based_renewal_only_for_a_lease_that_served_two_calls():
    ending = T0.timestamp() + renewal.AHEAD_S  # its admission window ends within AHEAD_S
    assert not renewal.due(lease(admit_until=ending, calls=1), W, T0, 0, 60)
    assert renewal.due(lease(admit_until=ending, calls=2), W, T0, 0, 60)
    assert not renewal.due(lease(admit_until=ending + 0.5, calls=2), W, T0, 0, 60)


def test_a_minute_lease_is_due_when_its_minute_ends_within_ahead_s():
    minute_lease = lease(budget=PER_MINUTE, minute=MINUTE, requests=5)
    assert renewal.due(minute_lease, W, at(50), 0, 60)  # 10 s left
    assert not renewal.due(minute_lease, W, at(49.5), 0, 60)  # 10.5 s: rounds up to 11
    assert not renewal.due(lease(), W, at(55), 0, 60)  # no per-minute limit: the minute does not matter


def test_a_lease_is_due_when_the_cached_budget_expires_within_ahead_s():
    assert renewal.due(lease(), W, T0, 50, 60)
    assert not renewal.due(lease(), W, T0, 49.9, 60)
    assert not renewal.due(lease(), W, T0, 9, 10)  # a cache time of AHEAD_S or less: not for this


# ---- starts_at: now, or the next minute ----------------------------------------------------------

def test_the_new_lease_starts_now_unless_the_minute_of_a_minute_lease_ends_within_ahead_s():
    assert renewal.starts_at(lease(), at(55)) == at(55)
    minute_lease = lease(budget=PER_MINUTE, minute=MINUTE, requests=3)
    assert renewal.starts_at(minute_lease, at(49), W) == at(49)
    assert renewal.starts_at(minute_lease, at(50.25), W) == datetime(2030, 5, 6, 7, 9, tzinfo=timezone.utc)


def test_a_lease_that_runs_out_in_the_last_seconds_of_its_minute_is_renewed_for_now():
    """The user's next call, still in this minute, needs it (the next minute's is taken by a
    later call's settle)."""
    assert renewal.starts_at(lease(budget=PER_MINUTE, minute=MINUTE, requests=0), at(55), W) == at(55)
    assert renewal.starts_at(lease(budget=PER_MINUTE, minute=MINUTE, requests=3, nanos=W - 1), at(55), W) == at(55)


def test_a_lease_renewed_in_the_last_seconds_of_a_month_starts_in_the_next_month():
    end = datetime(2030, 5, 31, 23, 59, 55, tzinfo=timezone.utc)
    minute_lease = lease(budget=PER_MINUTE, minute="2030-05-31T23:59", requests=3)
    assert renewal.starts_at(minute_lease, end, W) == datetime(2030, 6, 1, 0, 0, tzinfo=timezone.utc)


# ---- a lease taken for the next minute (or month): not begun, not spent ---------------------------

def test_a_lease_for_a_minute_or_month_to_come_is_ahead():
    assert leases._ahead(lease(minute=NEXT_MINUTE), MONTH, MINUTE)
    assert not leases._ahead(lease(minute=MINUTE), MONTH, MINUTE)
    assert not leases._ahead(lease(minute=None), MONTH, MINUTE)
    assert leases._ahead(lease(month="2030-06"), MONTH, None)
    assert not leases._ahead(lease(minute=NEXT_MINUTE), MONTH, None)  # the budget has no per-minute limit now


def test_what_makes_a_lease_spent():
    now_s = T0.timestamp()
    assert not leases._spent(lease(), MONTH, BUDGET, now_s, None)
    assert leases._spent(lease(), "2030-06", BUDGET, now_s, None)  # a month that has passed
    assert leases._spent(lease(), MONTH, replace(BUDGET, monthly_budget_nanos=200 * W), now_s, None)  # another budget
    assert leases._spent(lease(), MONTH, BUDGET, T0.timestamp() + 60, None)  # past its admission window
    per_minute = dict(budget=PER_MINUTE, requests=3)
    assert not leases._spent(lease(minute=MINUTE, **per_minute), MONTH, PER_MINUTE, now_s, MINUTE)
    assert leases._spent(lease(minute=MINUTE, **per_minute), MONTH, PER_MINUTE, now_s, NEXT_MINUTE)
    assert leases._spent(lease(minute=MINUTE, budget=PER_MINUTE, requests=0), MONTH, PER_MINUTE, now_s, MINUTE)
    assert leases._spent(lease(minute=MINUTE, **per_minute), MONTH, PER_MINUTE, now_s, None)
    # taken ahead for the next minute: not spent in this one
    assert not leases._spent(lease(minute=NEXT_MINUTE, **per_minute), MONTH, PER_MINUTE, now_s, MINUTE)


def test_the_book_neither_admits_nor_hands_back_a_lease_for_the_next_minute_before_it_begins():
    ahead = lease(budget=PER_MINUTE, minute=NEXT_MINUTE, requests=3, admit_until=T0.timestamp() + 100)
    book = leases.LeaseBook()
    book.add(ahead)
    now_s = T0.timestamp()
    assert book.take("u1", MONTH, PER_MINUTE, W, now_s, MINUTE) is None
    assert book.spare("u1", MONTH, MINUTE) is None
    assert book.stale("u1", MONTH, PER_MINUTE, now_s, MINUTE) is None
    assert book.has_ahead("u1", MONTH, MINUTE) and not book.has_ahead("u1", MONTH, NEXT_MINUTE)
    taken = book.take("u1", MONTH, PER_MINUTE, W, now_s + 40, NEXT_MINUTE)  # the minute has begun
    assert taken is ahead and (ahead.requests, ahead.calls, ahead.busy) == (2, 3, True)


def test_a_renewal_is_begun_once_and_waited_for():
    book = leases.LeaseBook()
    assert not book.await_renewal("u1", 0.01)  # none under way: no wait
    assert book.begin_renewal("u1") and not book.begin_renewal("u1")
    assert not book.await_renewal("u1", 0.01)  # under way, not done in time
    book.end_renewal("u1")
    assert book.await_renewal("u1", 0.01) is False  # over: nothing to wait for
    assert book.begin_renewal("u1")


def test_a_lease_run_out_is_retired_from_the_book_only_while_idle():
    old = lease(nanos=W - 1)
    assert renewal.runs_out(old, W) and not renewal.runs_out(lease(), W)
    book = leases.LeaseBook()
    book.add(old)
    old.busy = True
    assert not book.retire(old) and book.holds(old)  # a call took it meanwhile: it closes with that call
    old.busy = False
    assert book.retire(old) and not book.holds(old)
    assert not book.retire(old)  # gone: not given back twice
