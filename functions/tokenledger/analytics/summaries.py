"""Reads for analytics: summaries from rollups, top users, global totals, export pages.

Nothing here scans usage rows to answer a summary: a user's usage is read from the day or
month rollup documents in the range (one document per day or month with usage), top users
from about N month rollups, totals from the sharded counters. Only the export reads rows,
and it does so a page at a time behind a cursor.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from tokenledger import periods, store
from tokenledger.analytics import figures

EXPORT_PAGE_SIZE = 500


@dataclass
class Reads:
    """Documents a request read, counted the way Firestore bills: an empty query costs one."""

    documents: int = 0
    queries: int = 0

    def add(self, returned: int) -> None:
        self.queries += 1
        self.documents += max(returned, 1)


def _id_range(collection, low: str, high: str):
    """Documents of `collection` whose id is between low and high (inclusive), by id."""
    doc_id = FieldPath.document_id()
    return (
        collection.where(filter=FieldFilter(doc_id, ">=", collection.document(low)))
        .where(filter=FieldFilter(doc_id, "<=", collection.document(high)))
        .order_by(doc_id)
    )


def _read_range(collection, low: str, high: str, reads: Reads) -> dict[str, dict]:
    """Rollup periods low..high, each summed over its base and shards (`{period}~{k}` sorts after
    its period and before the next one; one query: one snapshot)."""
    last = f"{high}{store.SHARD_SEP}{store.SHARD_SEP}"
    snaps = list(_id_range(collection, low, last).stream())
    reads.add(len(snaps))
    return periods.summed_by_period(snaps)  # {period: base + shards}


def _day_segments(span: figures.DateRange, skip_months: set[str]) -> list[tuple[date, date]]:
    """Runs of consecutive days of the range that are not inside a month read whole."""
    segments: list[tuple[date, date]] = []
    day = span.start
    while day <= span.end:
        if day.strftime("%Y-%m") in skip_months:
            day += timedelta(days=1)
            continue
        start = day
        while day + timedelta(days=1) <= span.end and (day + timedelta(days=1)).strftime("%Y-%m") not in skip_months:
            day += timedelta(days=1)
        segments.append((start, day))
        day += timedelta(days=1)
    return segments


def read_user_rollups(db, uid: str, span: figures.DateRange, granularity: str, reads: Reads) -> dict[str, dict]:
    """The rollup documents that cover `span`: day documents, except that with month
    granularity a month the range covers whole is read as its one month document."""
    user = db.collection(store.USER_USAGE).document(uid)
    whole = span.whole_months() if granularity == "month" else set()
    docs: dict[str, dict] = {}
    if whole:
        docs.update(_read_range(user.collection(store.MONTHS), min(whole), max(whole), reads))
    for start, end in _day_segments(span, whole):
        docs.update(_read_range(user.collection(store.DAYS), start.isoformat(), end.isoformat(), reads))
    return docs


def user_usage(db, uid: str, span: figures.DateRange, granularity: str) -> dict:
    """A user's usage over a date range, from rollups only."""
    reads = Reads()
    docs = read_user_rollups(db, uid, span, granularity, reads)
    if granularity == "month":
        periods, period_of = span.each_month(), (lambda key: key[:7])
    else:
        periods, period_of = span.each_day(), store.period_of
    summary = figures.summarise(docs, periods, period_of)
    return {
        "user_id": uid,
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "granularity": granularity,
        **summary,
        "meta": {"source": "rollups", "documents_read": reads.documents, "queries": reads.queries},
    }


def month_rollups_query(db, month: str):
    """Every user's month rollup for `month`, most expensive first (composite index:
    months collection group, month ASC, cost_nanos DESC, calls DESC)."""
    return (
        db.collection_group(store.MONTHS)
        .where(filter=FieldFilter("month", "==", month))
        .order_by("cost_nanos", direction=firestore.Query.DESCENDING)
        .order_by("calls", direction=firestore.Query.DESCENDING)
    )


def user_month(db, uid: str, month: str, reads: Reads) -> dict:
    """A user's month rollup, base and shards summed (periods.read_docs)."""
    docs = periods.read_docs(db, uid, periods.MONTHS, month)
    reads.add(len(docs))
    return periods.summed(docs)


def top_users(db, month: str, limit: int) -> dict:
    """The month's most expensive users, from their month rollups. A hot user's month is spread
    over shard documents (store.py) and its base document is marked `sharded`: such a user is
    read whole and summed (one more query). Their rank comes from the documents the listing
    reaches first, so a user whose month is split over many shards can rank a little low; the
    numbers shown for every listed user are exact."""
    reads = Reads()
    query = month_rollups_query(db, month)
    entries: dict[str, dict] = {}
    last = None
    while len(entries) < limit:
        page = list((query.start_after(last) if last is not None else query).limit(limit).stream())
        reads.add(len(page))
        for snap in page:
            doc = snap.to_dict() or {}
            uid = doc.get("user_id")
            if not uid or uid in entries or len(entries) >= limit:
                continue
            if doc.get("sharded") or doc.get("shard"):
                doc = {**user_month(db, uid, month, reads), "user_id": uid}
            entries[uid] = doc
        if len(page) < limit:
            break
        last = page[-1]
    # A month document that only holds a budget reservation has no calls yet: not a user of the month.
    ranked = sorted((d for d in entries.values() if d.get("calls")), key=figures.ranking_key)
    users = [figures.user_entry(doc, rank) for rank, doc in enumerate(ranked, 1)]
    return {
        "month": month,
        "limit": limit,
        "users": users,
        "meta": {"source": "rollups", "documents_read": reads.documents, "queries": reads.queries},
    }


