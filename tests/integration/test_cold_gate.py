"""A user's first call on an instance (budgets/cold.py): the gate's commit goes out on a GUESSED
budget (the default on the caller's plan: here $1 enforced, 60 requests a minute, 50 free calls a
day) beside the read of the real one, and the call must be decided on the REAL budget: a tiny
budget refuses, a budget of another shape is given back whole and gated again, a budget that
gates nothing goes ungated with the guess's hold given back, a free quota is counted once, a
wallet pays. Every test starts on a fresh instance (admission.Gate: nothing cached) and checks
the user's month, minute and day counters to the nano-dollar and the request."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tokenledger import store
from tokenledger.budgets import admission
from tokenledger.config import Settings
from tokenledger.credits import wallet

from .cold_helpers import (DOLLAR, W, eventually, free_requests, held, minute_requests, reservation_docs, settle,
                           write_budget)

pytestmark = pytest.mark.usefixtures("calm_gate")  # tests/integration/conftest.py

NOW = datetime(2048, 2, 10, 9, 30, 5, tzinfo=timezone.utc)  # a month no other test writes
MONTH = "2048-02"
# The defaults: $1 enforced, 60 requests a minute, 8 in flight, 50 free calls a day, leases of 8 calls.
SETTINGS = Settings(record_deadline_s=5)
GUESSED_GRANT = 2  # a guessed commit's grant: the call's own request and one more (cold.GUESSED_GRANT)
LEASE_GRANT = 8  # a lease's request grant on the default budget: min(8, 60 // 4)
COST = 4_000_000


def user() -> str:
    return f"cold-{uuid.uuid4().hex[:10]}"


def cold() -> admission.Gate:
    return admission.Gate(SETTINGS)


def admit(db, gate, uid, worst=W, is_free=False, when=NOW) -> admission.Admission:
    return admission.admit(db, SETTINGS, gate, uid, is_free, worst, when)


# ---- (a) the real budget decides -----------------------------------------------------------------

def test_a_budget_below_one_calls_worst_case_refuses_the_first_call_on_an_instance(db):
    uid = user()
    write_budget(db, uid, monthly_budget_nanos=W - 1, enforce=True)
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(db, cold(), uid)  # the guess ($1) would hold a lease of 8 W for it
    assert (refused.value.budget_nanos, refused.value.estimate_nanos, refused.value.spent_nanos) == (W - 1, W, 0)
    assert held(db, uid, MONTH) == (0, 0, 0)
    assert reservation_docs(db, uid) == []
    assert minute_requests(db, uid, NOW) == 1  # a refused request counts against the rate, once
    assert free_requests(db, uid, NOW) == 0


def test_a_budget_one_nano_below_the_room_refuses_and_one_that_fits_admits_a_calls_own_reservation(db):
    """Exactly one worst case left of the real budget: admitted, as the call's own reservation
    (too close to the ceiling for a lease of 8 W), while the guess would have kept a lease."""
    uid = user()
    write_budget(db, uid, monthly_budget_nanos=W, enforce=True)
    granted = admit(db, cold(), uid)
    assert granted.lease is None and granted.reservation is not None
    assert granted.reservation.amount_nanos == W and granted.budget.monthly_budget_nanos == W
    assert held(db, uid, MONTH) == (0, W, 1)
    assert [int(r["amount_nanos"]) for r in reservation_docs(db, uid)] == [W]
    assert minute_requests(db, uid, NOW) == 1  # the grant of 8 shrunk to the call's own request
    admission.abandon(db, None, granted)
    assert held(db, uid, MONTH) == (0, 0, 0) and reservation_docs(db, uid) == []


# ---- (b) another shape: given back whole, gated again, counted once ------------------------------

def test_a_per_minute_limit_of_another_size_fits_the_guessed_commit_and_is_counted_once(db):
    """The guess asks a grant of 2, so the user's own limit (12, a grant of 3) needs no second
    commit: the lease keeps the 2 (one for this call), and its renewal takes the full grant."""
    uid = user()
    write_budget(db, uid, monthly_budget_nanos=DOLLAR, enforce=True, requests_per_minute=12)
    gate = cold()
    granted = admit(db, gate, uid)
    lease = granted.lease
    assert lease is not None and lease.budget.requests_per_minute == 12
    assert (lease.nanos, lease.requests) == (8 * W, GUESSED_GRANT - 1)  # one used by this call
    assert minute_requests(db, uid, NOW) == GUESSED_GRANT
    assert held(db, uid, MONTH) == (0, 8 * W, 1)
    assert [int(r["amount_nanos"]) for r in reservation_docs(db, uid)] == [8 * W]
    settle(db, gate, SETTINGS, granted, COST, NOW)
    assert held(db, uid, MONTH) == (COST, 8 * W - COST, 1)  # the lease idle: its amount and slot


def test_an_alerts_only_budget_holds_no_money_after_a_guess_that_held_some(db):
    uid = user()
    write_budget(db, uid, monthly_budget_nanos=DOLLAR, enforce=False)
    gate = cold()
    granted = admit(db, gate, uid)
    assert granted.lease is not None and granted.lease.nanos == 0 and not granted.budget.enforce
    assert held(db, uid, MONTH) == (0, 0, 1)  # the guessed lease's 8 W given back
    assert minute_requests(db, uid, NOW) == LEASE_GRANT  # the guess's 2 given back, the lease's 8 counted
    settle(db, gate, SETTINGS, granted, COST, NOW)
    assert held(db, uid, MONTH) == (COST, 0, 1)


def test_a_user_whose_budget_gates_nothing_goes_ungated_and_the_guess_is_given_back(db):
    uid = user()
    write_budget(db, uid, monthly_budget=None, free_daily_requests=None)
    gate = cold()
    granted = admit(db, gate, uid)
    assert granted.local_slot and granted.reservation is None and granted.lease is None
    # given back off the call's path: poll
    assert eventually(lambda: (held(db, uid, MONTH), reservation_docs(db, uid), minute_requests(db, uid, NOW)),
                      ((0, 0, 0), [], 0)) == ((0, 0, 0), [], 0)
    admission.finish(gate, granted)


# ---- free calls: the daily quota counted once ---------------------------------------------------

def test_a_free_call_on_a_cold_instance_is_counted_once_against_the_users_own_quota(db):
    uid = user()
    write_budget(db, uid, free_daily_requests=2)  # the guess counts against 50
    admitted = [admit(db, cold(), uid, worst=0, is_free=True) for _ in range(2)]
    assert [a.free_requests_today for a in admitted] == [1, 2]
    with pytest.raises(admission.FreeQuotaExceeded) as refused:
        admit(db, cold(), uid, worst=0, is_free=True)
    assert refused.value.limit == 2
    assert free_requests(db, uid, NOW) == 2  # the refused call's count given back
    assert minute_requests(db, uid, NOW) == 3
    assert held(db, uid, MONTH) == (0, 0, 2)
    for granted in admitted:
        admission.abandon(db, None, granted)
    assert held(db, uid, MONTH) == (0, 0, 0) and reservation_docs(db, uid) == []


def test_a_free_call_of_a_user_without_a_free_quota_is_not_counted_as_one(db):
    """The guess counts the free call against the default quota; the real budget has a dollar
    budget and no free cap: that count is given back and the call takes a ($0) lease."""
    uid = user()
    write_budget(db, uid, monthly_budget_nanos=5 * DOLLAR, enforce=True, free_daily_requests=None)
    gate = cold()
    granted = admit(db, gate, uid, worst=0, is_free=True)
    assert granted.lease is not None and granted.lease.nanos == 0 and granted.free_requests_today is None
    assert free_requests(db, uid, NOW) == 0
    assert minute_requests(db, uid, NOW) == LEASE_GRANT  # the guess's 2 given back, the lease's 8 counted
    assert held(db, uid, MONTH) == (0, 0, 1)


# ---- wallets (credits) on a cold call ---------------------------------------------------------------

def funded(db, uid: str, nanos: int) -> None:
    write_budget(db, uid, monthly_budget_nanos=0, enforce=True)  # prepaid: no allowance, credits only
    wallet.grant(db, uid, nanos, wallet.GRANT, wallet.entry_id_for("admin", f"{uid}-seed"), {"reason": "seed"})


def wallet_of(db, uid: str) -> tuple[int, int]:
    doc = store.wallet_doc(db, uid).get().to_dict() or {}
    return int(doc.get("balance_nanos") or 0), int(doc.get("held_nanos") or 0)


def test_a_prepaid_users_first_call_on_an_instance_is_held_on_their_wallet_and_counted_once(db):
    uid = user()
    funded(db, uid, DOLLAR)
    gate = cold()
    granted = admit(db, gate, uid)
    assert (granted.reserved_nanos, granted.credits_reserved_nanos) == (0, W)
    assert wallet_of(db, uid) == (DOLLAR, W)
    assert held(db, uid, MONTH)[1:] == (0, 1)
    assert minute_requests(db, uid, NOW) == 1  # one call, one request (no lease kept: the asks were refit)
    settle(db, gate, SETTINGS, granted, COST, NOW)
    assert wallet_of(db, uid) == (DOLLAR - COST, 0)
    assert held(db, uid, MONTH) == (COST, 0, 0)


def test_a_prepaid_user_whose_credits_do_not_cover_the_call_is_refused_on_a_cold_instance(db):
    uid = user()
    funded(db, uid, W - 1)
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(db, cold(), uid)
    assert refused.value.wallet is not None and refused.value.wallet.balance_nanos == W - 1
    assert wallet_of(db, uid) == (W - 1, 0)
    assert held(db, uid, MONTH) == (0, 0, 0) and reservation_docs(db, uid) == []


# ---- a budget changed between calls -------------------------------------------------------------

def test_a_budget_lowered_by_an_admin_is_in_force_at_once_on_the_instance_that_took_the_put(db):
    uid = user()
    gate = cold()
    granted = admit(db, gate, uid)  # no document: the default, a lease of 8 W
    assert granted.lease is not None
    settle(db, gate, SETTINGS, granted, COST, NOW)
    assert held(db, uid, MONTH) == (COST, 8 * W - COST, 1)
    later = NOW + timedelta(seconds=2)
    write_budget(db, uid, monthly_budget_nanos=COST + W - 1, enforce=True)
    gate.budgets.forget(uid)  # what PUT /v1/admin/budgets does on its instance
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(db, gate, uid, when=later)  # the idle lease of the old budget must not admit it
    assert (refused.value.budget_nanos, refused.value.spent_nanos) == (COST + W - 1, COST)
    assert held(db, uid, MONTH) == (COST, 0, 0)  # the old lease handed back in the refused call's commit
    assert reservation_docs(db, uid) == []



def test_a_first_call_is_not_refused_for_the_requests_other_first_calls_guessed(db, monkeypatch):
    """A user allowed 12 requests a minute calls on three cold instances at once (after a deploy
    every instance is cold). Had each guessed commit counted a lease's grant of 8 (the default
    budget's 60 // 4) until its budget read came back, the third call would read 8 + 8 + 1 and be
    refused 429 — and its instance would remember the refusal until the minute ends — though the
    user made 3 requests of their 12. A guess asks a grant of 2: 2 + 2 + 2."""
    import threading

    from tokenledger.budgets import admission as admission_module

    uid = user()
    write_budget(db, uid, monthly_budget_nanos=DOLLAR, enforce=True, requests_per_minute=12)
    read = admission_module._read_before
    release, held_back = threading.Event(), []

    def slow_read(*args, **kwargs):  # the first two budget reads come back late
        if len(held_back) < 2:
            held_back.append(1)
            release.wait(30)
        return read(*args, **kwargs)

    monkeypatch.setattr(admission_module, "_read_before", slow_read)
    outcomes: list[str] = []

    def first_call() -> None:
        try:
            admit(db, cold(), uid)
            outcomes.append("admitted")
        except admission.RateLimited as refused:
            outcomes.append(f"429 {refused.limit_name}")

    early = [threading.Thread(target=first_call) for _ in range(2)]
    for t in early:
        t.start()
    assert eventually(lambda: minute_requests(db, uid, NOW), 2 * GUESSED_GRANT) == 2 * GUESSED_GRANT
    first_call()  # the third, while both guesses are out
    release.set()
    for t in early:
        t.join(60)
    assert outcomes == ["admitted"] * 3


def test_a_prepaid_user_refused_on_a_cold_instance_beside_a_later_call_hears_credits_exhausted(db, monkeypatch):
    """Calls of one user run at once on a cold instance; each read its clock as it began. One
    learns the budget (another shape than the guess: no per-minute limit) and is gated again,
    while a call that began a moment later has cached the wallet it read, stamped with its later
    clock. The first must still see the wallet: refused 402 credits_exhausted with the balance —
    not budget_exceeded on a $0 allowance, as if the user had no credits."""
    from tokenledger.budgets import admission as admission_module

    uid = user()
    write_budget(db, uid, monthly_budget_nanos=0, enforce=True, requests_per_minute=None)
    wallet.grant(db, uid, W - 1, wallet.GRANT, wallet.entry_id_for("admin", f"{uid}-seed"), {"reason": "seed"})
    learn = admission_module._learn

    def learned_then_a_later_call_caches_the_wallet(gate, settings, uid_, month, plan, now, read, features_read):
        result = learn(gate, settings, uid_, month, plan, now, read, features_read)
        gate.wallets.put(uid_, read.wallet, now.timestamp() + 0.05)  # the later call's clock
        return result

    monkeypatch.setattr(admission_module, "_learn", learned_then_a_later_call_caches_the_wallet)
    with pytest.raises(admission.BudgetExceeded) as refused:
        admit(db, cold(), uid)
    assert refused.value.wallet is not None and refused.value.wallet.balance_nanos == W - 1
    assert wallet_of(db, uid) == (W - 1, 0)
    assert held(db, uid, MONTH) == (0, 0, 0) and reservation_docs(db, uid) == []
