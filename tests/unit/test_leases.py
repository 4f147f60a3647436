"""Budget leases, the pure part: how much a lease asks for and keeps, and which lease of an
instance's book admits a call (budgets/leases.py). The Firestore part: tests/integration/test_leases.py."""
from __future__ import annotations

from dataclasses import replace

from tokenledger.budgets import leases, rules

W = 1_000_000  # a call's worst case, nano-dollars
BUDGET = rules.Budget(monthly_budget_nanos=100 * W, alert_thresholds=(), enforce=True, source="user")
ALERTS_ONLY = replace(BUDGET, enforce=False)
PER_MINUTE = replace(BUDGET, requests_per_minute=60)
MONTH, MINUTE = "2030-05", "2030-05-06T07:08"


def lease(**fields) -> leases.Lease:
    values = dict(lease_id="l1", uid="u1", month=MONTH, shard=0, budget=BUDGET, nanos=8 * W, admit_until=1_060.0,
                  minute=None, requests=0, cost_nanos=0, reserved_nanos=8 * W, busy=False)
    return leases.Lease(**{**values, **fields})


def book_with(*held: leases.Lease) -> leases.LeaseBook:
    book = leases.LeaseBook()
    for one in held:
        book.add(one)
    return book


# ---- what a lease asks for and keeps ------------------------------------------------------------

def test_a_lease_asks_for_lease_calls_worst_cases_while_far_from_the_ceiling():
    assert leases.ask_nanos(W, BUDGET, 8, seen_spent_nanos=None) == 8 * W
    assert leases.ask_nanos(W, BUDGET, 8, seen_spent_nanos=68 * W) == 8 * W  # room 32 W = 4 x 8 W


def test_near_the_ceiling_or_without_leases_a_call_reserves_its_own_worst_case():
    assert leases.ask_nanos(W, BUDGET, 8, seen_spent_nanos=68 * W + 1) is None  # room just under 4 x 8 W
    assert leases.ask_nanos(W, BUDGET, 0, seen_spent_nanos=None) is None  # TOKENLEDGER_LEASE_CALLS=0


def test_a_budget_that_is_not_enforced_leases_no_money():
    assert leases.ask_nanos(W, ALERTS_ONLY, 8, None) == 0
    assert leases.ask_nanos(0, BUDGET, 8, None) == 0  # a free call


def test_a_lease_takes_a_quarter_of_the_per_minute_limit_at_most():
    assert leases.ask_requests(BUDGET, 8) == 1  # no limit: the call's own request
    assert leases.ask_requests(PER_MINUTE, 8) == 8
    assert leases.ask_requests(replace(BUDGET, requests_per_minute=12), 8) == 3
    assert leases.ask_requests(replace(BUDGET, requests_per_minute=2), 8) == 1


def test_what_a_lease_keeps_from_its_read_back():
    # cost 20 W, others hold 10 W, the ask (8 W) is in the read-back: room 70 W >= 32 W.
    assert leases.kept_nanos(20 * W, 18 * W, 8 * W, W, 100 * W) == 8 * W
    # room 31 W < 4 x 8 W: it becomes the call's own reservation.
    assert leases.kept_nanos(69 * W, 8 * W, 8 * W, W, 100 * W) == W
    # room exactly one worst case: the call fits; one nano less: refused.
    assert leases.kept_nanos(99 * W, 8 * W, 8 * W, W, 100 * W) == W
    assert leases.kept_nanos(99 * W + 1, 8 * W, 8 * W, W, 100 * W) is None


def test_requests_kept_of_a_grant():
    assert leases.kept_requests(counted=8, asked=8, per_minute=60) == 8
    assert leases.kept_requests(counted=63, asked=8, per_minute=60) == 5  # 55 counted before it
    assert leases.kept_requests(counted=68, asked=8, per_minute=60) == 0  # the call itself is over
    assert leases.kept_requests(counted=0, asked=1, per_minute=0) == 1


# ---- which lease admits a call ------------------------------------------------------------------

def test_an_idle_lease_admits_a_call_that_fits_and_is_then_busy():
    idle = lease()
    book = book_with(idle)
    assert book.take("u1", MONTH, BUDGET, 8 * W, 1_000.0, None) is idle and idle.busy
    assert book.take("u1", MONTH, BUDGET, W, 1_000.0, None) is None  # one call at a time


def test_a_lease_admits_nothing_bigger_than_what_it_holds_nor_after_its_window():
    book = book_with(lease(nanos=W - 1))
    assert book.take("u1", MONTH, BUDGET, W, 1_000.0, None) is None
    book = book_with(lease())
    assert book.take("u1", MONTH, BUDGET, W, 1_060.0, None) is None  # admit_until reached
    assert book.take("u1", "2030-06", BUDGET, W, 1_000.0, None) is None  # another month
    assert book.take("u2", MONTH, BUDGET, W, 1_000.0, None) is None  # another user


