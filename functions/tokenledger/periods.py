"""A user's month or day, read as one: the base document and its shards, summed.

A period's counters are spread over its base document `{period}` and, for a user writing faster
than a document takes, shards `{period}~{k}` (store.py, metering/hot_users.py) until the fold
(metering/fold.py) moves them back into the base. Every reader of a user's month or day on the
server goes through this module: the API (usage summaries, budget status), the budget gate and
the scheduled check, top users, the report tool and the demo. The web app's twin is
`web/src/rollups.ts` (`readMonth`, `watchMonth`).

One query per period: a Firestore query answers from one snapshot, so a fold that moves a
shard's counters into the base in one commit is seen either before or after, never half (two
separate reads — the base, then its shards — could see the base before a fold and the shards
after it, and miss what moved). It costs one read per document that exists: one for a user who
never had shards, as a plain get would.
"""
from __future__ import annotations

from collections.abc import Iterable

from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from tokenledger import money, store

MONTHS, DAYS = store.MONTHS, store.DAYS
# Fields of a period's documents that are not counters: kept from the base document, never
# summed (`shard` is the number of the shard a document is; the rest live on the base only).
NOT_SUMMED = frozenset({"shard", store.SHARD_MARK, "budget_copy"})
# USD floats for people, kept beside their exact nano-dollar twins: derived from the summed nanos.
USD_TWINS = {"cost": "cost_nanos", "reserved": "reserved_nanos"}


def period_query(db, uid: str, kind: str, period: str, field_paths: list | None = None):
    """The documents of one user's period that exist: `{period}` and `{period}~{k}`, by id (so a
    document is found whatever fields it carries)."""
    collection = db.collection(store.USER_USAGE).document(uid).collection(kind)
    doc_id = FieldPath.document_id()
    query = (collection.where(filter=FieldFilter(doc_id, ">=", collection.document(period)))
             .where(filter=FieldFilter(doc_id, "<=", collection.document(f"{period}{store.SHARD_SEP}{store.SHARD_SEP}"))))
    return query.select(field_paths) if field_paths else query


def snapshots(db, uid: str, kind: str, period: str, field_paths: list | None = None, **options) -> list:
    """The period's document snapshots, the base first when it exists (one query, one snapshot)."""
    snaps = period_query(db, uid, kind, period, field_paths).stream(**options)
    return sorted((snap for snap in snaps if store.period_of(snap.id) == period), key=lambda snap: snap.id != period)


def read_docs(db, uid: str, kind: str, period: str, field_paths: list | None = None, **options) -> list[dict]:
    """The period's documents as dicts, the base first when it exists (one query, one snapshot)."""
    return [snap.to_dict() or {} for snap in snapshots(db, uid, kind, period, field_paths, **options)]


def read(db, uid: str, kind: str, period: str, field_paths: list | None = None, **options) -> dict:
    """THE read of a user's month (kind MONTHS, `YYYY-MM`) or day (DAYS, `YYYY-MM-DD`): every
    counter summed over the base and its shards ({} when the user has nothing in it)."""
    return summed(read_docs(db, uid, kind, period, field_paths, **options))


def summed(docs: Iterable[dict | None]) -> dict:
    """One period from its documents (base first): numbers added (nested maps too: `by_model`
    etc.), flags or-ed (`alerts_sent`), other values and NOT_SUMMED fields from the first document
    that has them; `cost` / `reserved` recomputed from the exact nanos."""
    out: dict = {}
    for doc in docs:
        _add(out, doc or {}, top=True)
    for usd, nanos in USD_TWINS.items():
        if nanos in out:
            out[usd] = money.usd_float(out[nanos])
    out.pop("shard", None)
    return out


def _add(into: dict, doc: dict, top: bool = False) -> None:
    for key, value in doc.items():
        if top and key in NOT_SUMMED:
            into.setdefault(key, value)
        elif isinstance(value, bool):
            into[key] = bool(into.get(key)) or value
        elif isinstance(value, (int, float)):
            have = into.get(key, 0)
            into[key] = (have if isinstance(have, (int, float)) and not isinstance(have, bool) else 0) + value
        elif isinstance(value, dict):
            sub = into.get(key)
            if not isinstance(sub, dict):
                sub = into[key] = {}
            _add(sub, value)
        else:
            into.setdefault(key, value)


def by_period(snaps) -> dict[str, list[dict]]:
    """Snapshots of many periods' documents (a range read) -> {period: [dicts, base first]}."""
    grouped: dict[str, list] = {}
    for snap in snaps:
        grouped.setdefault(store.period_of(snap.id), []).append(snap)
    return {period: [s.to_dict() or {} for s in sorted(group, key=lambda s: s.id != period)]
            for period, group in grouped.items()}


def summed_by_period(snaps) -> dict[str, dict]:
    """{period: its summed rollup} from snapshots of a range of periods (see by_period)."""
    return {period: summed(docs) for period, docs in by_period(snaps).items()}
