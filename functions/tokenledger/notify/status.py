"""What the admin page shows of alert delivery: a month's alerts with a target not delivered
(open, blocked or failed), newest first, each target by its id only (never its URL)."""
from __future__ import annotations

from datetime import datetime

from google.cloud import firestore

from tokenledger.notify import payload, plan
from tokenledger.notify.deliver import ALERT_COLLECTIONS


def _iso(value):
    return value.isoformat() if isinstance(value, datetime) else value


def item(collection: str, doc_id: str, doc: dict) -> dict:
    return {
        "id": doc_id, "collection": collection, "alert_type": payload.alert_type(doc),
        "user_id": doc.get("user_id"), "month": doc.get("month"), "created_at": _iso(doc.get("created_at")),
        "pending": bool(doc.get("delivery_pending")),
        "targets": [{"target": tid, "status": s.get("status"), "attempts": s.get("attempts", 0),
                     "last_error": s.get("last_error"), "next_at": _iso(s.get("next_at"))}
                    for tid, s in sorted((doc.get("deliveries") or {}).items()) if s.get("status") != plan.DELIVERED],
    }


def undelivered(db, month: str, limit: int) -> list[dict]:
    """The month's newest `limit` of each alert collection, merged newest first (composite index
    `delivery_undelivered`, `month`, `created_at` desc: firestore.indexes.json)."""
    out = []
    for collection in ALERT_COLLECTIONS:
        query = (db.collection(collection)
                 .where(filter=firestore.FieldFilter("delivery_undelivered", "==", True))
                 .where(filter=firestore.FieldFilter("month", "==", month))
                 .order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit))
        out.extend(item(collection, s.id, s.to_dict() or {}) for s in query.stream())
    out.sort(key=lambda a: a["created_at"] or "", reverse=True)
    return out[:limit]
