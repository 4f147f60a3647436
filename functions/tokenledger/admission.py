"""May this call go, budget-wise? And the user's month after it: the budget gate of a chat call.

Before the upstream call: paid calls of users with an enforced budget reserve their worst-case
cost (reservations.py) and are refused when it does not fit; free-model calls are never refused
by the dollar budget but count against `free_daily_requests`. After the call: the month is read
back once, real-time alerts are written for thresholds reached, and the status is returned.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from google.api_core import exceptions as gexc

from . import alerts, budgets, reservations, store
from .config import Settings

BUDGET_READ = {"timeout": 10.0}


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
    budget: budgets.Budget
    month: str
    day: str
    reservation: reservations.Reservation | None = None
    free_requests_today: int | None = None


def read_budget(db, uid: str, settings: Settings) -> budgets.Budget:
    snap = store.budget_doc(db, uid).get(**BUDGET_READ)
    return budgets.budget_from_doc(snap.to_dict() if snap.exists else None, settings)


def admit(db, settings: Settings, uid: str, is_free: bool, worst_case_nanos: int, now: datetime) -> Admission:
    """Raises BudgetExceeded / FreeQuotaExceeded (nothing left reserved) when the call may not go."""
    budget = read_budget(db, uid, settings)
    admission = Admission(budget, now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"))
    if is_free:
        if budget.free_daily_requests:
            ok, count = reservations.count_free_request(db, uid, admission.day, admission.month,
                                                        budget.free_daily_requests)
            if not ok:
                raise FreeQuotaExceeded(budget.free_daily_requests, budgets.seconds_to_next_day(now))
            admission.free_requests_today = count
        return admission
    if not budget.enforced:
        return admission
    reservation = reservations.reserve(db, uid, admission.month, worst_case_nanos, now, settings.reservation_ttl_s)
    try:
        totals = reservations.read_month(db, uid, admission.month)
    except gexc.GoogleAPIError:
        reservations.release(db, reservation)
        raise
    if not reservations.admitted(totals, budget):
        reservations.release(db, reservation)
        raise BudgetExceeded(totals.cost_nanos, totals.reserved_nanos - worst_case_nanos,
                             budget.monthly_budget_nanos, worst_case_nanos)
    admission.reservation = reservation
    return admission


def abandon(db, admission: Admission | None) -> None:
    """The call failed before anything was billed: give its reservation back."""
    if admission is not None and admission.reservation is not None:
        reservations.release(db, admission.reservation)
        admission.reservation = None


def after_call(db, settings: Settings, uid: str, admission: Admission, now: datetime) -> dict:
    """The user's month after the call was recorded, with real-time alerts for the thresholds it
    reached (each at most once, see alerts.py). One read when nothing is to be written."""
    totals = reservations.read_month(db, uid, admission.month)
    if admission.budget.has_dollar_budget:
        alerts.write_missing(db, uid, admission.month, admission.budget, totals.cost_nanos, totals.alerts_sent,
                             alerts.REALTIME, now, settings.mail_enabled)
    return budgets.status(admission.budget, admission.month, totals.cost_nanos, totals.reserved_nanos,
                          admission.free_requests_today)
