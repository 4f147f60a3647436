"""Delivering one alert document to every configured target (I/O), keeping each target's state
on the document (`deliveries.<target id>`, see plan.py), `delivery_pending` while any target
is still open (for the sweep) and `delivery_undelivered` while any target is not delivered (for
the admin page: open, blocked or failed).

Generic: any document of an alert collection (ALERT_COLLECTIONS) is delivered as it is, whoever
wrote it. Writes are `update()`s of the delivery fields only: they never touch the alert's own
fields and never bring back a deleted alert.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.field_path import FieldPath

from tokenledger import logs, store
from tokenledger.config import Settings
from tokenledger.notify import payload, plan, send, targets

ALERT_COLLECTIONS = (store.ALERTS, store.ADMIN_ALERTS)
# A trigger run stops trying after this long (its function's timeout is 300 s; a target that
# times out costs 5 s an attempt): the sweep takes over what is left.
RUN_BUDGET_S = 120.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def field_path(target_id: str) -> str:
    return FieldPath("deliveries", target_id).to_api_repr()


def _request(alert_path: str, doc: dict, target: targets.Target, secret: str, now: datetime) -> tuple[bytes, dict]:
    event_id = payload.event_id(alert_path, target.id)
    if target.kind == targets.SLACK:
        body = payload.body_bytes(payload.slack_body(alert_path, doc, target.id))
    else:
        body = payload.body_bytes(payload.event(alert_path, doc, target.id))
    headers = {payload.EVENT_ID_HEADER: event_id}
    if secret:
        headers[payload.SIGNATURE_HEADER] = payload.signature(secret, int(now.timestamp()), body)
    return body, headers


class Worker:
    """Delivers alerts with one HTTP client; `clock` and `sleep` are replaceable for tests."""

    def __init__(self, db, settings: Settings, secret: str, clock=utcnow, sleep=time.sleep,
                 run_s: float = RUN_BUDGET_S):
        self.db, self.settings, self.secret = db, settings, secret
        self.clock, self.sleep = clock, sleep
        self.deadline = time.monotonic() + run_s
        self.targets, self.unusable = targets.parse_all(settings.alert_webhooks)

    def out_of_time(self) -> bool:
        """Past this run's budget: what is left stays open (`delivery_pending`) for the sweep."""
        return time.monotonic() > self.deadline

    def write(self, ref, fields: dict) -> bool:
        try:
            ref.update(fields)
        except gexc.NotFound:
            return False  # the alert was deleted: nothing to keep state on
        return True

    def _start(self, path: str, deliveries: dict, now: datetime) -> dict:
        fresh = {}
        for target in self.targets:
            if target.id not in deliveries:
                fresh[target.id] = {"status": plan.PENDING, "attempts": 0, "kind": target.kind,
                                    "event_id": payload.event_id(path, target.id), "updated_at": now}
        for target_id, why in self.unusable:
            if target_id not in deliveries:
                fresh[target_id] = {"status": plan.FAILED, "attempts": 0, "last_error": f"unusable target: {why}",
                                    "updated_at": now}
        return fresh

    def _attempt(self, client, path: str, doc: dict, target: targets.Target, state: dict) -> dict:
        if target.kind == targets.WEBHOOK and not self.secret:
            return {**state, "status": plan.FAILED, "last_error": "TOKENLEDGER_WEBHOOK_SECRET is not set",
                    "updated_at": self.clock()}
        body, headers = _request(path, doc, target, self.secret, self.clock())
        outcome = send.post(target, body, headers, self.settings.webhook_allow_http, client)
        return plan.after_attempt(state, outcome, self.clock())

    def _drive(self, client, ref, doc: dict, target: targets.Target, state: dict) -> dict | None:
        """Attempts while the waits are short; the state written after each. None: alert gone."""
        for _ in range(plan.IN_RUN_ATTEMPTS):
            state = self._attempt(client, ref.path, doc, target, state)
            if not self.write(ref, {field_path(target.id): state}):
                return None
            if state["status"] != plan.RETRYING:
                break
            wait = (state["next_at"] - self.clock()).total_seconds()
            if wait > plan.IN_RUN_WAIT_S or self.out_of_time():
                break
            self.sleep(max(wait, 0.0))
        if state["status"] == plan.BLOCKED:
            logs.webhook_blocked(ref.path, target.id, state.get("last_error", ""))
        elif state["status"] == plan.FAILED:
            logs.webhook_failed(ref.path, target.id, state.get("last_error", ""))
        return state

    def deliver(self, ref, doc: dict) -> dict:
        """Every due target of this alert; returns the deliveries as left on the document."""
        deliveries = dict(doc.get("deliveries") or {})
        if not self.targets and not self.unusable:
            return deliveries
        fresh = self._start(ref.path, deliveries, self.clock())
        deliveries.update(fresh)
        if fresh and not self.write(ref, {**{field_path(k): v for k, v in fresh.items()}, "delivery_pending": True}):
            return deliveries
        with send.new_client() as client:
            for target in self.targets:
                if plan.due(deliveries.get(target.id), self.clock()) and not self.out_of_time():
                    state = self._drive(client, ref, doc, target, deliveries[target.id])
                    if state is None:
                        return deliveries
                    deliveries[target.id] = state
        self.write(ref, {"delivery_pending": plan.pending(deliveries), "delivery_next_at": plan.next_due(deliveries),
                          "delivery_undelivered": plan.undelivered(deliveries)})
        return deliveries


def on_alert_created(db, settings: Settings, secret: str, path: str) -> dict:
    """The trigger's body: deliver the new alert at `path`. The event is delivered at least once:
    a repeated event (or one arriving after the sweep acted) must go on from the state on the
    document, not from the creation snapshot, so the document is read again (one read)."""
    worker = Worker(db, settings, secret)
    if not worker.targets and not worker.unusable:
        return {}
    ref = db.document(path)
    snap = ref.get()
    return worker.deliver(ref, snap.to_dict() or {}) if snap.exists else {}
