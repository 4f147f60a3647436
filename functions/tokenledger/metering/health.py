"""How the ledger is healing (GET /v1/admin/ledger-health): the outbox's records by state, and
`pending` rows (cost not known yet, settled by reconcile) by age. Count aggregations only: a few
reads whatever the volume.

What `queued` can and cannot see: a record is marked `queued` (ledger_outbox/{id}) by the first
delivery of it that fails while Firestore accepts that small write; a record waiting through a
complete outage is seen as `healed` once it lands. The outbox itself (Pub/Sub) holds it either way.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger import store
from tokenledger.metering import heal
from tokenledger.metering.usage import COST_PENDING

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# Pending rows by age: under an hour, an hour to a day, older (reconcile settles the oldest at
# their estimate after TOKENLEDGER_PENDING_MAX_AGE_S).
PENDING_BUCKETS = (("under_1h", HOUR, None), ("1h_to_1d", DAY, HOUR), ("over_1d", None, DAY))


def _count(query) -> int:
    return int(query.count(alias="n").get()[0][0].value)


def _since(collection, name: str, start: datetime) -> int:
    return _count(collection.where(filter=FieldFilter(name, ">=", start)))


def pending_buckets(now: datetime) -> list[tuple[str, datetime | None, datetime | None]]:
    """(name, oldest, newest) time bounds of each age bucket (None: open)."""
    return [(name, now - older if older else None, now - newer if newer else None)
            for name, older, newer in PENDING_BUCKETS]


def ledger_health(db, now: datetime) -> dict:
    outbox = db.collection(heal.LEDGER_OUTBOX)
    oldest = list(outbox.order_by("queued_since").limit(1).stream())
    oldest_at = oldest[0].get("queued_since") if oldest else None
    pending = db.collection(store.USAGE).where(filter=FieldFilter("cost_source", "==", COST_PENDING))
    by_age = {}
    for name, since, until in pending_buckets(now):
        query = pending
        if since is not None:
            query = query.where(filter=FieldFilter("timestamp", ">=", since))
        if until is not None:
            query = query.where(filter=FieldFilter("timestamp", "<", until))
        by_age[name] = _count(query)
    return {
        "queued": _since(outbox, "queued_since", EPOCH),
        "oldest_queued_at": oldest_at.isoformat() if oldest_at else None,
        "oldest_queued_age_s": round((now - oldest_at).total_seconds()) if oldest_at else None,
        "healed_last_hour": _since(outbox, "healed_at", now - HOUR),
        "healed_last_day": _since(outbox, "healed_at", now - DAY),
        "dead_lettered": _since(outbox, "dead_lettered_at", EPOCH),
        "pending_rows": {**by_age, "total": sum(by_age.values())},
        "checked_at": now.isoformat(),
    }
