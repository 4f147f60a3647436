"""What one call adds to the per-user month/day rollups and the global totals (pure).

The same numbers feed the ledger's Increments and any later correction (a settled pending
row adds the difference), so the rollups always equal the sum of the rows.
"""
from __future__ import annotations

import re

from tokenledger import money
from tokenledger.metering.usage import UsageRecord

UNATTRIBUTED = "(none)"
UNKNOWN_PROVIDER = "(unknown)"
# Firestore refuses field names matching __.*__ (and empty ones); a map key taken from a request
# or an answer must never make a call unrecordable, so such a name is kept in parentheses.
RESERVED_KEY = re.compile(r"^__.*__$|^$", re.DOTALL)


def map_key(name: str) -> str:
    return f"({name})" if RESERVED_KEY.match(name) else name


def _breakdown(record: UsageRecord) -> dict:
    return {
        "calls": 1,
        "tokens": record.total_tokens,
        "cost": money.usd_float(record.cost_nanos),
        "cost_nanos": record.cost_nanos,
    }


def _counters(record: UsageRecord) -> dict:
    """The counters both the per-user rollups and the global totals keep."""
    free = record.is_free
    return {
        "calls": 1,
        "free_calls": 1 if free else 0,
        "paid_calls": 0 if free else 1,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": record.total_tokens,
        "free_tokens": record.total_tokens if free else 0,
        "paid_tokens": 0 if free else record.total_tokens,
        "cost": money.usd_float(record.cost_nanos),
        "cost_nanos": record.cost_nanos,
        # what prepaid credits paid of it (only when they did: no field for users without a wallet)
        **({"credits_nanos": record.credits_nanos} if record.credits_nanos else {}),
    }


def user_delta(record: UsageRecord) -> dict:
    """Counters added to user_usage/{uid}/months/{m} and .../days/{d} for this call."""
    return {
        **_counters(record),
        "cached_tokens": record.cached_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "latency_ms_total": record.latency_ms,
        "by_model": {map_key(record.model): _breakdown(record)},
        "by_feature": {map_key(record.feature or UNATTRIBUTED): _breakdown(record)},
        "by_provider": {map_key(record.provider or UNKNOWN_PROVIDER): _breakdown(record)},
    }


def month_delta(record: UsageRecord) -> dict:
    """Counters added to user_usage/{uid}/months/{m}: the user's, plus the call's cost under its
    day of the month (`day_costs.<DD>`, nanos), which the scheduled check's forecasts and spikes
    read from the month document it reads anyway (budgets/trends.py)."""
    return {**user_delta(record), "day_costs": {record.day[8:10]: record.cost_nanos}}


def totals_delta(record: UsageRecord) -> dict:
    """Counters added to one shard of usage_totals/{month}."""
    return _counters(record)


def difference(new: dict, old: dict) -> dict:
    """new - old, key by key (nested maps too): what a corrected row adds to the rollups.

    Keys whose difference is zero are left out, so a correction touches only what changed.
    """
    out: dict = {}
    for key in new.keys() | old.keys():
        a, b = new.get(key), old.get(key)
        if isinstance(a, dict) or isinstance(b, dict):
            sub = difference(a or {}, b or {})
            if sub:
                out[key] = sub
        else:
            diff = (a or 0) - (b or 0)
            if diff:
                out[key] = diff
    return out
