"""The user's month as readers add it up: every document of it (base and a hot user's shards),
summed (reservations.py re-exports these; the gate's commit reads the same counters back)."""
from __future__ import annotations

from dataclasses import dataclass

from tokenledger import store

QUICK = {"timeout": 10.0}


@dataclass(frozen=True)
class MonthTotals:
    cost_nanos: int
    reserved_nanos: int
    alerts_sent: dict | None  # None: not read (the gate's commit reads counters, not maps)
    in_flight: int = 0
    features: frozenset | None = None  # keys of by_feature, when read (FEATURE_FIELD)
    credits_nanos: int = 0  # of cost_nanos, what prepaid credits paid: the allowance spent is the rest
    # The wallet as the gate's commit read it back (None: not written in it), its own hold included.
    wallet: "WalletTotals | None" = None

    @property
    def allowance_spent_nanos(self) -> int:
        return self.cost_nanos - self.credits_nanos


@dataclass(frozen=True)
class WalletTotals:
    balance_nanos: int
    held_nanos: int
    low_alert_epoch: int = 0  # the low-balance alert's crossing (budgets/alerts.py)


MONTH_FIELDS = ["cost_nanos", "reserved_nanos", "alerts_sent", "in_flight", "credits_nanos"]
FEATURE_FIELD = "by_feature"


def month_refs(db, uid: str, month: str) -> list:
    """Every document whose fields add up to the user's month. Readers fetch these (in one
    get_all, beside any other document they need) and sum them with totals_of, so the month may
    be spread over more documents (shards) without its readers changing: the base document and
    every shard a hot user's calls may be counted in (store.USER_SHARDS, base first)."""
    return store.user_month_refs(db, uid, month)


def totals_of(docs) -> MonthTotals:
    """The month's totals from the dicts (or None for a missing document) of month_refs."""
    cost = reserved = in_flight = credits = 0
    alerts_sent: dict = {}
    features: set | None = None
    for doc in docs:
        doc = doc or {}
        cost += int(doc.get("cost_nanos") or 0)
        reserved += int(doc.get("reserved_nanos") or 0)
        in_flight += int(doc.get("in_flight") or 0)
        credits += int(doc.get("credits_nanos") or 0)
        alerts_sent.update(doc.get("alerts_sent") or {})
        if FEATURE_FIELD in doc:
            features = (features or set()) | set(doc[FEATURE_FIELD] or {})
    return MonthTotals(cost, reserved, alerts_sent, in_flight, None if features is None else frozenset(features),
                       credits)


def month_totals(doc: dict | None) -> MonthTotals:
    return totals_of([doc])


def read_month_with(db, uid: str, month: str, extra: list, field_paths: list, **options) -> tuple[list, dict]:
    """The month's documents (dicts or None, for totals_of) and the snapshots of `extra`
    documents (by path), in one round trip for nearly every user: the base document is read
    beside `extra`; only when it is marked `sharded` (written in the same batch as a month's first
    shard) are the shards that exist read, in one query. Reading the shards after the base can
    only count a call settling in between twice (its reservation and its cost), never miss one:
    a gate's decision stays on the safe side."""
    base_ref = store.user_month_doc(db, uid, month)
    options = {**QUICK, **options}
    snaps = {s.reference.path: s for s in db.get_all([base_ref, *extra],
                                                      field_paths=list(field_paths) + ["sharded"], **options)}
    base = snaps.pop(base_ref.path, None)
    docs = [base.to_dict() if base is not None and base.exists else None]
    if docs[0] and docs[0].get("sharded"):
        docs += shard_docs(db, uid, month, field_paths, skip=0, **options)
    return docs, snaps


def shard_docs(db, uid: str, month: str, field_paths: list, skip: int, **options) -> list[dict]:
    """The month's documents that exist but the one numbered `skip` (its values are known), as
    dicts: one query, one read per document."""
    skipped = store.shard_id(month, skip)
    return [snap.to_dict() or {} for snap in store.user_month_docs(db, uid, month).select(field_paths).stream(**options)
            if snap.id != skipped]


def read_month(db, uid: str, month: str, **options) -> MonthTotals:
    """The month's totals: one read for nearly every user, the whole month for a hot one."""
    docs, _ = read_month_with(db, uid, month, [], MONTH_FIELDS, **options)
    return totals_of(docs)
