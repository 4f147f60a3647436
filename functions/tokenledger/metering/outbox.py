"""The usage outbox: a call the ledger could not commit goes to Pub/Sub, not to a person.

When `ledger.record_usage` gives up (Firestore down past TOKENLEDGER_RECORD_DEADLINE_S), the
API publishes the call's complete record to the `usage-outbox` topic before it finishes the
answer (`X-Usage-Recorded: queued`); the `heal_usage` function (metering/heal.py) commits it
with the same exactly-once batch, keyed by the generation id. Only when publishing fails too
does the record rely on the ERROR log line and `tokenledger.tools.replay`, as before.

`encode`/`decode` are pure (tested alone); `Publisher` is the thin I/O around them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from tokenledger.metering.usage import UsageRecord

OUTBOX_TOPIC = "usage-outbox"
# A record the healer could not commit within TOKENLEDGER_OUTBOX_DEAD_LETTER_AFTER_S (or could
# never commit: Firestore refused it) goes here; `ledger_dead_letter` (heal.py) raises the alert.
DEAD_LETTER_TOPIC = "usage-outbox-dead-letter"
VERSION = 1


class InvalidMessage(ValueError):
    """An outbox message that is not a record this code can read."""


@dataclass(frozen=True)
class Queued:
    record: UsageRecord
    queued_at: datetime  # when the API gave up on its inline commit
    reason: str  # why the inline commit failed (the error's repr, shortened)


def encode(record: UsageRecord, reason: str, queued_at: datetime) -> tuple[bytes, dict[str, str]]:
    """One outbox message: (data, attributes). The data is the record exactly as the replay tool
    reads it from the log (UsageRecord.to_log), so every path rebuilds the same record."""
    if queued_at.tzinfo is None:
        raise ValueError("queued_at must be timezone-aware")
    payload = {"v": VERSION, "queued_at": queued_at.isoformat(), "reason": reason[:500], "record": record.to_log()}
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return data, {"generation_id": record.generation_id, "user_id": record.user_id}


def decode(data: bytes | str) -> Queued:
    """The message back; InvalidMessage for anything else (it can never be recorded: dead letter)."""
    try:
        payload = json.loads(data)
        if not isinstance(payload, dict) or payload.get("v") != VERSION:
            raise InvalidMessage(f"not an outbox message of version {VERSION}")
        record = UsageRecord.from_log(payload["record"])
        queued_at = datetime.fromisoformat(payload["queued_at"])
    except InvalidMessage:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidMessage(f"unreadable outbox message: {type(exc).__name__}: {str(exc)[:200]}") from exc
    if not record.generation_id or not record.user_id:
        raise InvalidMessage("an outbox record needs a generation id and a user id")
    if queued_at.tzinfo is None:
        queued_at = queued_at.replace(tzinfo=timezone.utc)
    return Queued(record, queued_at, str(payload.get("reason") or ""))


class Publisher:
    """Publishes to the outbox topics; the client is made at first use (most instances never do).
    `publish` answers within `timeout_s` and never raises: False means the message is not known
    to be in Pub/Sub (the caller logs the record for replay; were it published after all, the
    generation id keeps it once)."""

    def __init__(self, project_id: str, timeout_s: float):
        self.project_id = project_id
        self.timeout_s = timeout_s
        self._client = None

    def client(self):
        if self._client is None:
            from google.cloud import pubsub_v1

            self._client = pubsub_v1.PublisherClient()
        return self._client

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str | None:
        """The message id, or None when it could not be published in time."""
        from google.api_core import retry as gretry

        try:
            client = self.client()
            path = client.topic_path(self.project_id, topic)
            future = client.publish(path, data, retry=gretry.Retry(timeout=self.timeout_s), timeout=self.timeout_s,
                                    **attributes)
            return future.result(timeout=self.timeout_s + 1)
        except Exception:  # noqa: BLE001 - any failure means "not queued": the log line takes over
            return None

    def queue(self, record: UsageRecord, reason: str, now: datetime) -> str | None:
        data, attributes = encode(record, reason, now)
        return self.publish(OUTBOX_TOPIC, data, attributes)
