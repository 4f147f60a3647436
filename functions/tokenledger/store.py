"""Firestore access: the client (emulator-aware), collection names and document paths."""
from __future__ import annotations

import functools
import zlib
from datetime import datetime, timezone

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from google.cloud.firestore_v1.types import common as common_types
from google.cloud.firestore_v1.types import document as document_types
from google.cloud.firestore_v1.types import write as write_types

from tokenledger import config

# Raw protobuf classes (the SDK's proto-plus wrappers cost ~5 µs per message built).
_WRITE = write_types.Write.pb()
_TRANSFORM = write_types.DocumentTransform.FieldTransform.pb()
_VALUE = document_types.Value.pb()
_DOCUMENT = document_types.Document.pb()
_MASK = common_types.DocumentMask.pb()
_REQUEST_TIME = write_types.DocumentTransform.FieldTransform.ServerValue.REQUEST_TIME
_MAP = document_types.MapValue.pb()
_ARRAY = document_types.ArrayValue.pb()
_PRECONDITION = common_types.Precondition.pb()

USAGE = "usage_tracking"
USER_USAGE = "user_usage"
MONTHS = "months"
DAYS = "days"
MINUTES = "minutes"  # per-user request counters for the rate limit (expire_at: Firestore TTL)
TOTALS = "usage_totals"
SHARDS = "shards"
BUDGETS = "user_budgets"
ALERTS = "budget_alerts"
ADMIN_ALERTS = "admin_alerts"  # the operator's alerts (ledger drift, app spend, ...)
PRICING = "model_pricing"
PRICING_CURRENT = "current"
MAIL = "mail"
RESERVATIONS = "reservations"
RECONCILIATION = "reconciliation"

# A user's month and day rollups are spread over up to USER_SHARDS documents each: the base
# document `{period}` (every write of a user writing at most about once a second, bursts aside)
# and, for a user writing faster, shards `{period}~{k}` (k = 1..USER_SHARDS-1) in the same
# collection, with the same fields plus `shard`. A period's counters are the sum of its
# documents; Firestore sustains about one write per second per document, and a call of an
# enforced user writes its month twice (the reservation, then the ledger), so 47 shards carry
# one user at ~20 calls/s (metering/hot_users.py). Readers
# know every document that may exist without a read (user_month_refs), so the number is part of
# the data layout: raising it later is safe, lowering it would hide shards.
USER_SHARDS = 48
SHARD_SEP = "~"
# A number on the base month document: USER_SHARDS once the month has shards, else 0 or absent
# (beside the boolean `sharded`). A number so that the budget gate can read it back from its
# own commit (an increment by 0, see budgets/reservations.py) instead of reading the document.
SHARD_MARK = "shard_count"


@functools.lru_cache(maxsize=1)
def client() -> firestore.Client:
    # google.cloud.firestore.Client uses anonymous credentials by itself when
    # FIRESTORE_EMULATOR_HOST is set (firebase_admin.firestore.client() would demand ADC).
    return firestore.Client(project=config.project_id())


def usage_doc(db: firestore.Client, generation_id: str):
    return db.collection(USAGE).document(generation_id)


def user_month_doc(db: firestore.Client, uid: str, month: str):
    return db.collection(USER_USAGE).document(uid).collection(MONTHS).document(month)


def user_day_doc(db: firestore.Client, uid: str, day: str):
    return db.collection(USER_USAGE).document(uid).collection(DAYS).document(day)


def user_minute_doc(db: firestore.Client, uid: str, minute: str):
    return db.collection(USER_USAGE).document(uid).collection(MINUTES).document(minute)


def shard_id(period: str, shard: int) -> str:
    """The document id of one shard of a rollup period (`2026-11`, `2026-11-23`); 0 is the base."""
    return period if shard == 0 else f"{period}{SHARD_SEP}{shard}"


def period_of(doc_id: str) -> str:
    """The period a rollup document (base or shard) counts towards."""
    return doc_id.split(SHARD_SEP, 1)[0]


def user_month_shard_doc(db: firestore.Client, uid: str, month: str, shard: int):
    return user_month_doc(db, uid, shard_id(month, shard))


def user_day_shard_doc(db: firestore.Client, uid: str, day: str, shard: int):
    return user_day_doc(db, uid, shard_id(day, shard))


def user_month_refs(db: firestore.Client, uid: str, month: str) -> list:
    """Every document that may hold part of the user's month: the base first, then each shard."""
    return [user_month_shard_doc(db, uid, month, shard) for shard in range(USER_SHARDS)]


def user_month_docs(db: firestore.Client, uid: str, month: str):
    """The query for the documents of a user's month that exist (base and shards): a hot user
    writes only as many shards as their rate needs (metering/hot_users.py), so reading these
    costs one read per document there is, not USER_SHARDS."""
    return (db.collection(USER_USAGE).document(uid).collection(MONTHS)
            .where(filter=firestore.FieldFilter("month", "==", month)))


def add_sharded_mark(batch, db: firestore.Client, uid: str, month: str) -> None:
    """Mark the user's base month document: the month has shards (readers then read them too)."""
    batch.set(user_month_doc(db, uid, month),
              {"sharded": True, SHARD_MARK: USER_SHARDS, "user_id": uid, "month": month}, merge=True)


def shard_index(key: str, shards: int) -> int:
    """Stable shard for a key (crc32: the same generation id always lands on one shard)."""
    return zlib.crc32(key.encode()) % max(shards, 1)


def totals_shard_doc(db: firestore.Client, month: str, shard: int):
    return db.collection(TOTALS).document(month).collection(SHARDS).document(str(shard))


def pricing_doc(db: firestore.Client):
    return db.collection(PRICING).document(PRICING_CURRENT)


