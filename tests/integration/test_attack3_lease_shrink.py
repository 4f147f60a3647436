"""Attack: the commit that gives back what a lease does not keep (reservations.shrink, near the
budget's ceiling or the per-minute limit) when its acknowledgement is lost, on the emulator.

  * The client retries a commit that landed (UNAVAILABLE after the write, as the gate's
    GATE_RETRY does): the amount and the requests must be given back once, not twice — twice
    left the month's reserved negative (the user could spend that much past the budget) and the
    minute's count one short (a request past the per-minute limit).
  * The commit landed but the caller saw it fail (a deadline): the lease's amount is then not
    known, and its call must not close it by releasing the amount asked (more than the
    document holds) when the instance has another idle lease for the user.
"""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger import store
from tokenledger.budgets import admission, reservations, rules
from tokenledger.config import Settings
from tokenledger.metering import ledger

from . import lease_helpers
from .ledger_checks import expire_leases, month_doc
from .lost_acks import lose_an_ack

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2043, 5, 12, 14, 20, 30, tzinfo=timezone.utc)  # a month no other test writes
MONTH, MINUTE = "2043-05", "2043-05-12T14:20"
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5)  # lease_calls: 8
W = 10_000_000  # every call's worst case ($0.01)
DOLLAR = 1_000_000_000  # = 100 W
BUDGET = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(), enforce=True, source="user")


def instance(uid: str, budget: rules.Budget = BUDGET, settings: Settings = SETTINGS) -> admission.Gate:
    return lease_helpers.instance(uid, budget, settings, NOW)


def record_of(uid: str, cost_nanos: int):
    return lease_helpers.call_record(uid, cost_nanos, NOW)


def settle(db, gate: admission.Gate, granted: admission.Admission, cost_nanos: int) -> None:
    """As chat_steps.meter_call settles a call."""
    lease_helpers.settle(db, gate, granted, cost_nanos, NOW, SETTINGS)


def spent_elsewhere(db, uid: str, cost_nanos: int) -> None:
    """Another instance's call, recorded with no reservation left to settle."""
    assert ledger.record_usage(db, record_of(uid, cost_nanos), SETTINGS).status == "recorded"


def reservation_amounts(db, uid: str) -> list[int]:
    query = db.collection(store.RESERVATIONS).where(filter=FieldFilter("user_id", "==", uid))
    return sorted(int(snap.to_dict()["amount_nanos"]) for snap in query.stream())


@pytest.fixture()
def shrink_ack_lost_once(db, monkeypatch):
    """The shrink's commit lands, then its ack is lost and the gate's GATE_RETRY sends it again."""
    state = lose_an_ack(db, monkeypatch)
    real_shrink = reservations.shrink

    def shrink(*args, **kwargs):
        state["armed"] = True
        return real_shrink(*args, **kwargs)

    monkeypatch.setattr(reservations, "shrink", shrink)
    return state


def test_a_retried_shrink_gives_the_lease_back_once(db, shrink_ack_lost_once):
    """Spent $0.80 of $1: room 20 W < 4 x 8 W, so the lease asked by a fresh instance (8 W)
    becomes the call's own reservation (W), 7 W given back — once."""
    uid = f"atk3-{uuid.uuid4().hex[:10]}"
    spent_elsewhere(db, uid, 80 * W)
    gate = instance(uid)
    granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    assert shrink_ack_lost_once["lost"] == 1  # the ack was lost and the commit sent again
    assert granted.lease is None and granted.reservation.amount_nanos == W
    month = month_doc(db, uid, MONTH)
    assert (month["reserved_nanos"], month["in_flight"]) == (10_000_000, 1)
    assert reservation_amounts(db, uid) == [10_000_000]
    settle(db, gate, granted, 4_000_000)
    expire_leases(db, uid)
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (804_000_000, 0, 0)


def test_a_retried_shrink_gives_the_minutes_requests_back_once(db, shrink_ack_lost_once):
    """9 requests a minute: each lease takes a grant of 2 (9 // 4). Four instances take 8, the
    fifth's grant is cut to its own request (the 9th) — one request given back, once. The sixth
    instance's call would be the 10th: refused."""
    uid = f"atk3-{uuid.uuid4().hex[:10]}"
    budget = replace(BUDGET, requests_per_minute=9)
    settings = replace(SETTINGS, rate_limit_per_minute=9)
    gates = [instance(uid, budget, settings) for _ in range(6)]
    granted = [admission.admit(db, settings, gate, uid, False, W, NOW) for gate in gates[:5]]
    assert shrink_ack_lost_once["lost"] == 1
    assert [g.lease.requests for g in granted] == [1, 1, 1, 1, 0]  # after each call's own request
    minute = store.user_minute_doc(db, uid, MINUTE).get().to_dict()
    assert minute["requests"] == 9
    with pytest.raises(admission.RateLimited) as refused:
        admission.admit(db, settings, gates[5], uid, False, W, NOW)
    assert refused.value.limit_name == "requests_per_minute"


def test_a_lease_whose_shrink_may_have_landed_is_not_closed_by_its_call(db, monkeypatch):
    """An instance holds lease L1 (8 W) for a running call; another instance spends 75 W; a
    second call on this instance asks another lease (8 W), which keeps only W (room 17 W):
    7 W given back in a commit that lands but reports a deadline. When both calls are settled
    and every lease has expired, the month holds nothing: reserved 0, in flight 0."""
    uid = f"atk3-{uuid.uuid4().hex[:10]}"
    gate = instance(uid)
    first = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    assert first.lease is not None and first.lease.nanos == 80_000_000
    spent_elsewhere(db, uid, 75 * W)
    real_shrink = reservations.shrink

    def shrink_deadline(*args, **kwargs):
        real_shrink(*args, **kwargs)
        raise gexc.DeadlineExceeded("deadline exceeded after the commit was applied")

    monkeypatch.setattr(reservations, "shrink", shrink_deadline)
    second = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
    monkeypatch.setattr(reservations, "shrink", real_shrink)
    assert second.lease is not None and second.lease.uncertain
    month = month_doc(db, uid, MONTH)
    assert month["reserved_nanos"] == 80_000_000 + 10_000_000  # L1 and the second call's W
    settle(db, gate, first, 4_000_000)  # L1 idle again, 76,000,000 left
    settle(db, gate, second, 4_000_000)
    month = month_doc(db, uid, MONTH)
    assert month["reserved_nanos"] == 76_000_000 + 6_000_000  # L1, and what the second call's W left
    expire_leases(db, uid)
    month = month_doc(db, uid, MONTH)
    assert (month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (758_000_000, 0, 0)
