"""The audit log: every admin change to a plan or to a user's budget override writes
`audit_log/{id}` — who (uid, email), when (server time), what (the document's path), the
document before and after — IN THE SAME COMMIT as the change: a change is never without its
entry, an entry never without its change. Listed newest first by GET /v1/admin/audit. Clients
can neither read nor write it (firestore.rules); only the functions (Admin SDK) write it.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from google.cloud import firestore

from tokenledger import store

PAGE_FIELDS = ("actor_uid", "actor_email", "action", "path", "before", "after")


def entry_id(now: datetime) -> str:
    """Time first (readable in the console), random after (two admins in one microsecond)."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}"


def add(batch, db, actor_uid: str, actor_email: str | None, action: str, path: str,
        before: dict | None, after: dict | None, now: datetime) -> str:
    """Add the entry to `batch` (the commit that makes the change); returns its id."""
    entry = entry_id(now)
    batch.create(store.audit_doc(db, entry), {
        "actor_uid": actor_uid,
        "actor_email": actor_email,
        "action": action,  # put | delete
        "path": path,
        "before": plain(before),
        "after": plain(after),
        "at": firestore.SERVER_TIMESTAMP,
    })
    return entry


def plain(doc: dict | None) -> dict | None:
    """A document as the log keeps it: server timestamps and deletions are not values."""
    if doc is None:
        return None
    return {k: v for k, v in doc.items()
            if v is not firestore.DELETE_FIELD and v is not firestore.SERVER_TIMESTAMP}


def _json(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def public(entry_id_: str, doc: dict) -> dict:
    return {"id": entry_id_, **{k: _json(doc.get(k)) for k in PAGE_FIELDS}, "at": _json(doc.get("at"))}


def newest_first(db, limit: int, page_token: str | None) -> tuple[list[dict], str | None]:
    """One page; LookupError for a page token that names no entry."""
    query = db.collection(store.AUDIT_LOG).order_by("at", direction=firestore.Query.DESCENDING)
    if page_token:
        if "/" in page_token or len(page_token) > 200 or page_token in (".", "..") or page_token.startswith("__"):
            raise LookupError("page_token")
        cursor = store.audit_doc(db, page_token).get()
        if not cursor.exists:
            raise LookupError("page_token")
        query = query.start_after(cursor)
    snaps = list(query.limit(limit + 1).stream())
    items = [public(s.id, s.to_dict() or {}) for s in snaps[:limit]]
    return items, (snaps[limit - 1].id if len(snaps) > limit else None)
