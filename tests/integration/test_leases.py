"""Budget leases on the real emulator (budgets/leases.py): an instance reserves a slice of a
user's month once and admits the user's next calls against it with no commit before the call;
the ledger's one commit settles each call into it. Instances are Gate objects (each its own
lease book and budget cache); calls are settled as the API settles them (admission.holding,
ledger.record_usage, admission.settled). Operations are counted as Firestore bills them."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tokenledger import store
from tokenledger.budgets import admission, reservations, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger

from . import lease_helpers
from .ledger_checks import held_beyond_leases, leases_of, month_doc

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2042, 3, 10, 9, 30, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2042-03"
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5)  # lease_calls: the default, 8
W = 10_000_000  # the worst case of every call here ($0.01)
DOLLAR = 1_000_000_000
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(), enforce=True, source="user")


def instance(uid: str, budget: rules.Budget = BUDGET, settings: Settings = SETTINGS) -> admission.Gate:
    return lease_helpers.instance(uid, budget, settings, NOW)


def user() -> str:
    return f"ls-{uuid.uuid4().hex[:10]}"


def settle(db, gate: admission.Gate, granted: admission.Admission, cost_nanos: int, pending: bool = False,
           settings: Settings = SETTINGS) -> ledger.RecordOutcome:
    """Record a call of `cost_nanos` (or a pending one, at its worst case W) as the API does."""
    if pending:
        record = lease_helpers.held(gate, granted, lease_helpers.pending_record(granted.uid, W, NOW))
        return lease_helpers.commit(db, gate, granted, record, settings)
    return lease_helpers.settle(db, gate, granted, cost_nanos, NOW, settings)


def lease_amounts(db, uid: str) -> list[int]:
    return sorted(int(lease["amount_nanos"]) for lease in leases_of(db, uid))


def test_the_next_calls_on_an_instance_take_no_commit_and_each_settles_in_the_ledgers_one_commit(db, ops):
    uid, cost = user(), 4_000_000
    gate = instance(uid)
    ops.reset()
    first = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    assert ops.snapshot() == {"reads": 0, "writes": 2, "deletes": 0, "commits": 1}  # the month and the lease
    lease = first.lease
    assert lease is not None and lease_amounts(db, uid) == [8 * W]
    settle(db, gate, first, cost)
    ops.reset()
    second = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    assert ops.snapshot() == {"reads": 0, "writes": 0, "deletes": 0, "commits": 0}
    assert second.lease is lease and lease.nanos == 8 * W - cost
    ops.reset()
    settle(db, gate, second, cost)
    # the row, the month, the lease, the day, the global totals: one commit, no delete
    assert ops.snapshot() == {"reads": 0, "writes": 5, "deletes": 0, "commits": 1}
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (2 * cost, 8 * W - 2 * cost, 1)
    assert lease_amounts(db, uid) == [8 * W - 2 * cost]


def test_three_instances_reach_the_ceiling_exactly_and_never_pass_it(db):
    """$1 budget, calls of worst case $0.01 costing $0.004, round three instances one at a time
    until each refuses. One reservation per call admits n calls while 4,000,000 n + 10,000,000
    <= 10^9: n = 0..247, 248 calls. Leases far from the ceiling, each call's own reservation
    near it (idle leases handed back on the way): the same 248."""
    uid, cost = user(), 4_000_000
    gates = [instance(uid) for _ in range(3)]
    admitted = refused_in_a_row = k = 0
    while refused_in_a_row < len(gates):
        gate = gates[k % len(gates)]
        k += 1
        try:
            granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
        except admission.BudgetExceeded:
            refused_in_a_row += 1
            continue
        refused_in_a_row = 0
        admitted += 1
        settle(db, gate, granted, cost)
        month = month_doc(db, uid, MONTH)
        assert month["cost_nanos"] + month["reserved_nanos"] <= DOLLAR
    month = month_doc(db, uid, MONTH)
    assert admitted == 248 and month["cost_nanos"] == 248 * cost == 992_000_000
    assert held_beyond_leases(db, uid, MONTH) == (0, 0)


def test_a_lease_released_after_it_expired_under_a_running_call_is_not_released_again(db):
    uid, cost = user(), 4_000_000
    gate = instance(uid)
    granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    old = granted.lease
    expiry = NOW + timedelta(seconds=SETTINGS.reservation_ttl_s + 60)  # ADMIT_S + the TTL
    assert reservations.release_expired(db, expiry - timedelta(seconds=1), user_id=uid)[0] == 0
    assert reservations.release_expired(db, expiry, user_id=uid)[0] == 1  # the check, while the call runs
    outcome = settle(db, gate, granted, cost)
    assert outcome.reservation_gone
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (cost, 0, 0)
    again = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)  # the instance forgot it: a new lease
    assert again.lease is not None and again.lease.lease_id != old.lease_id
    assert lease_amounts(db, uid) == [8 * W]


def test_a_pending_row_takes_the_calls_worst_case_over_from_the_lease(db):
    uid = user()
    gate = instance(uid)
    granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    settle(db, gate, granted, 0, pending=True)
    assert lease_amounts(db, uid) == [7 * W]
    assert held_beyond_leases(db, uid, MONTH) == (W, 0)  # the row's, until reconcile settles it
    assert month_doc(db, uid, MONTH)["cost_nanos"] == W  # counted at its worst case meanwhile


def test_a_lease_that_can_admit_no_more_is_handed_back_in_the_commit_that_takes_the_next(db, ops):
    uid = user()
    per_minute = replace(BUDGET, requests_per_minute=60)
    settings = replace(SETTINGS, rate_limit_per_minute=60)
    gate = instance(uid, per_minute, settings)

    def minute_count(when: datetime) -> int | None:
        return (store.user_minute_doc(db, uid, when.strftime("%Y-%m-%dT%H:%M")).get().to_dict() or {}).get("requests")

    first = admission.admit(db, settings, gate, uid, False, W, NOW)
    settle(db, gate, first, 1_000_000, settings=settings)
    assert minute_count(NOW) == 8  # a grant of 8 of the 60
    later = NOW + timedelta(seconds=61)  # past the lease's window, in the next minute
    gate.budgets.put(uid, per_minute, later.timestamp())
    ops.reset()
    second = admission.admit(db, settings, gate, uid, False, W, later)
    assert ops.snapshot()["commits"] == 1 and ops.snapshot()["deletes"] == 1  # old lease out, new in
    assert lease_amounts(db, uid) == [8 * W] and month_doc(db, uid, MONTH)["in_flight"] == 1
    assert (minute_count(NOW), minute_count(later)) == (8, 8)  # the old minute's grant is spent
    settle(db, gate, second, 1_000_000, settings=settings)
    # The budget changes: the lease (7 requests of this minute left) goes back, its requests too.
    raised = replace(per_minute, monthly_budget_nanos=2 * DOLLAR)
    gate.budgets.put(uid, raised, later.timestamp())
    admission.admit(db, settings, gate, uid, False, W, later)
    assert minute_count(later) == 8 - 7 + 8
    assert lease_amounts(db, uid) == [8 * W]
    month = month_doc(db, uid, MONTH)
    assert (month["reserved_nanos"], month["in_flight"], month["cost_nanos"]) == (8 * W, 1, 2_000_000)


def test_an_instance_keeps_one_idle_lease_per_user(db):
    uid, cost = user(), 4_000_000
    gate = instance(uid)
    a = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    b = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)  # at the same time: a second lease
    assert lease_amounts(db, uid) == [8 * W, 8 * W] and month_doc(db, uid, MONTH)["in_flight"] == 2
    settle(db, gate, a, cost)
    settle(db, gate, b, cost)  # the other is idle: this one closes with its call
    assert lease_amounts(db, uid) == [8 * W - cost]
    month = month_doc(db, uid, MONTH)
    assert (month["reserved_nanos"], month["in_flight"], month["cost_nanos"]) == (8 * W - cost, 1, 2 * cost)


def test_each_lease_holds_one_slot_of_the_in_flight_limit(db):
    uid = user()
    limited = replace(BUDGET, max_in_flight=2)
    settings = replace(SETTINGS, max_in_flight=2)
    gates = [instance(uid, limited, settings) for _ in range(3)]
    running = [admission.admit(db, settings, gate, uid, False, W, NOW) for gate in gates[:2]]
    with pytest.raises(admission.RateLimited) as refused:
        admission.admit(db, settings, gates[2], uid, False, W, NOW)
    assert refused.value.limit_name == "max_in_flight"
    settle(db, gates[0], running[0], 1_000_000, settings=settings)
    assert admission.admit(db, settings, gates[0], uid, False, W, NOW).lease is not None  # its own lease
    assert month_doc(db, uid, MONTH)["in_flight"] == 2
