"""May this call go, budget-wise? And the user's month after it: the budget gate of a chat call.

Before the upstream call: paid calls of users with an enforced budget reserve their worst-case
cost (reservations.py) and are refused when it does not fit; free-model calls are never refused
by the dollar budget but count against `free_daily_requests`. After the call: the month is read
back once, real-time alerts are written for thresholds reached, and the status is returned.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from tokenledger import logs, store
from tokenledger.budgets import alerts, reservations, rules
from tokenledger.config import Settings

# The budget gate must not hold a call for long when Firestore is slow or down (a few quick
# retries, then a decision: see read_budget).
QUICK_RETRY = gretry.Retry(initial=0.05, maximum=0.5, multiplier=2.0, timeout=2.0)
BUDGET_READ = {"timeout": 2.0, "retry": QUICK_RETRY}
# How long a call that would fit once other calls' reservations settle keeps trying (seconds).
ADMISSION_PATIENCE_S = 2.0


class BudgetExceeded(Exception):
    def __init__(self, spent_nanos: int, reserved_nanos: int, budget_nanos: int, estimate_nanos: int):
        super().__init__("budget exceeded")
        self.spent_nanos = spent_nanos
        self.reserved_nanos = reserved_nanos  # other calls' open reservations at the check
        self.budget_nanos = budget_nanos
        self.estimate_nanos = estimate_nanos


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
    checked: bool = True  # False: Firestore was unreachable and the call went on unchecked


class BudgetUnavailable(Exception):
    """The budget of an enforced user cannot be checked right now (Firestore unreachable)."""


def read_budget(db, uid: str, settings: Settings, fail_open: bool = False) -> rules.Budget:
    """The user's budget in force. With fail_open (the chat path), when Firestore cannot be read
    the call goes on as if the user had no budget, like the ledger's own outage path (the
    answer is given, the record replayed later) — unless the configured default budget is
    enforced, where it is refused (BudgetUnavailable: 503)."""
    try:
        snap = store.budget_doc(db, uid).get(**BUDGET_READ)
    except (gexc.GoogleAPIError, gexc.RetryError) as exc:
        if not fail_open or settings.default_enforce:
            raise BudgetUnavailable() from exc
        logs.budget_unavailable(user_id=uid, error=type(exc).__name__)
        return rules.Budget(None, settings.default_alert_thresholds, source="unavailable")
    return rules.budget_from_doc(snap.to_dict() if snap.exists else None, settings)


def admit(db, settings: Settings, uid: str, is_free: bool, worst_case_nanos: int, now: datetime) -> Admission:
    """Raises BudgetExceeded / FreeQuotaExceeded (nothing left reserved) when the call may not go."""
    budget = read_budget(db, uid, settings, fail_open=True)
    if budget.source == "unavailable":
        return Admission(budget, now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), checked=False)
    admission = Admission(budget, now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"))
    if is_free:
        if budget.free_daily_requests:
            ok, count = reservations.count_free_request(db, uid, admission.day, admission.month,
                                                        budget.free_daily_requests)
            if not ok:
                raise FreeQuotaExceeded(budget.free_daily_requests, rules.seconds_to_next_day(now))
            admission.free_requests_today = count
        return admission
    if not budget.enforced:
        return admission
    admission.reservation = reserve_within_budget(db, settings, uid, admission.month, budget, worst_case_nanos, now)
    return admission


def reserve_within_budget(db, settings: Settings, uid: str, month: str, budget: rules.Budget,
                          worst_case_nanos: int, now: datetime) -> reservations.Reservation:
    """Reserve, read back, keep or give back. When only other calls' open reservations stand in
    the way (the call would fit once they settle), wait for room for up to ADMISSION_PATIENCE_S
    — reading the month after short random pauses, holding NO reservation meanwhile — and
    reserve again once it fits. Waiters that kept reserving would crowd out the one call that
    fits (measured: a 50-call burst then admitted 9 where 10 fit)."""
    deadline = time.monotonic() + ADMISSION_PATIENCE_S
    pause = 0.05
    while True:
        try:
            reservation = reservations.reserve(db, uid, month, worst_case_nanos, now, settings.reservation_ttl_s)
        except (gexc.GoogleAPIError, gexc.RetryError) as exc:
            raise BudgetUnavailable() from exc
        try:
            totals = reservations.read_month(db, uid, month, retry=QUICK_RETRY)
        except (gexc.GoogleAPIError, gexc.RetryError) as exc:
            abandon_reservation(db, reservation)
            raise BudgetUnavailable() from exc
        if reservations.admitted(totals, budget):
            return reservation
        reservations.release(db, reservation)
        others = totals.reserved_nanos - worst_case_nanos
        while True:
            fits_alone = rules.admits(totals.cost_nanos, worst_case_nanos, budget.monthly_budget_nanos)
            if not fits_alone or others <= 0 or time.monotonic() + pause > deadline:
                raise BudgetExceeded(totals.cost_nanos, others, budget.monthly_budget_nanos, worst_case_nanos)
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 1.5, 0.3)
            try:
                totals = reservations.read_month(db, uid, month, retry=QUICK_RETRY)
            except (gexc.GoogleAPIError, gexc.RetryError) as exc:
                raise BudgetUnavailable() from exc
            others = totals.reserved_nanos
            if rules.admits(totals.cost_nanos, others + worst_case_nanos, budget.monthly_budget_nanos):
                break  # room now: reserve again


def abandon_reservation(db, reservation: reservations.Reservation) -> None:
    """Best effort: if Firestore is down the release fails too, and the budget check releases
    the reservation when it expires."""
    try:
        reservations.release(db, reservation)
    except (gexc.GoogleAPIError, gexc.RetryError) as exc:
        logs.reservation_release_failed(reservation_id=reservation.reservation_id, error=type(exc).__name__)


def abandon(db, admission: Admission | None) -> None:
    """The call failed before anything was billed: give its reservation back."""
    if admission is not None and admission.reservation is not None:
        reservations.release(db, admission.reservation)
        admission.reservation = None


def after_call(db, settings: Settings, uid: str, admission: Admission, now: datetime) -> dict | None:
    """The user's month after the call was recorded, with real-time alerts for the thresholds it
    reached (each at most once, see alerts.py). One read when nothing is to be written."""
    if not admission.checked:
        return None
    totals = reservations.read_month(db, uid, admission.month, retry=QUICK_RETRY)
    if admission.budget.has_dollar_budget:
        alerts.write_missing(db, uid, admission.month, admission.budget, totals.cost_nanos, totals.alerts_sent,
                             alerts.REALTIME, now, settings.mail_enabled)
    return rules.status(admission.budget, admission.month, totals.cost_nanos, totals.reserved_nanos,
                          admission.free_requests_today)
