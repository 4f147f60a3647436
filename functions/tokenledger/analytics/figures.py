"""Summaries of rollup documents (pure: no I/O).

Every sum is over integers: token counts and `cost_nanos`. The float `cost` stored beside
them is for people; here it is only ever derived from the summed nanos, so an answer agrees
with the raw rows to the nano-dollar however many documents it adds up.
"""
from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from tokenledger import money

# Counters of user_usage/{uid}/months|days/* that a summary adds up.
# Counters of usage_totals/{month}/shards/*.
TOTAL_COUNTERS = (
    "calls",
    "free_calls",
    "paid_calls",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "free_tokens",
    "paid_tokens",
    "cost_nanos",
)
# Counters of user_usage/{uid}/months|days/* that a summary adds up: the totals' and more.
USER_COUNTERS = TOTAL_COUNTERS + (
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "latency_ms_total",
)
BREAKDOWNS = ("by_model", "by_feature", "by_provider")
BREAKDOWN_COUNTERS = ("calls", "tokens", "cost_nanos")
GRANULARITIES = ("day", "month")


class RangeError(ValueError):
    """A date range a caller asked for that cannot be answered; `code` is the API's slug."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> list[str]:
        return [(self.start + timedelta(days=i)).isoformat() for i in range(self.days)]

    def each_month(self) -> list[str]:
        months, year, month = [], self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months

    def whole_months(self) -> set[str]:
        """Months the range covers from their first to their last day (read as one document)."""
        whole = set()
        for key in self.each_month():
            first, last = month_bounds(key)
            if self.start <= first and last <= self.end:
                whole.add(key)
        return whole


def parse_day(value: str, name: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise RangeError("invalid_date", f"'{name}' must be a date as YYYY-MM-DD, got '{value}'.") from None


def parse_month(value: str, name: str = "month") -> str:
    try:
        if len(value) != 7:
            raise ValueError
        date.fromisoformat(f"{value}-01")
    except (TypeError, ValueError):
        raise RangeError("invalid_month", f"'{name}' must be a month as YYYY-MM, got '{value}'.") from None
    return value


def month_bounds(month: str) -> tuple[date, date]:
    year, mon = int(month[:4]), int(month[5:7])
    return date(year, mon, 1), date(year, mon, calendar.monthrange(year, mon)[1])


def date_range(start: str | None, end: str | None, today: date, max_days: int) -> DateRange:
    """`from`/`to` query values -> a checked range. Defaults: the current month up to today."""
    first = parse_day(start, "from") if start else None
    last = parse_day(end, "to") if end else None
    if first is None and last is None:
        first, last = today.replace(day=1), today
    elif first is None:
        first = last.replace(day=1)
    elif last is None:
        last = max(first, min(today, month_bounds(first.strftime("%Y-%m"))[1]))
    if first > last:
        raise RangeError("invalid_range", f"'from' ({first}) is after 'to' ({last}).")
    span = DateRange(first, last)
    if span.days > max_days:
        raise RangeError(
            "range_too_long", f"The range covers {span.days} days; this API answers at most {max_days} at a time."
        )
    return span


def _empty(counters: Iterable[str]) -> dict:
    return {name: 0 for name in counters}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def add_counters(into: dict, doc: dict, counters: Iterable[str]) -> dict:
    for name in counters:
        into[name] = into.get(name, 0) + _int(doc.get(name))
    return into


def add_breakdowns(into: dict, doc: dict) -> dict:
    for name in BREAKDOWNS:
        groups = into.setdefault(name, {})
        for key, values in (doc.get(name) or {}).items():
            if isinstance(values, dict):
                add_counters(groups.setdefault(key, _empty(BREAKDOWN_COUNTERS)), values, BREAKDOWN_COUNTERS)
    return into


def with_cost(counters: dict) -> dict:
    """Counters plus `cost` (USD float for display) derived from the exact `cost_nanos`."""
    out = dict(counters)
    out["cost"] = money.usd_float(counters.get("cost_nanos", 0))
    return out


def _ratio(numerator: int, denominator: int, places: int) -> float | None:
    if not denominator:
        return None
    return float(round(Decimal(numerator) / Decimal(denominator), places))


def efficiency(totals: dict) -> dict:
    calls, nanos = totals.get("calls", 0), totals.get("cost_nanos", 0)
    return {
        "avg_cost_per_call": _ratio(nanos, calls * 1_000_000_000, 12),
        "cost_per_1k_tokens": _ratio(nanos * 1000, totals.get("total_tokens", 0) * 1_000_000_000, 12),
        "avg_latency_ms": _ratio(totals.get("latency_ms_total", 0), calls, 1),
        "cache_hit_share": _ratio(totals.get("cached_tokens", 0), totals.get("prompt_tokens", 0), 4),
        "free_share_of_calls": _ratio(totals.get("free_calls", 0), calls, 4),
    }


def ranked_breakdown(groups: dict) -> dict:
    """A breakdown map ordered by cost, then calls (dicts keep order in JSON)."""
    ordered = sorted(groups.items(), key=lambda item: (-item[1]["cost_nanos"], -item[1]["calls"], item[0]))
    return {key: with_cost(values) for key, values in ordered}


def summarise(
    docs: dict[str, dict],
    periods: list[str],
    period_of,
) -> dict:
    """Rollup documents -> totals, breakdowns, efficiency and a zero-filled time series.

    `docs` maps a document's period key (YYYY-MM-DD or YYYY-MM) to its data; `period_of`
    maps that key to its series bucket; `periods` are the buckets, in order.
    """
    totals = _empty(USER_COUNTERS)
    breakdowns: dict = {name: {} for name in BREAKDOWNS}
    series = {period: _empty(USER_COUNTERS) for period in periods}
    for key, doc in docs.items():
        add_counters(totals, doc, USER_COUNTERS)
        add_breakdowns(breakdowns, doc)
        bucket = series.get(period_of(key))
        if bucket is not None:
            add_counters(bucket, doc, USER_COUNTERS)
    return {
        "totals": with_cost(totals),
        "efficiency": efficiency(totals),
        **{name: ranked_breakdown(breakdowns[name]) for name in BREAKDOWNS},
        "series": [{"period": period, **with_cost(values)} for period, values in series.items()],
    }


def sum_shards(shards: Iterable[dict]) -> dict:
    totals = _empty(TOTAL_COUNTERS)
    for shard in shards:
        add_counters(totals, shard, TOTAL_COUNTERS)
    return with_cost(totals)


# A top-users entry carries the same counters the global totals keep.
USER_ENTRY_FIELDS = TOTAL_COUNTERS


def user_entry(doc: dict, rank: int) -> dict:
    """One line of the top-users ranking from a month rollup."""
    counters = add_counters({}, doc, USER_ENTRY_FIELDS)
    return {"rank": rank, "user_id": doc.get("user_id"), **with_cost(counters)}


def ranking_key(doc: dict) -> tuple:
    """The order of top-users: cost, then calls (as the Firestore query sorts)."""
    return (-_int(doc.get("cost_nanos")), -_int(doc.get("calls")))
