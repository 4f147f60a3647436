"""Attacks on budget leases that hold (budgets/leases.py), on the emulator, for paths
test_leases.py does not walk: a lease of the old month handed back across the month boundary,
a renewal racing the check that already released the lease, a call whose worst case outgrows
the lease, and the ledger's retry after a lost acknowledgement of a lease's settle or close."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tokenledger.budgets import admission, reservations, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger

from . import lease_helpers
from .ledger_checks import expire_leases, held_beyond_leases, leases_of, month_doc, rows_for
from .test_ledger_exactly_once import FlakyDb

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5)  # lease_calls: 8
W = 10_000_000  # $0.01
DOLLAR = 1_000_000_000
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(), enforce=True, source="user")


def user() -> str:
    return f"atk3h-{uuid.uuid4().hex[:10]}"


def instance(uid: str, now: datetime, budget: rules.Budget = BUDGET) -> admission.Gate:
    return lease_helpers.instance(uid, budget, SETTINGS, now)


def settle(db, gate, granted: admission.Admission, cost_nanos: int, when: datetime) -> ledger.RecordOutcome:
    """As chat_steps.meter_call settles a call made at `when`."""
    return lease_helpers.settle(db, gate, granted, cost_nanos, when, SETTINGS)


def settle_through(ledger_db, gate, granted: admission.Admission, cost_nanos: int,
                   when: datetime) -> ledger.RecordOutcome:
    """settle(), the ledger's commits sent through `ledger_db` (a client that may lose acks)."""
    return lease_helpers.settle(None, gate, granted, cost_nanos, when, SETTINGS, ledger_db=ledger_db)


def amounts(db, uid: str) -> list[tuple[str, int]]:
    return sorted((lease["month"], int(lease["amount_nanos"])) for lease in leases_of(db, uid))


def test_a_lease_of_the_old_month_goes_back_to_that_month_in_the_first_commit_of_the_new(db):
    """A call at 23:59:59 UTC on 31 May from the lease of May, the next call at 00:00:01 on
    1 June: June gets a new lease, May's goes back to May's document in the same commit."""
    uid = user()
    before, after = datetime(2044, 5, 31, 23, 59, 58, tzinfo=timezone.utc), datetime(2044, 6, 1, 0, 0, 1,
                                                                                   tzinfo=timezone.utc)
    gate = instance(uid, before)
    first = admission.admit(db, SETTINGS, gate, uid, False, W, before)
    lease_of_may = first.lease
    settle(db, gate, first, 4_000_000, before)
    last_of_may = before + timedelta(seconds=1)
    second = admission.admit(db, SETTINGS, gate, uid, False, W, last_of_may)
    assert second.lease is lease_of_may  # no commit
    settle(db, gate, second, 3_000_000, last_of_may)
    assert amounts(db, uid) == [("2044-05", 80_000_000 - 7_000_000)]
    third = admission.admit(db, SETTINGS, gate, uid, False, W, after)
    assert third.lease is not None and third.lease.month == "2044-06"
    may, june = month_doc(db, uid, "2044-05"), month_doc(db, uid, "2044-06")
    assert (may["cost_nanos"], may["reserved_nanos"], may["in_flight"]) == (7_000_000, 0, 0)
    assert (june.get("cost_nanos", 0), june["reserved_nanos"], june["in_flight"]) == (0, 80_000_000, 1)
    assert amounts(db, uid) == [("2044-06", 80_000_000)]
    settle(db, gate, third, 2_000_000, after)
    assert expire_leases(db, uid) == 1
    june = month_doc(db, uid, "2044-06")
    assert (june["cost_nanos"], june["reserved_nanos"], june["in_flight"]) == (2_000_000, 0, 0)
    assert held_beyond_leases(db, uid, "2044-05") == (0, 0)


def test_a_renewal_after_the_check_released_the_lease_does_not_release_it_again(db):
    """The instance still holds the idle lease the check released after it expired: the commit
    handing it back fails whole (NotFound) and the new lease is taken alone."""
    uid = user()
    now = datetime(2044, 7, 3, 10, 0, tzinfo=timezone.utc)
    gate = instance(uid, now)
    first = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    first_id = first.lease.lease_id
    settle(db, gate, first, 4_000_000, now)
    expiry = now + timedelta(seconds=SETTINGS.reservation_ttl_s + 60)
    assert reservations.release_expired(db, expiry, user_id=uid)[0] == 1  # the check
    month = month_doc(db, uid, "2044-07")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (4_000_000, 0, 0)
    gate.budgets.put(uid, BUDGET, expiry.timestamp())
    renewed = admission.admit(db, SETTINGS, gate, uid, False, W, expiry)
    assert renewed.lease is not None and renewed.lease.lease_id != first_id
    month = month_doc(db, uid, "2044-07")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (4_000_000, 80_000_000, 1)
    assert amounts(db, uid) == [("2044-07", 80_000_000)]


