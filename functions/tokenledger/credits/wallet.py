"""A user's prepaid wallet: `user_credits/{uid}` (balance_nanos, held_nanos) and its append-only
history `user_credits/{uid}/entries/{entryId}`.

Grants (an admin's, a payment's) and adjustments (negative: refunds, chargebacks) are one commit
each: the history entry is created — `create()`, so a second grant under the same idempotency
key or payment id fails as a whole (AlreadyExists) and adds nothing — with a blind increment
of the balance, read back in the same commit. Spending never writes here per call: calls hold
and settle through the ceiling primitive (budgets/ceiling.py), the usage rows are the per-call
record, and the month's spending shows as a summary (`spent_this_month`, and a `spending` entry
per past month written by the scheduled check).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore

from tokenledger import money, store

GRANT = "grant"  # an admin's grant (amount > 0)
ADJUSTMENT = "adjustment"  # an admin's negative amount: refund, chargeback
PAYMENT = "payment"  # a succeeded Stripe payment (payments.py)
SPENDING = "spending"  # a past month's spending, summarised
COMMIT = {"timeout": 10.0, "retry": gretry.Retry(initial=0.1, maximum=1.0, multiplier=2.0, timeout=10.0)}
ENTRY_FIELDS = ("type", "amount_nanos", "reason", "source", "payment_id", "month", "idempotency_key")


@dataclass(frozen=True)
class Granted:
    created: bool  # False: the entry was there (the same key or payment again): nothing added
    entry: dict
    balance_nanos: int | None  # the balance just after this grant (None when it was not this one)
    held_nanos: int | None


class KeyReused(Exception):
    """The idempotency key names an earlier grant of a different amount or user."""


def entry_id_for(kind: str, key: str) -> str:
    """A history entry's id from its idempotency key (an admin's key, a payment id): hashed, so
    any string a client sends names a valid document."""
    return f"{kind}-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def grant(db, uid: str, amount_nanos: int, kind: str, entry_id: str, fields: dict,
          rearm_nanos: int | None = None) -> Granted:
    """Add `amount_nanos` (negative: an adjustment) to the wallet once per `entry_id`.
    `rearm_nanos`: the deployment's low-balance threshold (re-arms the alert, _rearm)."""
    entry = {"type": kind, "amount_nanos": amount_nanos, "amount": money.usd_float(amount_nanos), "user_id": uid,
             **fields, "created_at": firestore.SERVER_TIMESTAMP}
    batch = db.batch()
    store.add_create(batch, store.wallet_entry_doc(db, uid, entry_id), entry)
    paths = store.add_merge_increments(
        batch, store.wallet_doc(db, uid), {"user_id": uid},
        {"balance_nanos": amount_nanos, "held_nanos": 0, "granted_nanos": max(amount_nanos, 0), "grants": 1})
    try:
        results = batch.commit(**COMMIT)
    except gexc.AlreadyExists:
        snap = store.wallet_entry_doc(db, uid, entry_id).get()
        return Granted(False, public_entry(entry_id, snap.to_dict() or {}), None, None)
    values = store.counter_values(results[1], paths)
    stored = {**entry, "created_at": results[0].update_time}
    granted = Granted(True, public_entry(entry_id, stored), int(values[("balance_nanos",)]),
                      int(values[("held_nanos",)]))
    if rearm_nanos is not None:
        _rearm(db, uid, granted, int(values[("grants",)]), rearm_nanos)
    return granted


def _rearm(db, uid: str, granted: Granted, grants: int, default_nanos: int) -> None:
    """A grant that lifts the wallet back over its low-balance threshold starts a new crossing:
    the next fall below it is alerted again (budgets/alerts.py: one alert per crossing). One read
    and one write, on grants only."""
    doc = store.wallet_doc(db, uid).get(field_paths=["low_balance_nanos"]).to_dict() or {}
    threshold = doc.get("low_balance_nanos")
    threshold = default_nanos if threshold is None else int(threshold)
    if granted.balance_nanos - granted.held_nanos >= threshold:
        store.wallet_doc(db, uid).set({"low_alert_epoch": grants}, merge=True)


