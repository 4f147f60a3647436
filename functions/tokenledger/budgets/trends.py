"""Forecasts and spikes (pure): from one user's daily costs of this month, is the month on course
to pass the budget, and did today's spending jump?

The daily costs come from the month document itself (`day_costs.<DD>`, nanos, incremented by
the ledger's commit beside `cost_nanos`), so the scheduled check computes both from the one
document it already reads per user: no day documents, no usage rows.

Forecast (`budget_forecast`): with d = today's day of the month (UTC) and n = min(FORECAST_DAYS,
d - 1) full days before today, the daily rate r = (cost of days d-n .. d-1) / n, days without
spending counting 0. The projection is
    projected = spent before today + max(today's cost, r) + r x (days left after today)
(today counts at least what it has spent). Written when projected > budget while the month's
spend is still under it; `projected_day` is the first day on which spend before it + r per day
from today on reaches the budget. No forecast on the 1st (no full day yet) or with r = 0.

Spike (`usage_spike`): today's cost > SPIKE_FACTOR x the median cost of the days WITH spending
among the previous 14 days (this month's; at least MIN_SPIKE_HISTORY such days) and above
SPIKE_MIN_USD. Days without spending are left out of the median, so a user who works three days a
week is not flagged every Monday.
"""
from __future__ import annotations

import calendar
import math
import statistics
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from tokenledger import money

FIELD = "day_costs"
SPIKE_WINDOW_DAYS = 14
MIN_SPIKE_HISTORY = 3
METHOD = "average of the last {n} full days (days without spending count 0), carried to the month's end"


def day_key(day_of_month: int) -> str:
    return f"{day_of_month:02d}"


def day_costs_of(docs) -> dict[int, int]:
    """{day of month: nanos} summed over a user's month documents (base and shards)."""
    out: dict[int, int] = {}
    for doc in docs:
        for key, nanos in ((doc or {}).get(FIELD) or {}).items():
            if key.isdigit():
                out[int(key)] = out.get(int(key), 0) + int(nanos or 0)
    return out


@dataclass(frozen=True)
class Forecast:
    projected_nanos: int
    projected_day: str  # YYYY-MM-DD
    rate_nanos_per_day: int
    days: int  # n, the days averaged
    method: str


def forecast(today: date, costs: dict[int, int], spent_nanos: int, budget_nanos: int, days: int) -> Forecast | None:
    """The month's projection when it passes the budget while the spend is still under it."""
    d = today.day
    n = min(days, d - 1)
    if n <= 0 or budget_nanos <= 0 or spent_nanos >= budget_nanos:
        return None
    rate = Fraction(sum(costs.get(k, 0) for k in range(d - n, d)), n)
    if rate <= 0:
        return None
    last = calendar.monthrange(today.year, today.month)[1]
    spent_today = costs.get(d, 0)
    before_today = spent_nanos - spent_today
    projected = before_today + max(Fraction(spent_today), rate) + rate * (last - d)
    if projected <= budget_nanos:
        return None
    # Day k (>= d) ends with before_today + r x (k - d + 1) spent, today at least its actual spend.
    if before_today + max(Fraction(spent_today), rate) >= budget_nanos:
        crossing = d
    else:
        crossing = d + math.ceil((budget_nanos - before_today - max(Fraction(spent_today), rate)) / rate)
    return Forecast(math.floor(projected), today.replace(day=min(crossing, last)).isoformat(), math.floor(rate), n,
                    METHOD.format(n=n))


@dataclass(frozen=True)
class Spike:
    day_nanos: int
    median_nanos: int
    history_days: int


def spike(today: date, costs: dict[int, int], factor, min_usd) -> Spike | None:
    """Today's jump, when it is one."""
    if factor <= 0:
        return None
    d = today.day
    spent_today = costs.get(d, 0)
    history = [costs[k] for k in range(max(1, d - SPIKE_WINDOW_DAYS), d) if costs.get(k, 0) > 0]
    if len(history) < MIN_SPIKE_HISTORY or spent_today <= money.to_nanos(min_usd):
        return None
    median = Fraction(statistics.median(Fraction(c) for c in history))
    if spent_today <= Fraction(factor) * median:
        return None
    return Spike(spent_today, math.floor(median), len(history))
