"""The ceiling primitive over the allowance and the wallet, driven as the API drives it (instances
are Gate objects; calls settled by admission.holding, ledger.record_usage, admission.settled) on the
real emulator, with Firestore operations counted as Firestore bills them: a credits-paying call on
the lease path costs what an enforced-budget call costs; a lease over the wallet settles into it
once when it closes (renewed, closing with a call, or released after it expired); a replayed
unrecorded call debits the wallet once; a pending row's credits are corrected by reconcile."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import pytest

from tokenledger import store
from tokenledger.budgets import admission, rules
from tokenledger.config import Settings
from tokenledger.credits import wallet

from . import lease_helpers
from .ledger_checks import expire_leases, leases_of

pytestmark = pytest.mark.usefixtures("calm_gate")

NOW = datetime(2043, 5, 10, 9, 30, tzinfo=timezone.utc)  # a month no other test writes
SETTINGS = Settings(rate_limit_per_minute=0, max_in_flight=0, record_deadline_s=5)  # lease_calls 8
W = 10_000_000  # every call's worst case
DOLLAR = 1_000_000_000
ENFORCED = rules.Budget(monthly_budget_nanos=DOLLAR, alert_thresholds=(), enforce=True, source="user")
PREPAID = rules.Budget(monthly_budget_nanos=0, alert_thresholds=(), enforce=True, source="user")


def user() -> str:
    return f"cg-{uuid.uuid4().hex[:10]}"


def funded(db, uid: str, nanos: int, budget: rules.Budget = PREPAID) -> admission.Gate:
    """A user with `nanos` of credits and an instance that knows their budget and wallet."""
    wallet.grant(db, uid, nanos, wallet.GRANT, wallet.entry_id_for("admin", f"{uid}-seed"), {"reason": "seed"})
    gate = lease_helpers.instance(uid, budget, SETTINGS, NOW)
    gate.wallets.put(uid, admission.WalletSeen(True, nanos), NOW.timestamp())
    return gate


def wallet_of(db, uid: str) -> tuple[int, int]:
    doc = store.wallet_doc(db, uid).get().to_dict() or {}
    return int(doc.get("balance_nanos") or 0), int(doc.get("held_nanos") or 0)


def test_a_credits_call_on_the_lease_path_costs_no_more_operations_than_an_enforced_budget_call(db, ops):
    counted = {}
    for name, budget, prepare in (("enforced budget", ENFORCED, lambda uid: lease_helpers.instance(
            uid, ENFORCED, SETTINGS, NOW)), ("prepaid credits", PREPAID, lambda uid: funded(db, uid, DOLLAR))):
        uid = user()
        gate = prepare(uid)
        first = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
        assert first.lease is not None
        lease_helpers.settle(db, gate, first, 4_000_000, NOW, SETTINGS)
        ops.reset()
        second = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
        before = ops.snapshot()
        lease_helpers.settle(db, gate, second, 4_000_000, NOW, SETTINGS)
        counted[name] = (before, ops.snapshot())
    print(f"\nlease path, ops before the call / for the whole call: {counted}")
    no_ops = {"reads": 0, "writes": 0, "deletes": 0, "commits": 0}
    one_commit = {"reads": 0, "writes": 5, "deletes": 0, "commits": 1}
    assert counted["enforced budget"] == (no_ops, one_commit)
    assert counted["prepaid credits"] == (no_ops, one_commit)


def test_a_lease_over_the_wallet_charges_the_balance_once_when_it_closes(db):
    uid = user()
    gate = funded(db, uid, DOLLAR)
    costs = [4_000_000, 7_000_000, 1]
    for cost in costs:
        granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
        assert (granted.reserved_nanos, granted.credits_reserved_nanos) == (0, W)
        lease_helpers.settle(db, gate, granted, cost, NOW, SETTINGS)
    [lease] = leases_of(db, uid)
    assert (lease["amount_nanos"], lease["credits_nanos"], lease["credits_spent_nanos"]) == (0, 8 * W, sum(costs))
    # the wallet still holds the lease whole: nothing charged yet, nothing spendable twice
    assert wallet_of(db, uid) == (DOLLAR, 8 * W)
    assert expire_leases(db, uid) == 1
    assert wallet_of(db, uid) == (DOLLAR - sum(costs), 0)
    assert expire_leases(db, uid) == 0  # released once
    assert wallet_of(db, uid) == (DOLLAR - sum(costs), 0)


def test_a_second_instance_sees_the_first_ones_hold_and_the_wallet_is_never_overdrawn(db):
    uid = user()
    balance = 40 * W + 5  # room for one lease of 8 W (4 x 8 W) and calls beyond it
    gates = [funded(db, uid, balance)] + [lease_helpers.instance(uid, PREPAID, SETTINGS, NOW) for _ in range(2)]
    for gate in gates[1:]:
        gate.wallets.put(uid, admission.WalletSeen(True, balance), NOW.timestamp())
    admitted = charges = 0
    refused = 0
    for k in range(60):
        gate = gates[k % 3]
        try:
            granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
        except admission.BudgetExceeded as exc:
            assert exc.wallet is not None
            refused += 1
            continue
        admitted += 1
        charges += W  # every call costs its worst case: the tightest the wallet can be spent
        lease_helpers.settle(db, gate, granted, W, NOW, SETTINGS)
    expire_leases(db, uid)
    print(f"\nthree instances, 60 calls of W on 40 W + 5: {admitted} admitted, {refused} refused")
    assert admitted + refused == 60 and refused >= 20  # at most 40 calls of W fit in 40 W + 5
    assert wallet_of(db, uid) == (balance - charges, 0)
    assert balance - charges >= 5


def test_replaying_an_unrecorded_call_debits_the_wallet_once(db, tmp_path):
    settings = Settings(rate_limit_per_minute=0, max_in_flight=0, lease_calls=0)  # the call's own reservation
    uid, cost = user(), 6_000_000
    gate = funded(db, uid, DOLLAR)
    call = admission.admit(db, settings, gate, uid, False, W, NOW)
    # OpenRouter answered; the ledger's commit never lands: the record goes to the ERROR log
    lost = lease_helpers.held(gate, call, lease_helpers.call_record(uid, cost, NOW))
    assert (lost.credits_nanos, lost.allowance_nanos) == (cost, 0)
    log = tmp_path / "lost.log"
    log.write_text(json.dumps({"severity": "ERROR", "message": "usage_not_recorded", "record": lost.to_log()}) + "\n")
    # the call's reservation expires and the check releases its hold (it charged nothing yet)
    assert expire_leases(db, uid) == 1
    assert wallet_of(db, uid) == (DOLLAR, 0)
    for attempt in range(2):
        done = subprocess.run([sys.executable, "-m", "tokenledger.tools.replay", str(log)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert ("already_recorded" in done.stdout) == (attempt == 1), done.stdout
    assert wallet_of(db, uid) == (DOLLAR - cost, 0)


def test_a_low_balance_alert_is_written_once_per_crossing(db):
    from google.cloud.firestore_v1.base_query import FieldFilter

    settings = Settings(rate_limit_per_minute=0, max_in_flight=0, lease_calls=0)
    uid = user()
    gate = funded(db, uid, 10 * W)
    wallet.set_low_balance(db, uid, 5 * W)
    gate.wallets.put(uid, admission.WalletSeen(True, 10 * W, low_nanos=5 * W), NOW.timestamp())

    def low_alerts() -> list[dict]:
        query = db.collection("budget_alerts").where(filter=FieldFilter("user_id", "==", uid))
        return [s.to_dict() for s in query.stream() if s.to_dict()["alert_type"] == "credits_low"]

    def spend(calls: int) -> None:
        for _ in range(calls):
            granted = admission.admit(db, settings, gate, uid, False, W, NOW)
            lease_helpers.settle(db, gate, granted, W, NOW, settings)

    spend(5)  # 5 W left after the fifth call's hold: not below 5 W
    assert low_alerts() == []
    spend(1)  # its hold takes what is left to 4 W: below
    assert [a["balance_nanos"] for a in low_alerts()] == [4 * W]
    spend(2)
    assert len(low_alerts()) == 1  # still the same crossing
    # a top-up back over the threshold starts a new crossing; a small one does not
    wallet.grant(db, uid, W, wallet.GRANT, wallet.entry_id_for("admin", f"{uid}-small"), {"reason": "small"},
                 rearm_nanos=DOLLAR)
    spend(1)
    assert len(low_alerts()) == 1
    wallet.grant(db, uid, 10 * W, wallet.GRANT, wallet.entry_id_for("admin", f"{uid}-big"), {"reason": "big"},
                 rearm_nanos=DOLLAR)
    spend(7)  # 12 W -> 5 W after the seventh call's hold: not below 5 W
    assert len(low_alerts()) == 1
    spend(1)
    assert sorted(a["balance_nanos"] for a in low_alerts()) == [4 * W, 4 * W]


def test_a_pending_rows_credits_are_split_again_when_reconcile_settles_it(db):
    from decimal import Decimal

    from tokenledger.metering.usage import record_from_row
    from tokenledger.reconcile import settle as reconcile

    settings = Settings(rate_limit_per_minute=0, max_in_flight=0, lease_calls=0)
    uid = user()
    gate = funded(db, uid, DOLLAR, budget=rules.Budget(monthly_budget_nanos=3 * W // 10, alert_thresholds=(),
                                                       enforce=True, source="user"))
    call = admission.admit(db, settings, gate, uid, False, W, NOW)
    assert (call.reserved_nanos, call.credits_reserved_nanos) == (3 * W // 10, 7 * W // 10)
    # the answer was lost: a pending row at the worst case, each account charged its hold
    record = lease_helpers.held(gate, call, lease_helpers.pending_record(uid, W, NOW))
    lease_helpers.commit(db, gate, call, record, settings)
    assert wallet_of(db, uid) == (DOLLAR - 7 * W // 10, 0)
    # OpenRouter's /generation says it cost half the worst case: the allowance pays 0.3 W, credits 0.2 W
    snap = store.usage_doc(db, record.generation_id).get()
    outcome = reconcile.settle_row(db, snap, record_from_row(snap.to_dict()),
                                   {"total_cost": float(Decimal(W // 2) / DOLLAR)}, settings, NOW)
    assert outcome.outcome == reconcile.SETTLED
    row = store.usage_doc(db, record.generation_id).get().to_dict()
    assert (row["cost_nanos"], row["allowance_nanos"], row["credits_nanos"]) == (W // 2, 3 * W // 10, 2 * W // 10)
    assert wallet_of(db, uid) == (DOLLAR - 2 * W // 10, 0)


def test_a_past_months_spending_is_one_history_entry_per_wallet(db):
    from tokenledger.credits import summary

    uid = user()
    gate = funded(db, uid, DOLLAR)
    for cost in (4_000_000, 3_000_001):
        granted = admission.admit(db, SETTINGS, gate, uid, False, W, NOW)
        lease_helpers.settle(db, gate, granted, cost, NOW, SETTINGS)
    for _ in range(2):  # every run of the first day: the same entry
        seen, written = summary.summarise_month(db, "2043-05")
        assert seen >= 1 and written >= 1
    spending = [e for e in (s.to_dict() for s in store.wallet_doc(db, uid).collection("entries").stream())
                if e["type"] == "spending"]
    assert [(e["month"], e["amount_nanos"]) for e in spending] == [("2043-05", -7_000_001)]
    assert summary.previous_month(datetime(2043, 1, 1, tzinfo=timezone.utc)) == "2042-12"
    assert summary.month_end("2043-12") == datetime(2044, 1, 1, tzinfo=timezone.utc)