def budget_doc(db: firestore.Client, uid: str):
    return db.collection(BUDGETS).document(uid)


def alert_doc(db: firestore.Client, alert_id: str):
    return db.collection(ALERTS).document(alert_id)


def mail_doc(db: firestore.Client, mail_id: str):
    return db.collection(MAIL).document(mail_id)


def reservation_doc(db: firestore.Client, reservation_id: str):
    return db.collection(RESERVATIONS).document(reservation_id)


def _value(value) -> object:
    """A Python value as a raw Firestore Value, encoded as the SDK encodes it."""
    if value is None:
        return _VALUE(null_value=0)
    if isinstance(value, bool):
        return _VALUE(boolean_value=value)
    if isinstance(value, int):
        return _VALUE(integer_value=value)
    if isinstance(value, float):
        return _VALUE(double_value=value)
    if isinstance(value, str):
        return _VALUE(string_value=value)
    if isinstance(value, datetime):
        stamp = _VALUE()
        stamp.timestamp_value.FromDatetime(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
        return stamp
    if isinstance(value, dict):
        return _VALUE(map_value=_MAP(fields={str(k): _value(v) for k, v in value.items()}))
    if isinstance(value, (list, tuple)):
        return _VALUE(array_value=_ARRAY(values=[_value(v) for v in value]))
    raise TypeError(f"unsupported value {value!r}")


def _flat(prefix: tuple, counters: dict):
    for key, value in counters.items():
        if isinstance(value, dict):
            yield from _flat(prefix + (key,), value)
        else:
            yield prefix + (key,), value


def add_merge_increments(batch, ref, plain: dict, counters: dict, server_times: tuple = ("updated_at",),
                         exists: bool = False) -> list:
    """Add to `batch` what `batch.set(ref, {**plain, **Increment(counters...)}, merge=True)` adds
    (plus each of `server_times` set to the server's time), built as one raw protobuf Write.

    Same write, same semantics, about 1/20 of the CPU: the SDK's set() walks the nested map
    through its proto-plus wrappers, about 0.6 ms per rollup document on the hot path.
    `counters` is a nested dict of int/float increments; `plain` holds top-level str/int fields.
    `exists`: only if the document exists (else the whole batch fails with NotFound).
    Returns the counters' paths (tuples) in the order of the commit's transform results: each
    result is the field's value after its increment (see counter_values)."""
    paths = []
    transforms = []
    for path, amount in _flat((), counters):
        paths.append(path)
        transforms.append(_TRANSFORM(field_path=FieldPath(*path).to_api_repr(), increment=_value(amount)))
    transforms += [_TRANSFORM(field_path=FieldPath(name).to_api_repr(), set_to_server_value=_REQUEST_TIME)
                   for name in server_times]
    write = _WRITE(
        update=_DOCUMENT(name=ref._document_path, fields={k: _value(v) for k, v in plain.items()}),
        update_mask=_MASK(field_paths=[FieldPath(k).to_api_repr() for k in plain]),
        update_transforms=transforms,
        **({"current_document": _PRECONDITION(exists=True)} if exists else {}),
    )
    batch._add_write_pbs([write])  # the SDK's own way into a batch (WriteBatch.set ends the same)
    return paths


def counter_values(write_result, paths: list) -> dict:
    """{path: value after the commit} of one write added by add_merge_increments, from the
    commit's WriteResult: Firestore returns every transform's result, in order. An increment by
    0 therefore reads a counter inside the commit that writes beside it, with no read."""
    values = {}
    for path, result in zip(paths, write_result.transform_results):
        raw = document_types.Value.pb(result)
        kind = raw.WhichOneof("value_type")
        values[path] = raw.integer_value if kind == "integer_value" else raw.double_value if kind == "double_value" else 0
    return values


def add_create(batch, ref, data: dict) -> None:
    """Add to `batch` what `batch.create(ref, data)` adds, as one raw protobuf Write: the document
    must not exist yet (else the whole batch fails with AlreadyExists). Top-level values equal to
    firestore.SERVER_TIMESTAMP become the server's time, as with the SDK."""
    fields = {k: _value(v) for k, v in data.items() if v is not firestore.SERVER_TIMESTAMP}
    server_times = [k for k, v in data.items() if v is firestore.SERVER_TIMESTAMP]
    write = _WRITE(
        update=_DOCUMENT(name=ref._document_path, fields=fields),
        update_transforms=[_TRANSFORM(field_path=FieldPath(k).to_api_repr(), set_to_server_value=_REQUEST_TIME)
                           for k in server_times],
        current_document=_PRECONDITION(exists=False),
    )
    batch._add_write_pbs([write])


# ---- prepaid credits (docs/credits.md) ----------------------------------------------------------
CREDITS = "user_credits"
CREDIT_ENTRIES = "entries"
CREDIT_ALERTS = "credit_alerts"


def wallet_doc(db: firestore.Client, uid: str):
    """user_credits/{uid}: balance_nanos, held_nanos (what calls in progress and leases hold)."""
    return db.collection(CREDITS).document(uid)


def wallet_entry_doc(db: firestore.Client, uid: str, entry_id: str):
    """user_credits/{uid}/entries/{entryId}: the wallet's append-only history."""
    return wallet_doc(db, uid).collection(CREDIT_ENTRIES).document(entry_id)


PLANS = "plans"  # plans/{planId} (budgets/plans.py)
AUDIT_LOG = "audit_log"  # audit_log/{id}: admin changes, written in the commit of the change (audit/)


def plan_doc(db: firestore.Client, plan_id: str):
    return db.collection(PLANS).document(plan_id)


def audit_doc(db: firestore.Client, entry_id: str):
    return db.collection(AUDIT_LOG).document(entry_id)