def test_a_call_larger_than_the_lease_renews_it_in_one_commit(db):
    """$10 budget. Small calls (worst case W) took a lease of 8 W; a call of worst case 9 W (more
    than the 76,000,000 left) hands it back and takes 8 x 9 W in the same commit; small calls
    then run on the large lease."""
    uid = user()
    now = datetime(2044, 8, 9, 12, 0, tzinfo=timezone.utc)
    gate = instance(uid, now, rules.Budget(monthly_budget_nanos=10 * DOLLAR, alert_thresholds=(), enforce=True,
                                           source="user"))
    small = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    small_lease = small.lease
    settle(db, gate, small, 4_000_000, now)
    large = admission.admit(db, SETTINGS, gate, uid, False, 9 * W, now)
    large_lease = large.lease
    assert large_lease is not None and large_lease is not small_lease
    month = month_doc(db, uid, "2044-08")
    assert (month["reserved_nanos"], month["in_flight"]) == (720_000_000, 1)
    assert amounts(db, uid) == [("2044-08", 720_000_000)]
    settle(db, gate, large, 50_000_000, now)
    again = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    assert again.lease is large_lease
    settle(db, gate, again, 4_000_000, now)
    month = month_doc(db, uid, "2044-08")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (58_000_000, 666_000_000, 1)
    assert expire_leases(db, uid) == 1
    month = month_doc(db, uid, "2044-08")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (58_000_000, 0, 0)



def test_a_lease_settle_whose_ack_was_lost_counts_the_call_once_and_the_lease_is_released_once(db):
    """The ledger's commit moving the call's cost off the lease lands, its ack is lost, the retry
    finds the row (already_recorded): the instance forgets the lease, the check releases what
    it holds (76,000,000) once it expires; the next call takes a new lease."""
    uid = user()
    now = datetime(2044, 9, 14, 8, 0, tzinfo=timezone.utc)
    gate = instance(uid, now)
    granted = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    first_id = granted.lease.lease_id
    outcome = settle_through(FlakyDb(db, lose=1), gate, granted, 4_000_000, now)
    assert (outcome.status, outcome.attempts) == ("already_recorded", 2)
    month = month_doc(db, uid, "2044-09")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (4_000_000, 76_000_000, 1)
    again = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    assert again.lease is not None and again.lease.lease_id != first_id  # the forgotten one is not used
    settle(db, gate, again, 4_000_000, now)
    assert expire_leases(db, uid) == 2
    month = month_doc(db, uid, "2044-09")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (8_000_000, 0, 0)
    assert len(rows_for(db, uid)) == 2


def test_a_lease_closing_with_its_call_whose_ack_was_lost_is_released_once(db):
    """Two leases on one instance; the second closes with its call (the first is idle) in a
    commit whose ack is lost: the retry changes nothing."""
    uid = user()
    now = datetime(2044, 10, 20, 8, 0, tzinfo=timezone.utc)
    gate = instance(uid, now)
    a = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    b = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    settle(db, gate, a, 4_000_000, now)
    outcome = settle_through(FlakyDb(db, lose=1), gate, b, 4_000_000, now)
    assert outcome.status == "already_recorded"
    month = month_doc(db, uid, "2044-10")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (8_000_000, 76_000_000, 1)
    assert amounts(db, uid) == [("2044-10", 76_000_000)]
    assert expire_leases(db, uid) == 1
    month = month_doc(db, uid, "2044-10")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (8_000_000, 0, 0)
    assert len(rows_for(db, uid)) == 2


def test_a_budget_lowered_under_the_spend_refuses_the_next_call_and_hands_the_lease_back(db):
    """$0.004 spent through a lease of 8 W; an admin lowers the budget to $0.005 (this instance's
    cache now says so): the lease no longer admits, goes back in the refused call's commit, and
    nothing stays held."""
    uid = user()
    now = datetime(2044, 11, 2, 9, 0, tzinfo=timezone.utc)
    gate = instance(uid, now)
    granted = admission.admit(db, SETTINGS, gate, uid, False, W, now)
    settle(db, gate, granted, 4_000_000, now)
    gate.budgets.put(uid, rules.Budget(monthly_budget_nanos=5_000_000, alert_thresholds=(), enforce=True,
                                       source="user"), now.timestamp())
    with pytest.raises(admission.BudgetExceeded) as refused:
        admission.admit(db, SETTINGS, gate, uid, False, W, now)
    assert (refused.value.spent_nanos, refused.value.reserved_nanos) == (4_000_000, 0)
    month = month_doc(db, uid, "2044-11")
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (4_000_000, 0, 0)
    assert amounts(db, uid) == []
