"""What a target receives for an alert (pure): the JSON event or Slack's body, and the signature.

Any document of an alert collection can be delivered: its `alert_type` is the event's `type` and
its fields are the event's `data` (timestamps as ISO 8601, delivery bookkeeping left out). So
alert kinds added later are delivered with no change here.

    {"id": "evt_…", "type": "budget_threshold", "created": 1767225600,
     "data": {"alert_id": "...", "user_id": "...", "month": "2026-12", "current_cost": 0.8, ...}}

`id` is stable per alert and target (the same on every retry and every re-drive), so a receiver
dedupes on it. The signature header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
keyed with TOKENLEDGER_WEBHOOK_SECRET; `t` is the time of sending, so a receiver can refuse old
bodies (replays).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from decimal import Decimal

SIGNATURE_HEADER = "X-Tokenledger-Signature"
EVENT_ID_HEADER = "X-Tokenledger-Event-Id"
# Bookkeeping of the delivery itself, never part of an event.
PRIVATE_FIELDS = frozenset({"deliveries", "delivery_pending", "delivery_next_at", "delivery_undelivered"})


def event_id(alert_path: str, target_id: str) -> str:
    return "evt_" + hashlib.sha256(f"{alert_path}|{target_id}".encode("utf-8")).hexdigest()[:32]


def _plain(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def alert_type(doc: dict) -> str:
    return str(doc.get("alert_type") or doc.get("type") or "alert")


def created_seconds(doc: dict) -> int:
    created = doc.get("created_at")
    return int(created.timestamp()) if isinstance(created, datetime) else 0


def event(alert_path: str, doc: dict, target_id: str) -> dict:
    data = {"alert_id": alert_path.rsplit("/", 1)[-1], "collection": alert_path.rsplit("/", 1)[0]}
    data.update({k: _plain(v) for k, v in sorted(doc.items()) if k not in PRIVATE_FIELDS})
    return {"id": event_id(alert_path, target_id), "type": alert_type(doc), "created": created_seconds(doc),
            "data": data}


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value: t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# ---- Slack ------------------------------------------------------------------------------

def _usd(value) -> str:
    return f"${value:,.2f}" if isinstance(value, (int, float)) and abs(value) >= 1 else (
        f"${value:,.6f}" if isinstance(value, (int, float)) else str(value))


def summary(doc: dict) -> str:
    """One line a person reads: the kind, who, and the money, from whatever fields the alert has."""
    kind = alert_type(doc)
    who = f"user {doc['user_id']}" if doc.get("user_id") else "the app"
    parts = [f"tokenledger {kind}: {who}"]
    if doc.get("month"):
        parts.append(f"in {doc['month']}")
    if doc.get("message"):
        return " ".join(parts) + f" — {doc['message']}"
    money = []
    for label, key in (("spent", "current_cost"), ("budget", "monthly_budget"), ("projected", "projected"),
                       ("today", "day_cost"), ("median day", "median_day_cost")):
        if isinstance(doc.get(key), (int, float)):
            money.append(f"{label} {_usd(doc[key])}")
    if doc.get("projected_day"):
        money.append(f"budget reached on {doc['projected_day']}")
    return " ".join(parts) + (": " + ", ".join(money) if money else "")


def slack_escape(text: str) -> str:
    """Slack's three control characters (so a value can never become a mention or a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(alert_path: str, doc: dict, target_id: str) -> dict:
    text = slack_escape(summary(doc))
    facts = event(alert_path, doc, target_id)["data"]
    fields = [{"type": "mrkdwn", "text": f"*{slack_escape(k)}*\n{slack_escape(str(v))}"} for k, v in facts.items()
              if isinstance(v, (str, int, float)) and not isinstance(v, bool)][:10]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    return {"text": text, "blocks": blocks}