def active_users(db, month: str) -> int:
    """Users with at least one call in the month: a count aggregation over month rollups
    (composite index: months collection group, month ASC, calls ASC), less the shard documents
    with calls (index month ASC, shard ASC, calls ASC): every active user has a base document
    with calls, because the first call of a user's month on an instance is always counted there
    (hot_users.py). A shard may hold only a hot user's reservations (the budget gate's), no
    calls: such a shard is in neither count."""
    months = db.collection_group(store.MONTHS).where(filter=FieldFilter("month", "==", month))
    with_calls = months.where(filter=FieldFilter("calls", ">", 0))
    shards = with_calls.where(filter=FieldFilter("shard", ">", 0))
    return int(with_calls.count(alias="n").get()[0][0].value) - int(shards.count(alias="n").get()[0][0].value)


def totals(db, month: str) -> dict:
    reads = Reads()
    shards = [snap.to_dict() or {} for snap in db.collection(store.TOTALS).document(month).collection(store.SHARDS).stream()]
    reads.add(len(shards))
    summed = figures.sum_shards(shards)
    summed_users = active_users(db, month)
    reads.add(1)  # an aggregation is billed one read per 1,000 index entries counted
    reads.add(1)
    efficiency = figures.efficiency(summed)
    return {
        "month": month,
        "totals": summed,
        "active_users": summed_users,
        "efficiency": {name: efficiency[name] for name in ("avg_cost_per_call", "cost_per_1k_tokens", "free_share_of_calls")},
        "meta": {"source": "sharded counters", "shards": len(shards), "documents_read": reads.documents},
    }


def export_query(db, uid: str | None, span: figures.DateRange):
    """Usage rows of one user (or everyone's, uid None) whose day is in the range, oldest first.

    Rows are selected by their `day`, the same key the rollups are bucketed by, so an
    export and a summary of the same range always cover the same calls. Indexes:
    usage_tracking (user_id, day, timestamp) and (day, timestamp).
    """
    query = db.collection(store.USAGE)
    if uid is not None:
        query = query.where(filter=FieldFilter("user_id", "==", uid))
    return (
        query.where(filter=FieldFilter("day", ">=", span.start.isoformat()))
        .where(filter=FieldFilter("day", "<=", span.end.isoformat()))
        .order_by("day")
        .order_by("timestamp")
        .order_by(FieldPath.document_id())
    )


def export_pages(db, uid: str | None, span: figures.DateRange, page_size: int = EXPORT_PAGE_SIZE) -> Iterator[list]:
    """Pages of (doc id, row data), each one query resumed after the last row of the one before:
    memory stays one page whatever the collection holds."""
    query = export_query(db, uid, span)
    cursor = None
    while True:
        page_query = query.limit(page_size)
        if cursor is not None:
            page_query = page_query.start_after(cursor)
        snaps = list(page_query.stream())
        if snaps:
            yield [(snap.id, snap.to_dict() or {}) for snap in snaps]
        if len(snaps) < page_size:
            return
        cursor = snaps[-1]


def month_breakdowns(db, month: str) -> dict:
    """The whole app's month by model, feature and provider: every active user's month rollup
    (one document per user; for the report, not for a request path)."""
    merged: dict = {}
    for snap in month_rollups_query(db, month).stream():
        figures.add_breakdowns(merged, snap.to_dict() or {})
    return {name: figures.ranked_breakdown(merged.get(name, {})) for name in figures.BREAKDOWNS}


def daily_cost_by_model(db, month: str, uid: str | None = None) -> dict[str, dict[str, int]]:
    """{day: {model: cost_nanos}} from day rollups (one document per user-day with usage;
    composite index: days collection group, month ASC, day ASC)."""
    if uid is not None:  # the user's days, each summed over base and shards (periods.py)
        first, last = figures.month_bounds(month)
        user_days = _read_range(db.collection(store.USER_USAGE).document(uid).collection(store.DAYS),
                                first.isoformat(), last.isoformat(), Reads())
        docs = list(user_days.items())
    else:  # every user's day documents, shards included: all added up
        query = db.collection_group(store.DAYS).where(filter=FieldFilter("month", "==", month)).order_by("day")
        docs = [((snap.to_dict() or {}).get("day") or store.period_of(snap.id), snap.to_dict() or {})
                for snap in query.stream()]
    days: dict[str, dict[str, int]] = {}
    for day, doc in docs:
        models = days.setdefault(day, {})
        for model, values in (doc.get("by_model") or {}).items():
            models[model] = models.get(model, 0) + int(values.get("cost_nanos") or 0)
    return days
