"""Forecast and spike alerts of the scheduled check: the documents and their once-only write.

`budget_forecast` is written once per user and month (`{uid}_{YYYY-MM}_forecast`), `usage_spike`
once per user and day (`{uid}_{YYYY-MM-DD}_spike`), each with create() and, in the same batch, a
flag in the month document's `alerts_sent` (`forecast`, `spike_<DD>`) that the check reads with
the month document, so a later run neither recomputes a write nor reads the alert documents.
Both land in `budget_alerts`: the user sees them in GET /v1/alerts and on their page, and they
are delivered to the webhooks like every alert.
"""
from __future__ import annotations

from datetime import datetime

from google.api_core import exceptions as gexc

from tokenledger import money, store
from tokenledger.budgets import rules, trends
from tokenledger.config import Settings

FORECAST = "budget_forecast"
SPIKE = "usage_spike"
FORECAST_FLAG = "forecast"


def spike_flag(day: int) -> str:
    return f"spike_{trends.day_key(day)}"


def _usd(nanos: int) -> float:
    return money.usd_float(nanos)


def forecast_doc(uid: str, month: str, spent: int, budget: rules.Budget, f: trends.Forecast, now: datetime) -> dict:
    limit = budget.monthly_budget_nanos or 0
    return {
        "user_id": uid, "month": month, "alert_type": FORECAST,
        "current_cost": _usd(spent), "current_cost_nanos": spent,
        "monthly_budget": _usd(limit), "monthly_budget_nanos": limit,
        "projected": _usd(f.projected_nanos), "projected_nanos": f.projected_nanos,
        "projected_day": f.projected_day, "rate_per_day": _usd(f.rate_nanos_per_day),
        "rate_per_day_nanos": f.rate_nanos_per_day, "method": f.method,
        "created_at": now, "source": "scheduled",
    }


def spike_doc(uid: str, month: str, day: str, s: trends.Spike, settings: Settings, now: datetime) -> dict:
    return {
        "user_id": uid, "month": month, "day": day, "alert_type": SPIKE,
        "day_cost": _usd(s.day_nanos), "day_cost_nanos": s.day_nanos,
        "median_day_cost": _usd(s.median_nanos), "median_day_cost_nanos": s.median_nanos,
        "history_days": s.history_days, "factor": str(settings.spike_factor), "min_usd": str(settings.spike_min_usd),
        "created_at": now, "source": "scheduled",
    }


def _write_once(db, alert_id: str, doc: dict, uid: str, month: str, flag: str) -> bool:
    batch = db.batch()
    batch.create(store.alert_doc(db, alert_id), doc)
    batch.set(store.user_month_doc(db, uid, month),
              {"alerts_sent": {flag: True}, "user_id": uid, "month": month}, merge=True)
    try:
        batch.commit(timeout=10.0)
    except gexc.AlreadyExists:
        return False
    return True


def write_trends(db, settings: Settings, now: datetime, uid: str, budget: rules.Budget, docs: list[dict],
                 spent: int, sent: dict) -> list[str]:
    """The forecast and spike alerts this user's month documents call for; returns the ids written."""
    month, today = now.strftime("%Y-%m"), now.date()
    costs = trends.day_costs_of(docs)
    written = []
    if settings.forecast_days > 0 and budget.has_dollar_budget and not sent.get(FORECAST_FLAG):
        f = trends.forecast(today, costs, spent, budget.monthly_budget_nanos, settings.forecast_days)
        aid = f"{uid}_{month}_forecast"
        if f and _write_once(db, aid, forecast_doc(uid, month, spent, budget, f, now), uid, month, FORECAST_FLAG):
            written.append(aid)
    if not sent.get(spike_flag(today.day)):
        s = trends.spike(today, costs, settings.spike_factor, settings.spike_min_usd)
        aid = f"{uid}_{today.isoformat()}_spike"
        if s and _write_once(db, aid, spike_doc(uid, month, today.isoformat(), s, settings, now), uid, month,
                             spike_flag(today.day)):
            written.append(aid)
    return written
