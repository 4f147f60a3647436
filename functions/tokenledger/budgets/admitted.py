"""What the budget gate decides and keeps: the per-instance Gate, the Admission a call goes with,
the refusals, and the user's wallet as this instance knows it (admission.py, gate_call.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc

from tokenledger import logs, store
from tokenledger.budgets import features, leases, limits, reservations, rules
from tokenledger.budgets.cache import BudgetCache
from tokenledger.config import Settings

# The budget gate must not hold a call for long when Firestore is down (quick retries, then a
# decision: 503). Not too short either: a fresh instance's first Firestore call opens its channel
# and took over 2 s on a loaded machine; failing closed, a tight deadline would refuse it.
QUICK_RETRY = reservations.GATE_RETRY
BUDGET_READ = {"timeout": 8.0, "retry": QUICK_RETRY}
FIRESTORE_ERRORS = (gexc.GoogleAPIError, gexc.RetryError)
WALLET_FIELDS = ["balance_nanos", "held_nanos", "low_balance_nanos"]


@dataclass
class WalletSeen:
    """This instance's knowledge of a user's wallet (cached with the budget): it exists, and what
    was left in it (balance - held) when a commit last read it (None: not read yet)."""
    exists: bool
    room_nanos: int | None = None
    low_nanos: int | None = None  # the user's own low-balance alert threshold (None: the deployment's)
    alerted_epoch: int | None = None  # the crossing this instance wrote (or found) the alert of


class Gate:
    """What one instance keeps between calls: budgets, rate counters, feature names."""

    def __init__(self, settings: Settings):
        self.budgets = BudgetCache(settings.budget_cache_s)
        self.limiter = limits.LocalLimiter()
        self.features = features.FeatureBook()
        self.leases = leases.LeaseBook()
        self.wallets = BudgetCache(settings.budget_cache_s)  # uid -> WalletSeen


class BudgetExceeded(Exception):
    def __init__(self, spent_nanos: int, reserved_nanos: int, budget_nanos: int, estimate_nanos: int,
                 wallet: reservations.WalletTotals | None = None):
        super().__init__("budget exceeded")
        self.spent_nanos = spent_nanos  # of the allowance
        self.reserved_nanos = reserved_nanos  # other calls' open reservations at the check
        self.budget_nanos = budget_nanos
        self.estimate_nanos = estimate_nanos
        self.wallet = wallet  # the user's wallet (balance, held by others) when they have one: credits_exhausted


class FreeQuotaExceeded(Exception):
    def __init__(self, limit: int, retry_after_s: int):
        super().__init__("free quota exceeded")
        self.limit = limit
        self.retry_after_s = retry_after_s


@dataclass
class Admission:
    budget: rules.Budget
    month: str
    day: str
    reservation: reservations.Reservation | None = None
    free_requests_today: int | None = None
    checked: bool = True  # False: Firestore was unreachable and the call went on unchecked (fail-open)
    totals: reservations.MonthTotals | None = None  # as read by the gate (this call's reservation in it)
    reserved_nanos: int = 0  # this call's own reservation (kept after the ledger settles it)
    feature: str | None = None  # the name the call is counted under (features.py)
    local_slot: bool = False  # holds a per-instance in-flight slot (calls that skip the shared gate)
    uid: str = ""
    lease: leases.Lease | None = None  # admitted against this lease (settled into it by the ledger)
    credits_reserved_nanos: int = 0  # of the call's worst case, what its wallet hold covers (reserved_nanos: allowance)


class BudgetUnavailable(Exception):
    """The budget of an enforced user cannot be checked right now (Firestore unreachable)."""


def unchecked(settings: Settings, uid: str, budget: rules.Budget, now: datetime, feature: str | None) -> Admission:
    """Firestore unreachable: 503, unless the operator prefers availability (fail-open)."""
    if not settings.budget_fail_open:
        raise BudgetUnavailable()
    logs.budget_unavailable(user_id=uid, error="unreachable")
    return Admission(budget, now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), checked=False, feature=feature, uid=uid)


def wallet_seen(snap) -> WalletSeen:
    if snap is None or not snap.exists:
        return WalletSeen(False)
    doc = snap.to_dict() or {}
    low = doc.get("low_balance_nanos")
    return WalletSeen(True, int(doc.get("balance_nanos") or 0) - int(doc.get("held_nanos") or 0),
                      None if low is None else int(low))


def read_wallet(db, gate: Gate, uid: str, now: datetime) -> WalletSeen | None:
    """The user's wallet, read (one read: a call refused for its budget, whose instance knew of no
    wallet — credits bought since are used at once). None when it cannot be read."""
    try:
        seen = wallet_seen(store.wallet_doc(db, uid).get(field_paths=WALLET_FIELDS, **BUDGET_READ))
    except FIRESTORE_ERRORS:
        return None
    gate.wallets.put(uid, seen, now.timestamp())
    return seen


