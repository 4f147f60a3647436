"""Reading back what a user has in Firestore, for assertions."""
from __future__ import annotations

from collections import Counter, defaultdict

from google.cloud.firestore_v1.base_query import FieldFilter


def rows_for(db, uid: str) -> list[dict]:
    query = db.collection("usage_tracking").where(filter=FieldFilter("user_id", "==", uid))
    return [snap.to_dict() | {"_id": snap.id} for snap in query.stream()]


def month_doc(db, uid: str, month: str) -> dict | None:
    snap = db.collection("user_usage").document(uid).collection("months").document(month).get()
    return snap.to_dict() if snap.exists else None


def day_docs(db, uid: str) -> list[dict]:
    return [s.to_dict() for s in db.collection("user_usage").document(uid).collection("days").stream()]


def nothing_written(db, uid: str) -> bool:
    """No usage row and no usage counted; the budget gate's own counters (a reservation taken
    and given back, the minute's request count) may be there, all settled."""
    has_rows = bool(rows_for(db, uid))
    months = [s.to_dict() for s in db.collection("user_usage").document(uid).collection("months").stream()]
    counted = any(m.get("calls") or m.get("reserved_nanos") or m.get("in_flight") for m in months)
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
