"""The scheduled sweep (I/O): re-drives every alert whose delivery is still open
(`delivery_pending == true`, a single-field query per alert collection) and gives a target up
as `failed` once its alert is older than plan.GIVE_UP (24 h).

It reads only the open alerts (none in steady state), so it costs one read per collection when
everything was delivered. Alerts created before any target was configured have no
`delivery_pending` and are never picked up: configuration applies to new alerts.
"""
from __future__ import annotations

from dataclasses import dataclass

from google.cloud import firestore

from tokenledger import logs
from tokenledger.notify import plan
from tokenledger.notify.deliver import ALERT_COLLECTIONS, Worker, field_path

PAGE = 200


@dataclass
class SweepReport:
    open_alerts: int = 0
    given_up: int = 0  # targets marked failed after 24 h
    delivered: int = 0  # targets delivered by this run
    reads: int = 0


def _give_up(worker: Worker, ref, deliveries: dict, report: SweepReport) -> None:
    now = worker.clock()
    fields = {}
    for target_id, state in deliveries.items():
        if state.get("status") not in plan.FINAL:
            fields[field_path(target_id)] = plan.given_up(state, now)
            logs.webhook_failed(ref.path, target_id, fields[field_path(target_id)]["last_error"])
            report.given_up += 1
    worker.write(ref, {**fields, "delivery_pending": False, "delivery_next_at": None, "delivery_undelivered": True})


def sweep(worker: Worker, collections=ALERT_COLLECTIONS) -> SweepReport:
    report = SweepReport()
    for collection in collections:
        query = (worker.db.collection(collection)
                 .where(filter=firestore.FieldFilter("delivery_pending", "==", True)).limit(PAGE))
        snaps = list(query.stream())
        report.reads += max(len(snaps), 1)
        for snap in snaps:
            if worker.out_of_time():
                break  # the next run goes on
            doc = snap.to_dict() or {}
            report.open_alerts += 1
            before = doc.get("deliveries") or {}
            if plan.expired(doc.get("created_at"), worker.clock()):
                _give_up(worker, snap.reference, before, report)
                continue
            after = worker.deliver(snap.reference, doc)
            report.delivered += sum(1 for k, s in after.items()
                                    if s.get("status") == plan.DELIVERED and (before.get(k) or {}).get("status") != plan.DELIVERED)
    logs.alert_sweep_done(**report.__dict__)
    return report
