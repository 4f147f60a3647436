"""The ledger heals itself: the Pub/Sub functions behind the usage outbox (metering/outbox.py).

`heal_usage` (topic `usage-outbox`) commits a queued record with the ledger's own exactly-once
batch (ledger.record_usage, healed=True): the row is created under the generation id, so a
record published twice or redelivered after a lost ack is counted once; the call's reservation
is released in that commit exactly as the inline commit would have released it. The function
returns (Pub/Sub acknowledges) only after the commit; when Firestore still fails it raises, and
Pub/Sub redelivers with back-off (the function's retry policy). A record still failing
TOKENLEDGER_OUTBOX_DEAD_LETTER_AFTER_S after it was queued, or one Firestore refuses outright,
goes to the dead-letter topic, logged as `ledger_dead_letter` with the whole record (the replay
tool reads it). `ledger_dead_letter` (that topic) writes the admin alert.

Beside each healed row, `ledger_outbox/{generation_id}` says what happened to the record
(queued -> healed | dead_letter): the ledger-health view (metering/health.py) counts those.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from google.api_core import exceptions as gexc
from google.cloud import firestore

from tokenledger import config, logs, store
from tokenledger.config import Settings
from tokenledger.metering import ledger, outbox

LEDGER_OUTBOX = "ledger_outbox"
ADMIN_ALERTS = "admin_alerts"
DEAD_LETTER_ALERT = "ledger_dead_letter"
QUEUED, HEALED, DEAD_LETTER = "queued", "healed", "dead_letter"
RETRY = "retry"
MARK_TIMEOUT_S = 5


class NotHealedYet(Exception):
    """Raised to make Pub/Sub redeliver: the record is not in the ledger yet."""


def next_step(cause: BaseException, queued_s: float, dead_letter_after_s: float) -> str:
    """After a failed commit: RETRY (redelivery) or DEAD_LETTER. Firestore refusing the record
    itself (a client error other than contention) will never pass: no point waiting."""
    refused = isinstance(cause, gexc.ClientError) and not isinstance(cause, ledger.TRANSIENT_ERRORS)
    return DEAD_LETTER if refused or queued_s >= dead_letter_after_s else RETRY


def outbox_doc(db, generation_id: str):
    return db.collection(LEDGER_OUTBOX).document(generation_id)


def healed_fields(queued: outbox.Queued) -> dict:
    return {
        "generation_id": queued.record.generation_id,
        "user_id": queued.record.user_id,
        "state": HEALED,
        "queued_at": queued.queued_at,
        "healed_at": firestore.SERVER_TIMESTAMP,
        "queued_since": firestore.DELETE_FIELD,  # only a record still waiting has it (health.py)
    }


def heal(db, settings: Settings, publisher: outbox.Publisher, data: bytes, now: datetime) -> str:
    """One delivery of an outbox message. Returns what happened (recorded, already_recorded,
    dead_letter); raises NotHealedYet for Pub/Sub to redeliver it."""
    try:
        queued = outbox.decode(data)
    except outbox.InvalidMessage as exc:
        _dead_letter(publisher, data, {"reason": str(exc)}, None, str(exc))
        return DEAD_LETTER
    record = queued.record
    mark = outbox_doc(db, record.generation_id)
    try:
        outcome = ledger.record_usage(
            db, record, settings, healed=True, deadline_s=settings.outbox_commit_deadline_s,
            extra_writes=lambda batch: batch.set(mark, healed_fields(queued), merge=True))
    except ledger.RecordingFailed as exc:
        queued_s = (now - queued.queued_at).total_seconds()
        reason = repr(exc.cause)[:500]
        if next_step(exc.cause, queued_s, settings.outbox_dead_letter_after_s) == DEAD_LETTER:
            _dead_letter(publisher, data, {"generation_id": record.generation_id, "user_id": record.user_id},
                         queued, reason)
            return DEAD_LETTER
        logs.usage_heal_retry(generation_id=record.generation_id, error=reason, queued_s=queued_s)
        _note(mark, {"state": QUEUED, "generation_id": record.generation_id, "user_id": record.user_id,
                     "queued_at": queued.queued_at, "queued_since": queued.queued_at,
                     "attempts": firestore.Increment(1), "last_error": reason})
        raise NotHealedYet(record.generation_id) from exc
    if outcome.status == "already_recorded":  # its batch (and the mark in it) did not apply
        _note(mark, healed_fields(queued))
    logs.usage_healed(generation_id=record.generation_id, user_id=record.user_id, status=outcome.status,
                      queued_s=round((now - queued.queued_at).total_seconds(), 3))
    return outcome.status


def _note(ref, fields: dict) -> None:
    """The outbox document, best effort: what it says is for the health view, not the money."""
    try:
        ref.set(fields, merge=True, timeout=MARK_TIMEOUT_S, retry=None)
    except Exception:  # noqa: BLE001 - Firestore down: the view catches up with the next delivery
        pass


def _dead_letter(publisher: outbox.Publisher, data: bytes, attributes: dict, queued: outbox.Queued | None,
                 reason: str) -> None:
    """Log the record for replay, then hand it to the dead-letter topic (whose function writes the
    alert). Not handed over: raise, so the message is delivered again (the log line stays)."""
    record = queued.record.to_log() if queued else None
    logs.ledger_dead_letter(reason=reason, record=record, raw=None if queued else data[:10_000].decode("utf-8", "replace"))
    if publisher.publish(outbox.DEAD_LETTER_TOPIC, data, {**attributes, "reason": reason[:500]}) is None:
        raise NotHealedYet("dead-letter topic unreachable")


def raise_alert(db, data: bytes, attributes: dict, now: datetime) -> None:
    """`ledger_dead_letter`: the admin alert for one dead-lettered record, with everything needed
    to replay it (the record as the replay tool reads it). Idempotent: one document per record."""
    try:
        queued = outbox.decode(data)
    except outbox.InvalidMessage:
        queued = None
    generation_id = queued.record.generation_id if queued else str(attributes.get("generation_id") or "unreadable")
    alert = {
        "alert_type": DEAD_LETTER_ALERT,
        "generation_id": generation_id,
        "user_id": queued.record.user_id if queued else attributes.get("user_id"),
        "reason": attributes.get("reason"),
        "queued_at": queued.queued_at if queued else None,
        "cost_nanos": queued.record.cost_nanos if queued else None,
        # As text: the record may hold what Firestore refused as a document (why it is here).
        "record_json": json.dumps(queued.record.to_log(), sort_keys=True) if queued else None,
        "raw": None if queued else data[:10_000].decode("utf-8", "replace"),
        "message": (f"Usage {generation_id} could not be recorded from the outbox; replay it with "
                    "python -m tokenledger.tools.replay --dead-letters (reads this alert's `record_json`)."),
        "created_at": now,
        "updated_at": firestore.SERVER_TIMESTAMP,
    }
    batch = db.batch()
    batch.set(db.collection(ADMIN_ALERTS).document(f"{DEAD_LETTER_ALERT}_{generation_id}"), alert)
    if queued:
        batch.set(outbox_doc(db, generation_id), {
            "generation_id": generation_id, "user_id": queued.record.user_id, "state": DEAD_LETTER,
            "queued_at": queued.queued_at, "dead_lettered_at": firestore.SERVER_TIMESTAMP,
            "queued_since": firestore.DELETE_FIELD}, merge=True)
    batch.commit()


# ---- the Pub/Sub functions' entry points (main.py): a delivery's bytes to the workers above ----

def _data(message) -> bytes | None:
    return base64.b64decode(message.data) if getattr(message, "data", None) else None


def on_outbox_message(message) -> str | None:
    """One delivery of a `usage-outbox` message; raises (NotHealedYet) to be redelivered."""
    data = _data(message)
    if data is None:  # the emulator's probe of a new worker carries no message
        return None
    settings = config.settings()
    publisher = outbox.Publisher(config.project_id(), settings.outbox_publish_timeout_s)
    return heal(store.client(), settings, publisher, data, datetime.now(timezone.utc))


def on_dead_letter_message(message) -> None:
    """One `usage-outbox-dead-letter` message: the admin alert."""
    data = _data(message)
    if data is not None:
        raise_alert(store.client(), data, dict(getattr(message, "attributes", None) or {}), datetime.now(timezone.utc))
