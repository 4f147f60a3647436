"""A user's first call on an instance (budgets/cold.py) and leases renewed ahead (renewal.py),
driven as chat_steps drives them on the real emulator: an instance is a fresh admission.Gate
(nothing cached), a call is admitted (admission.admit), then settled as meter_call settles it
(admission.holding, ledger.record_usage, admission.settled, renewal.after_settle)."""
from __future__ import annotations

import time
from datetime import datetime

from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger import store
from tokenledger.budgets import admission, limits, renewal
from tokenledger.config import Settings
from tokenledger.metering import ledger

from . import lease_helpers
from .ledger_checks import month_doc

W = 10_000_000  # the worst case of every paid call here ($0.01)
DOLLAR = 1_000_000_000


def write_budget(db, uid: str, **doc) -> None:
    """The user's budget document, as PUT /v1/admin/budgets stores it (an explicit None: none)."""
    store.budget_doc(db, uid).set(doc)


def minute_requests(db, uid: str, when: datetime) -> int:
    snap = store.user_minute_doc(db, uid, limits.minute_key(when)).get()
    return int((snap.to_dict() or {}).get("requests") or 0)


def free_requests(db, uid: str, when: datetime) -> int:
    snap = store.user_day_doc(db, uid, when.strftime("%Y-%m-%d")).get()
    return int((snap.to_dict() or {}).get("free_requests") or 0)


def reservation_docs(db, uid: str) -> list[dict]:
    """Every reservation document of the user: calls' and leases'."""
    query = db.collection(store.RESERVATIONS).where(filter=FieldFilter("user_id", "==", uid))
    return [snap.to_dict() for snap in query.stream()]


def held(db, uid: str, month: str) -> tuple[int, int, int]:
    """(cost_nanos, reserved_nanos, in_flight) of the user's month."""
    doc = month_doc(db, uid, month) or {}
    return int(doc.get("cost_nanos") or 0), int(doc.get("reserved_nanos") or 0), int(doc.get("in_flight") or 0)


def eventually(probe, expected, seconds: float = 10.0):
    """`probe()` once it equals `expected` (work given to the background pool), else its last value."""
    deadline = time.monotonic() + seconds
    value = probe()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        value = probe()
    return value


def settle(db, gate: admission.Gate, settings: Settings, granted: admission.Admission, cost_nanos: int,
           when: datetime, renew_at: datetime | None = None) -> ledger.RecordOutcome:
    """meter_call: the record with what the call holds, the ledger's one commit, the lease back in
    the book, and its successor taken ahead when it runs out (renewal.after_settle, at `renew_at`:
    the clock when the call settles, `when` unless given)."""
    record, reservation, lease = admission.holding(gate, granted, lease_helpers.call_record(granted.uid, cost_nanos,
                                                                                            when))
    outcome = ledger.record_usage(db, record, settings)
    if reservation is not None:
        granted.reservation = None
    if lease is not None:
        admission.settled(gate, granted, outcome, record)
        if gate.leases.holds(lease):
            renewal.after_settle(db, settings, gate, lease, granted.reserved_nanos + granted.credits_reserved_nanos,
                                 None, renew_at or when)
    admission.finish(gate, granted)
    return outcome