def public_entry(entry_id: str, doc: dict) -> dict:
    created = doc.get("created_at")
    amount = int(doc.get("amount_nanos") or 0)
    return {
        "id": entry_id,
        **{k: doc.get(k) for k in ENTRY_FIELDS if doc.get(k) is not None},
        "amount": money.usd_float(amount),
        "amount_nanos": amount,
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
    }


@dataclass(frozen=True)
class WalletView:
    exists: bool
    balance_nanos: int  # what open leases spent already taken off
    held_nanos: int  # held by calls in progress
    leased_nanos: int  # kept by instances for the user's next calls (back to the balance when they close)
    spent_this_month_nanos: int
    low_balance_nanos: int | None

    def json(self, month: str) -> dict:
        available = self.balance_nanos - self.held_nanos - self.leased_nanos
        return {
            "has_wallet": self.exists,
            "balance": money.usd_float(self.balance_nanos),
            "balance_nanos": self.balance_nanos,
            "held": money.usd_float(self.held_nanos),
            "held_nanos": self.held_nanos,
            "leased_nanos": self.leased_nanos,
            "available": money.usd_float(available),
            "available_nanos": available,
            "month": month,
            "spent_this_month": money.usd_float(self.spent_this_month_nanos),
            "spent_this_month_nanos": self.spent_this_month_nanos,
            "low_balance_alert": None if self.low_balance_nanos is None else money.usd_float(self.low_balance_nanos),
        }


def read(db, uid: str, month: str, month_credits_nanos: int) -> WalletView:
    """The wallet as its owner sees it: what open leases spent of their holds (charged to the
    balance when they close) already counted as spent; what they keep unspent shown apart from
    what calls in progress hold (as GET /v1/budget shows `reserved`). One read, and one query of
    the user's open reservations."""
    snap = store.wallet_doc(db, uid).get()
    doc = snap.to_dict() or {} if snap.exists else {}
    query = db.collection(store.RESERVATIONS).where(filter=firestore.FieldFilter("user_id", "==", uid))
    spent = leased = 0
    for hold in (s.to_dict() or {} for s in query.select(["credits_nanos", "credits_spent_nanos", "lease"]).stream()):
        hold_spent = int(hold.get("credits_spent_nanos") or 0)
        spent += hold_spent
        if hold.get("lease"):
            leased += int(hold.get("credits_nanos") or 0) - hold_spent
    low = doc.get("low_balance_nanos")
    held = int(doc.get("held_nanos") or 0) - spent - leased
    return WalletView(snap.exists, int(doc.get("balance_nanos") or 0) - spent, held, leased, month_credits_nanos,
                      None if low is None else int(low))


def history(db, uid: str, limit: int, page_token: str | None) -> tuple[list[dict], str | None]:
    """The wallet's entries, newest first; the page token is the last entry's id (LookupError:
    not an entry of this wallet)."""
    query = store.wallet_doc(db, uid).collection(store.CREDIT_ENTRIES).order_by(
        "created_at", direction=firestore.Query.DESCENDING)
    if page_token:
        if "/" in page_token or page_token.startswith("__") or len(page_token) > 200 or page_token in (".", ".."):
            raise LookupError("page_token")
        cursor = store.wallet_entry_doc(db, uid, page_token).get()
        if not cursor.exists:
            raise LookupError("page_token")
        query = query.start_after(cursor)
    snaps = list(query.limit(limit + 1).stream())
    items = [public_entry(s.id, s.to_dict() or {}) for s in snaps[:limit]]
    return items, (snaps[limit - 1].id if len(snaps) > limit else None)


def set_low_balance(db, uid: str, nanos: int | None) -> None:
    """The user's own low-balance alert threshold (None: the deployment's default)."""
    store.wallet_doc(db, uid).set({"user_id": uid, "low_balance_nanos": nanos}, merge=True)
