"""May this call go? The budget gate of a chat call, and the user's month after it.

One gate for the budget, the free quota and the rate limits, with no transaction and, for a user
whose budget this instance knows, no read at all:
  * the user's budget comes from a per-instance cache (cache.py, TOKENLEDGER_BUDGET_CACHE_S); on
    a miss it is read, with the month's alert flags, in one round trip before the commit;
  * a user with nothing to check (no dollar budget, no free quota that applies) skips the shared
    gate: no read, no write before the call; rate limits per instance (limits.py);
  * everyone else is admitted against this instance's lease for the user when it has one that
    covers the call (leases.py: no read, no write before the call), else makes ONE commit of
    blind increments — a new lease (or, near the ceiling and for a free call counted against a
    daily quota, the call's own reservation: its worst case for an enforced budget, else $0)
    with `in_flight` +1, the minute's request count (a lease's grant), the day's free count for
    a free call, an idle lease handed back — which also reads them back: Firestore returns every increment's
    result, and an increment by 0 of the month's cost reads it (reservations.reserve_and_read).
    A hot user's month has shards: their totals are added in one get_all. Then the decision: rate
    limit (429), free quota (429), budget (402). A refused call takes its increments back in one
    more commit (the minute's count stays: refused requests count against the rate). Why blind
    increments read back are safe under concurrency: reservations.py.
After the call (after_call): the status is the month's cost as the ledger's commit read it back
(exact, for a user without shards), else what the gate read plus this call's own cost; alerts are
written for thresholds this call crossed. No read.
Money is held by the ceiling primitive (ceiling.py) over a list of accounts: the month's
allowance (the enforced budget) and, for a user with a prepaid wallet, the wallet — asked in the
same one commit, read back together, kept or given back together; a lease holds on both the same
way. A call that fits neither is refused: 402 `credits_exhausted` for a user with a wallet.
When Firestore cannot be reached, an enforced budget fails closed (503 budget_unavailable) unless
the operator chose TOKENLEDGER_BUDGET_FAIL_OPEN.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tokenledger import background, store
from tokenledger.budgets import cold, features, reservations, rules
from tokenledger.budgets.admitted import (BUDGET_READ, FIRESTORE_ERRORS, QUICK_RETRY, Admission, BudgetExceeded,
                                          BudgetUnavailable, FreeQuotaExceeded, Gate, WalletSeen, read_wallet,
                                          unchecked, wallet_seen)
from tokenledger.budgets.cache import BudgetDoc, resolved
from tokenledger.budgets.gate_call import GateCall
from tokenledger.budgets.limits import RateLimited
from tokenledger.budgets.plans import Plan
from tokenledger.budgets.settling import abandon, finish, holding, settled
from tokenledger.budgets.status import after_call
from tokenledger.config import Settings

__all__ = ["QUICK_RETRY", "Admission", "BudgetExceeded", "BudgetUnavailable", "FreeQuotaExceeded", "Gate", "RateLimited",
           "WalletSeen", "abandon", "after_call", "finish", "holding", "read_wallet", "settled"]

# How long a call that would fit once other calls' reservations settle keeps trying (seconds).
ADMISSION_PATIENCE_S = 2.0
BUDGET_DOC_FIELDS = ["monthly_budget", "monthly_budget_nanos", *rules.BUDGET_FIELDS[1:]]
WALLET_FIELDS = ["balance_nanos", "held_nanos", "low_balance_nanos"]


def read_budget(db, uid: str, settings: Settings, plan: Plan | None = None) -> rules.Budget:
    """The user's budget in force (on `plan`); BudgetUnavailable when Firestore cannot be read."""
    try:
        snap = store.budget_doc(db, uid).get(**BUDGET_READ)
    except FIRESTORE_ERRORS as exc:
        raise BudgetUnavailable() from exc
    return rules.budget_from_doc(snap.to_dict() if snap.exists else None, settings, plan)


def budget_in_force(gate: Gate, settings: Settings, uid: str, now: datetime, plan: Plan | None) -> rules.Budget | None:
    """The user's budget as this instance has it cached (no read), resolved on `plan`; after an
    admission, whichever call cached it."""
    return resolved(gate.budgets.recent(uid, now.timestamp()), plan, settings)


