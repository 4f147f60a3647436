"""Reading back what a user has in Firestore, for assertions."""
from __future__ import annotations

from collections import Counter, defaultdict

from google.cloud.firestore_v1.base_query import FieldFilter


def rows_for(db, uid: str) -> list[dict]:
    query = db.collection("usage_tracking").where(filter=FieldFilter("user_id", "==", uid))
    return [snap.to_dict() | {"_id": snap.id} for snap in query.stream()]


def _merge(into: dict, doc: dict) -> dict:
    """Sum numbers (nested maps too); other fields are taken from the first document."""
    for key, value in doc.items():
        if key == "shard":
            continue
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value
        else:
            into.setdefault(key, value)
    return into


def _periods(db, uid: str, collection: str) -> dict[str, dict]:
    """A user's rollup periods: a period is its base document `{period}` plus any shards
    `{period}~{k}` (a user calling faster than about once a second), summed."""
    merged: dict[str, dict] = {}
    for snap in db.collection("user_usage").document(uid).collection(collection).stream():
        _merge(merged.setdefault(snap.id.split("~")[0], {}), snap.to_dict())
    return merged


def month_doc(db, uid: str, month: str) -> dict | None:
    return _periods(db, uid, "months").get(month)


def day_doc(db, uid: str, day: str) -> dict | None:
    return _periods(db, uid, "days").get(day)


def day_docs(db, uid: str) -> list[dict]:
    return list(_periods(db, uid, "days").values())


def leases_of(db, uid: str) -> list[dict]:
    """The user's budget leases (budgets/leases.py): what an instance keeps reserved for the
    user's next calls between calls."""
    query = db.collection("reservations").where(filter=FieldFilter("user_id", "==", uid))
    return [data for data in (snap.to_dict() for snap in query.stream()) if data.get("lease")]


def held_beyond_leases(db, uid: str, month: str) -> tuple[int, int]:
    """(reserved_nanos, in_flight) of the user's month minus what their lease documents hold
    (each lease: its amount and one slot): (0, 0) when no call is in progress and nothing else
    holds any of the budget."""
    totals = month_doc(db, uid, month) or {}
    leases = [lease for lease in leases_of(db, uid) if lease["month"] == month]
    return (int(totals.get("reserved_nanos") or 0) - sum(int(lease["amount_nanos"]) for lease in leases),
            int(totals.get("in_flight") or 0) - len(leases))


def expire_leases(db, uid: str) -> int:
    """Release the user's leases as the scheduled check does once they have expired."""
    from datetime import datetime, timezone

    from tokenledger.budgets import reservations

    released, _ = reservations.release_expired(db, datetime(2100, 1, 1, tzinfo=timezone.utc), user_id=uid)
    return released


def nothing_written(db, uid: str) -> bool:
    """No usage row and no usage counted; the budget gate's own counters may be there, settled:
    a reservation taken and given back, the minute's request count, and the lease an instance
    keeps for the user's next call (its amount and slot, nothing beyond)."""
    has_rows = bool(rows_for(db, uid))
    months = _periods(db, uid, "months")
    counted = any(m.get("calls") or held_beyond_leases(db, uid, month) != (0, 0) for month, m in months.items())
    return not has_rows and not counted


COUNTERS = (
    "calls",
    "free_calls",
    "paid_calls",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "latency_ms_total",
    "free_tokens",
    "paid_tokens",
    "cost_nanos",
)


def expected_rollup(rows: list[dict]) -> dict:
    """The rollup the rows imply: every counter and every breakdown."""
    totals = Counter()
    breakdowns = {name: defaultdict(Counter) for name in ("by_model", "by_feature", "by_provider")}
    for row in rows:
        free = row["is_free"]
        totals.update(
            {
                "calls": 1,
                "free_calls": int(free),
                "paid_calls": int(not free),
                "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"],
                "total_tokens": row["total_tokens"],
                "cached_tokens": row["cached_tokens"],
                "cache_write_tokens": row["cache_write_tokens"],
                "reasoning_tokens": row["reasoning_tokens"],
                "latency_ms_total": row["latency_ms"],
                "free_tokens": row["total_tokens"] if free else 0,
                "paid_tokens": 0 if free else row["total_tokens"],
                "cost_nanos": row["cost_nanos"],
            }
        )
        keys = {
            "by_model": row["model"],
            "by_feature": row["feature"] or "(none)",
            "by_provider": row["provider"] or "(unknown)",
        }
        for name, key in keys.items():
            breakdowns[name][key].update({"calls": 1, "tokens": row["total_tokens"], "cost_nanos": row["cost_nanos"]})
    result = {name: totals[name] for name in COUNTERS}
    for name, groups in breakdowns.items():
        result[name] = {key: dict(counter) for key, counter in groups.items()}
    return result


def actual_rollup(doc: dict) -> dict:
    result = {name: doc.get(name, 0) for name in COUNTERS}
    for name in ("by_model", "by_feature", "by_provider"):
        result[name] = {
            key: {"calls": v["calls"], "tokens": v["tokens"], "cost_nanos": v["cost_nanos"]}
            for key, v in (doc.get(name) or {}).items()
        }
    return result


def expected_day_costs(rows: list[dict]) -> dict:
    """The month document's `day_costs` the rows imply: cost per day of the month, in nanos."""
    days = Counter()
    for row in rows:
        days[row["day"][8:10]] += row["cost_nanos"]
    return {day: nanos for day, nanos in days.items() if nanos}
