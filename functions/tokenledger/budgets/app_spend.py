"""The app's own spend against TOKENLEDGER_APP_MONTHLY_BUDGET (the operator's alert, before the
OpenRouter credit runs dry).

Once per scheduled check: the month's global counters (`usage_totals/{month}/shards/*`, one
read per shard) are summed; for every threshold of TOKENLEDGER_APP_ALERT_THRESHOLDS reached,
`admin_alerts/app_spend_{YYYY-MM}_{threshold per mille}` is created once (create(): a second run
or a concurrent one writes nothing). Those alert documents are read first (one get_all), so a run
after the alerts went out writes nothing at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from google.api_core import exceptions as gexc

from tokenledger import money, store
from tokenledger.budgets import rules
from tokenledger.config import Settings

ALERT_TYPE = "app_spend"


@dataclass
class AppSpendReport:
    spent_nanos: int = 0
    reads: int = 0
    written: list[str] = field(default_factory=list)


def alert_id(month: str, threshold: Decimal) -> str:
    return f"{ALERT_TYPE}_{month}_{rules.threshold_flag(threshold)}"


def reached(spent_nanos: int, budget_nanos: int, thresholds) -> list[Decimal]:
    """Thresholds the app's month spend has reached (pure)."""
    if budget_nanos <= 0 or spent_nanos <= 0:
        return []
    return [t for t in thresholds if spent_nanos >= t * budget_nanos]


def alert_doc(month: str, threshold: Decimal, spent: int, budget: int, now: datetime) -> dict:
    pct = round(spent * 100 / budget, 2)
    return {
        "alert_type": ALERT_TYPE, "month": month, "threshold": float(threshold),
        "current_cost": money.usd_float(spent), "current_cost_nanos": spent,
        "monthly_budget": money.usd_float(budget), "monthly_budget_nanos": budget,
        "percentage_used": float(pct),
        "message": (f"The app has spent ${money.usd_float(spent):,.2f} of its ${money.usd_float(budget):,.2f} "
                    f"budget for {month} ({pct}%)."),
        "created_at": now, "source": "scheduled",
    }


def check(db, settings: Settings, now: datetime) -> AppSpendReport:
    report = AppSpendReport()
    if settings.app_monthly_budget is None:
        return report
    month = now.strftime("%Y-%m")
    budget = money.to_nanos(settings.app_monthly_budget)
    shards = list(db.collection(store.TOTALS).document(month).collection(store.SHARDS).select(["cost_nanos"]).stream())
    report.reads += max(len(shards), 1)
    report.spent_nanos = sum(int((s.to_dict() or {}).get("cost_nanos") or 0) for s in shards)
    due = reached(report.spent_nanos, budget, settings.app_alert_thresholds)
    if not due:
        return report
    refs = {alert_id(month, t): db.collection(store.ADMIN_ALERTS).document(alert_id(month, t)) for t in due}
    existing = {snap.id for snap in db.get_all(list(refs.values())) if snap.exists}
    report.reads += len(refs)
    for t in due:
        aid = alert_id(month, t)
        if aid in existing:
            continue
        try:
            refs[aid].create(alert_doc(month, t, report.spent_nanos, budget, now))
        except gexc.AlreadyExists:
            continue
        report.written.append(aid)
    return report