def test_a_changed_budget_makes_the_lease_stale():
    book = book_with(lease())
    lower = replace(BUDGET, monthly_budget_nanos=50 * W)
    assert book.take("u1", MONTH, lower, W, 1_000.0, None) is None
    stale = book.stale("u1", MONTH, lower, 1_000.0, None)
    assert stale is not None and book.take("u1", MONTH, BUDGET, W, 1_000.0, None) is None  # out of the book


def test_a_per_minute_grant_is_used_one_request_a_call_within_its_minute():
    book = book_with(lease(budget=PER_MINUTE, minute=MINUTE, requests=2))
    first = book.take("u1", MONTH, PER_MINUTE, W, 1_000.0, MINUTE)
    assert first is not None and first.requests == 1
    book.put_back(first)
    assert book.take("u1", MONTH, PER_MINUTE, W, 1_000.0, "2030-05-06T07:09") is None  # the next minute
    second = book.take("u1", MONTH, PER_MINUTE, W, 1_000.0, MINUTE)
    assert second is first and first.requests == 0
    book.put_back(first)
    assert book.take("u1", MONTH, PER_MINUTE, W, 1_000.0, MINUTE) is None  # grant used up
    assert book.stale("u1", MONTH, PER_MINUTE, 1_000.0, MINUTE) is first


def test_an_instance_closes_a_second_idle_lease_of_a_user():
    one, two = lease(lease_id="a", busy=True), lease(lease_id="b", busy=True)
    book = book_with(one, two)
    book.put_back(two)
    assert book.closes_with_call(one) and not book.closes_with_call(two)


def test_of_two_calls_settling_at_once_one_lease_stays_and_the_other_closes():
    one, two = lease(lease_id="a", busy=True), lease(lease_id="b", busy=True)
    book = book_with(one, two)
    assert not book.closes_with_call(one)  # the first to settle stays...
    assert book.closes_with_call(two)  # ...so the second closes, though neither is idle yet
    book.put_back(one)
    assert book.take("u1", MONTH, BUDGET, W, 1_000.0, None) is one


def test_a_lease_chosen_to_stay_whose_call_was_not_recorded_lets_the_next_one_stay():
    one, two = lease(lease_id="a", busy=True), lease(lease_id="b", busy=True)
    book = book_with(one, two)
    assert not book.closes_with_call(one)
    book.drop(one)  # its call could not be recorded: forgotten
    assert not book.closes_with_call(two)


def test_a_lease_whose_amount_is_uncertain_is_forgotten_after_its_call():
    uncertain = lease(busy=True, uncertain=True)
    book = book_with(uncertain)
    book.put_back(uncertain)
    assert book.take("u1", MONTH, BUDGET, W, 1_000.0, None) is None and book.spare("u1", MONTH, None) is None


def test_the_book_remembers_the_month_last_seen_for_sizing():
    book = leases.LeaseBook()
    assert book.seen_spent("u1", MONTH) is None
    book.saw("u1", MONTH, 60 * W, 9 * W)
    assert book.seen_spent("u1", MONTH) == 69 * W
    assert leases.ask_nanos(W, BUDGET, 8, book.seen_spent("u1", MONTH)) is None  # room 31 W


def test_a_spent_idle_lease_does_not_make_a_good_one_close_with_its_call():
    spent = lease(lease_id="old", minute=MINUTE, requests=0, budget=PER_MINUTE)  # its minute's grant used up
    renewed = lease(lease_id="new", minute=MINUTE, requests=2, budget=PER_MINUTE, busy=True, admit_until=1_090.0)
    book = book_with(spent, renewed)
    assert book.closes_with_call(renewed) is False  # it stays for the next calls; the spent one goes back
    good = lease(lease_id="other", minute=MINUTE, requests=3, budget=PER_MINUTE, admit_until=1_090.0)
    assert book_with(good, renewed).closes_with_call(renewed) is True  # one idle lease per user is enough


def test_a_lease_renewed_for_the_next_minute_admits_from_that_minute_on():
    ahead = lease(minute="2030-05-06T07:09", requests=2, budget=PER_MINUTE, admit_until=1_120.0)
    book = book_with(ahead)
    assert book.take("u1", MONTH, PER_MINUTE, W, 1_050.0, MINUTE) is None  # 07:08: not yet
    assert book.stale("u1", MONTH, PER_MINUTE, 1_050.0, MINUTE) is None  # nor handed back as spent
    assert book.spare("u1", MONTH, MINUTE) is None
    assert book.take("u1", MONTH, PER_MINUTE, W, 1_061.0, "2030-05-06T07:09") is ahead
