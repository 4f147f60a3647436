"""The user's month as readers add it up: every document of it (base and a hot user's shards),
summed (reservations.py re-exports these; the gate's commit reads the same counters back)."""
from __future__ import annotations

from dataclasses import dataclass

from tokenledger import periods, store

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
    """The month's totals from the dicts (or None for a missing document) of the month's
    documents, summed by periods.summed (the one sum of a period's documents)."""
    whole = periods.summed(docs)
    features = whole.get(FEATURE_FIELD) if FEATURE_FIELD in whole else None
    return MonthTotals(int(whole.get("cost_nanos") or 0), int(whole.get("reserved_nanos") or 0),
                       dict(whole.get("alerts_sent") or {}), int(whole.get("in_flight") or 0),
                       None if features is None else frozenset(features or {}), int(whole.get("credits_nanos") or 0))


def month_totals(doc: dict | None) -> MonthTotals:
    return totals_of([doc])


def read_month_with(db, uid: str, month: str, extra: list, field_paths: list, **options) -> tuple[list, dict]:
    """The month's documents (dicts or None, for totals_of) and the snapshots of `extra`
    documents (by path), in one round trip for nearly every user: the base document is read
    beside `extra`; only when it is marked `sharded` (written in the same batch as a month's first
    shard) is the month read again whole, base and shards in one query (periods.read_docs): one
    snapshot, so a fold moving shards into the base (metering/fold.py) is seen before or after,
    never half. (The query returns the base again: one read more than the shards, for hot
    users only — as the shard query always cost, which returned the base too.)"""
    base_ref = store.user_month_doc(db, uid, month)
    options = {**QUICK, **options}
    snaps = {s.reference.path: s for s in db.get_all([base_ref, *extra],
                                                      field_paths=list(field_paths) + ["sharded"], **options)}
    base = snaps.pop(base_ref.path, None)
    docs = [base.to_dict() if base is not None and base.exists else None]
    if docs[0] and docs[0].get("sharded"):
        docs = periods.read_docs(db, uid, periods.MONTHS, month, list(field_paths), **options)
    return docs, snaps


def whole_month(db, uid: str, month: str, field_paths: list, **options) -> MonthTotals:
    """Every document of the month in one query (periods.read_docs): one snapshot."""
    return totals_of(periods.read_docs(db, uid, periods.MONTHS, month, list(field_paths), **{**QUICK, **options}))


def read_month(db, uid: str, month: str, **options) -> MonthTotals:
    """The month's totals: one read for nearly every user, the whole month for a hot one."""
    docs, _ = read_month_with(db, uid, month, [], MONTH_FIELDS, **options)
    return totals_of(docs)
