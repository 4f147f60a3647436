"""The scheduled budget check: every budget against its month, missing alerts written, expired
reservations released.

Reads per run: one page query over `user_budgets` (one read per budget) and one `get_all` of the
month documents per page (one read per budget); then, when the configured default has a dollar
budget, one collection-group query over this month's documents (one read per user active this
month) for the users without a budget document; never the usage rows. The month document says
which alerts were sent (`alerts_sent`), so alert documents are not read either. Every write is
once-only (alerts by create(), releases by precondition), so a run that stops halfway, or two
runs at the same time, are safe: re-running writes only what is still missing.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime

from google.cloud import firestore

from tokenledger import logs, store
from tokenledger.budgets import alerts, reservations, rules
from tokenledger.config import Settings

MONTH_FIELDS = ["cost_nanos", "reserved_nanos", "alerts_sent"]


@dataclass
class CheckReport:
    month: str
    budgets: int = 0
    default_budgets: int = 0  # users checked against the configured default (no budget document)
    reads: int = 0
    alerts_written: int = 0
    over_budget: int = 0
    reservations_released: int = 0
    seconds: float = 0.0
    alerts: list[str] = field(default_factory=list)  # ids written, for the logs and the demo


def check_budgets(db, settings: Settings, now: datetime, progress=None) -> CheckReport:
    """One run. `progress(done_budgets)` is called after each page (for scripts)."""
    started = time.monotonic()
    month = now.strftime("%Y-%m")
    report = CheckReport(month=month)
    released, reads = reservations.release_expired(db, now, settings.budget_check_page_size)
    report.reservations_released += released
    report.reads += reads

    query = db.collection(store.BUDGETS).order_by("__name__").limit(settings.budget_check_page_size)
    last = None
    while True:
        page = list((query.start_after(last) if last is not None else query).stream())
        report.reads += max(len(page), 1)  # an empty result still costs one read
        if not page:
            break
        month_refs = [store.user_month_doc(db, snap.id, month) for snap in page]
        months = {snap.reference.parent.parent.id: snap for snap in db.get_all(month_refs, field_paths=MONTH_FIELDS)}
        report.reads += len(month_refs)
        for snap in page:
            budget = rules.budget_from_doc(snap.to_dict(), settings)
            month_snap = months.get(snap.id)
            totals = reservations.month_totals(month_snap.to_dict() if month_snap is not None and month_snap.exists else None)
            if budget.has_dollar_budget and totals.cost_nanos >= budget.monthly_budget_nanos > 0:
                report.over_budget += 1
            written = alerts.write_missing(db, snap.id, month, budget, totals.cost_nanos, totals.alerts_sent,
                                           alerts.SCHEDULED, now, settings.mail_enabled)
            report.alerts_written += len(written)
            report.alerts.extend(alerts.alert_id(snap.id, month, t) for t in written)
        report.budgets += len(page)
        if progress:
            progress(report.budgets)
        if len(page) < settings.budget_check_page_size:
            break
        last = page[-1]
    if rules.default_budget(settings).has_dollar_budget:
        _check_default_budgets(db, settings, now, report, progress)
    report.seconds = time.monotonic() - started
    return report


def _check_default_budgets(db, settings: Settings, now: datetime, report: CheckReport, progress) -> None:
    """Users active this month without a budget document are on the configured default."""
    budget = rules.default_budget(settings)
    query = (
        db.collection_group(store.MONTHS)
        .where(filter=firestore.FieldFilter("month", "==", report.month))
        .select(MONTH_FIELDS)
        .order_by("__name__")
        .limit(settings.budget_check_page_size)
    )
    last = None
    while True:
        page = list((query.start_after(last) if last is not None else query).stream())
        report.reads += max(len(page), 1)
        if not page:
            return
        uids = [snap.reference.parent.parent.id for snap in page]
        own = {snap.id for snap in db.get_all([store.budget_doc(db, uid) for uid in uids], field_paths=["enforce"])
               if snap.exists}
        report.reads += len(uids)
        for uid, snap in zip(uids, page):
            if uid in own:
                continue  # checked with its own budget above
            totals = reservations.month_totals(snap.to_dict())
            report.default_budgets += 1
            if totals.cost_nanos >= budget.monthly_budget_nanos > 0:
                report.over_budget += 1
            written = alerts.write_missing(db, uid, report.month, budget, totals.cost_nanos, totals.alerts_sent,
                                           alerts.SCHEDULED, now, settings.mail_enabled)
            report.alerts_written += len(written)
            report.alerts.extend(alerts.alert_id(uid, report.month, t) for t in written)
        if progress:
            progress(report.budgets + report.default_budgets)
        if len(page) < settings.budget_check_page_size:
            return
        last = page[-1]


def log_report(report: CheckReport) -> None:
    fields = {k: v for k, v in dataclasses.asdict(report).items() if k != "alerts"}
    logs.budget_check_done(**{**fields, "seconds": round(report.seconds, 2)})