def admit(db, settings: Settings, gate: Gate, uid: str, is_free: bool, worst_case_nanos: int, now: datetime,
          feature: str | None = None, plan: Plan | None = None) -> Admission:
    """Raises RateLimited / FreeQuotaExceeded / BudgetExceeded / BudgetUnavailable (nothing left
    reserved) when the call may not go."""
    refusal = gate.limiter.refused(uid, now)
    if refusal is not None:
        raise refusal
    month = now.strftime("%Y-%m")
    budget = resolved(gate.budgets.get(uid, now.timestamp()), plan, settings)  # their document cached, on their plan
    wants_features = gate.features.needs_read(uid, month, feature, settings.max_features)
    guessed = cold.guess(settings, plan, is_free) if budget is None else None
    if guessed is not None:  # nothing cached: the commit goes out beside the read (cold.py)
        pending = background.submit(_read_before, db, settings, uid, month, True, wants_features)

        def learn() -> cold.Learned:
            return _learn(gate, settings, uid, month, plan, now, pending.result(), wants_features)

        def counted_after_read() -> str | None:
            return _counted_as(gate, settings, uid, month, feature, False)

        try:
            return GateCall(db, settings, gate, uid, guessed, now, counted_after_read, None, is_free, worst_case_nanos,
                            ADMISSION_PATIENCE_S, learn).admit()
        except cold.GuessWrong as wrong:
            if wrong.learned.budget.gated(is_free):  # gated again on the budget read, the guess handed back
                return GateCall(db, settings, gate, uid, wrong.learned.budget, now, counted_after_read,
                                wrong.learned.alerts_sent, is_free, worst_case_nanos, ADMISSION_PATIENCE_S,
                                handed_back=wrong.returned).admit()
            budget, wants_features = wrong.learned.budget, False
    alerts_sent = None
    names_unknown = False  # the month's feature names could not be read: count under `other`
    if budget is None or wants_features:
        try:
            read = _read_before(db, settings, uid, month, read_budget=budget is None, read_features=wants_features)
        except FIRESTORE_ERRORS:
            if budget is None:
                return unchecked(settings, uid, rules.budget_from_doc(None, settings, plan), now, feature)
            read = None
            names_unknown = wants_features
        if read is not None:
            if budget is None:
                budget = _learn(gate, settings, uid, month, plan, now, read, False).budget
            if wants_features:
                gate.features.learn(uid, month, read.features)
            alerts_sent = read.alerts_sent

    def counted_as() -> str | None:  # chosen once admitted: a refused call adds no name
        return _counted_as(gate, settings, uid, month, feature, names_unknown)

    if not budget.gated(is_free):
        gate.limiter.acquire(uid, budget, now)  # per-instance rate limits; nothing in Firestore
        return Admission(budget, month, now.strftime("%Y-%m-%d"), local_slot=True, uid=uid, feature=counted_as())
    return GateCall(db, settings, gate, uid, budget, now, counted_as, alerts_sent, is_free,
                    worst_case_nanos, ADMISSION_PATIENCE_S).admit()


def budget_for_renewal(db, settings: Settings, gate: Gate, uid: str, plan: Plan | None, now: datetime,
                       ahead_s: int) -> rules.Budget | None:
    """The user's budget for a lease renewed ahead (renewal.py): as cached, unless the cache
    would expire within `ahead_s`: then read again (and cached), so the calls after the renewal
    find it cached too. None when it cannot be read."""
    cached = gate.budgets.get(uid, now.timestamp() + ahead_s)
    if cached is not None:
        return resolved(cached, plan, settings)
    month = now.strftime("%Y-%m")
    try:
        read = _read_before(db, settings, uid, month, read_budget=True, read_features=False)
    except FIRESTORE_ERRORS:
        return None
    return _learn(gate, settings, uid, month, plan, now, read, False).budget


def _counted_as(gate: Gate, settings: Settings, uid: str, month: str, feature: str | None,
                names_unknown: bool) -> str | None:
    return features.OTHER if names_unknown else gate.features.choose(uid, month, feature, settings.max_features)


def _learn(gate: Gate, settings: Settings, uid: str, month: str, plan: Plan | None, now: datetime,
           read: "_ReadBefore", features_read: bool) -> cold.Learned:
    """A budget document read: cached (with the wallet), resolved on the caller's plan."""
    gate.budgets.put(uid, read.budget, now.timestamp())
    gate.wallets.put(uid, read.wallet, now.timestamp())
    if features_read:
        gate.features.learn(uid, month, read.features)
    return cold.Learned(read.budget.resolve(plan, settings), read.alerts_sent, read.wallet)


@dataclass(frozen=True)
class _ReadBefore:
    budget: BudgetDoc | None
    features: frozenset
    alerts_sent: dict
    wallet: WalletSeen | None = None


def _read_before(db, settings: Settings, uid: str, month: str, read_budget: bool, read_features: bool) -> _ReadBefore:
    """What the gate's commit cannot read back, in one round trip: the budget document (not in
    this instance's cache), the month's alert flags and feature names (maps, not counters)."""
    budget_ref, wallet_ref = store.budget_doc(db, uid), store.wallet_doc(db, uid)
    extra = [budget_ref, wallet_ref] if read_budget else []
    paths = ["alerts_sent"] + (BUDGET_DOC_FIELDS + WALLET_FIELDS if read_budget else [])
    if read_features:  # the names are spread over a hot user's shards: read the month whole
        docs, snaps = reservations.read_month_with(db, uid, month, extra, paths + [reservations.FEATURE_FIELD],
                                                   **BUDGET_READ)
    else:  # the flags are on the base document only (alerts.py)
        base_ref = store.user_month_doc(db, uid, month)
        snaps = {snap.reference.path: snap for snap in db.get_all([base_ref, *extra], field_paths=paths, **BUDGET_READ)}
        base = snaps.get(base_ref.path)
        docs = [base.to_dict() if base is not None and base.exists else None]
    budget = wallet = None
    if read_budget:
        snap = snaps.get(budget_ref.path)
        budget = BudgetDoc(snap.to_dict() if snap is not None and snap.exists else None)
        wallet = wallet_seen(snaps.get(wallet_ref.path))
    totals = reservations.totals_of(docs)
    return _ReadBefore(budget, totals.features or frozenset(), totals.alerts_sent, wallet)
