"""The usage outbox on the emulators: a record published to `usage-outbox` is committed by the
heal_usage function (Pub/Sub emulator -> Functions emulator -> Firestore emulator) exactly once,
releasing what the call held as the inline commit would; a record Firestore refuses goes to the
dead letter and raises the `ledger_dead_letter` admin alert; the health view counts them."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from tokenledger.budgets import admission, rules
from tokenledger.config import Settings
from tokenledger.metering import heal, ledger, outbox

from . import lease_helpers
from .budget_helpers import open_reservations
from .ledger_checks import day_doc, held_beyond_leases, leases_of, month_doc, rows_for
from .outbox_helpers import healed, outbox_state, publish, wait_for

pytestmark = pytest.mark.usefixtures("calm_gate")

NOW = datetime(2043, 5, 14, 10, 0, tzinfo=timezone.utc)  # a month no other test writes
MONTH, DAY = "2043-05", "2043-05-14"
W = 10_000_000  # the worst case of every call here ($0.01)
COST = 3_456_789
BUDGET = rules.Budget(monthly_budget_nanos=1_000_000_000, alert_thresholds=(), enforce=True, source="user")
LEASES = Settings(rate_limit_per_minute=0, max_in_flight=0)  # lease_calls: the default, 8
ONE_BY_ONE = Settings(rate_limit_per_minute=0, max_in_flight=0, lease_calls=0)


def user() -> str:
    return f"ob-{uuid.uuid4().hex[:10]}"


def queue(record) -> bytes:
    data, attributes = outbox.encode(record, "ServiceUnavailable('test')", datetime.now(timezone.utc))
    publish(data, attributes)
    return data


def emulator_log() -> str:
    import os

    return (Path(os.environ["STACK_LOG_DIR"]) / "emulators.log").read_text(errors="replace")


def test_a_queued_call_is_committed_once_releasing_its_own_reservation(db):
    uid = user()
    gate = lease_helpers.instance(uid, BUDGET, ONE_BY_ONE, NOW)
    granted = admission.admit(db, ONE_BY_ONE, gate, uid, False, W, NOW)
    assert len(open_reservations(db, uid)) == 1
    record = lease_helpers.held(gate, granted, lease_helpers.call_record(uid, COST, NOW))
    assert record.reservation_id and not record.lease
    queue(record)

    wait_for(lambda: healed(db, record.generation_id))
    [row] = rows_for(db, uid)
    assert (row["_id"], row["cost_nanos"], row["healed"], row["timestamp"]) == (record.generation_id, COST, True, NOW)
    month = month_doc(db, uid, MONTH)
    assert (month["calls"], month["cost_nanos"], month["reserved_nanos"], month["in_flight"]) == (1, COST, 0, 0)
    assert (day_doc(db, uid, DAY)["calls"], day_doc(db, uid, DAY)["cost_nanos"]) == (1, COST)
    assert open_reservations(db, uid) == []


def test_a_queued_call_admitted_from_a_lease_moves_its_cost_out_of_the_lease(db):
    uid = user()
    gate = lease_helpers.instance(uid, BUDGET, LEASES, NOW)
    granted = admission.admit(db, LEASES, gate, uid, False, W, NOW)
    assert [int(lease["amount_nanos"]) for lease in leases_of(db, uid)] == [8 * W]
    record = lease_helpers.held(gate, granted, lease_helpers.call_record(uid, COST, NOW))
    assert record.lease
    queue(record)

    wait_for(lambda: healed(db, record.generation_id))
    month = month_doc(db, uid, MONTH)
    # cost + reserved unchanged: the call's cost moved from the lease to the month's cost.
    assert (month["calls"], month["cost_nanos"], month["reserved_nanos"]) == (1, COST, 8 * W - COST)
    assert [int(lease["amount_nanos"]) for lease in leases_of(db, uid)] == [8 * W - COST]
    assert held_beyond_leases(db, uid, MONTH) == (0, 0)


def test_a_record_published_twice_is_recorded_once(db):
    uid = user()
    record = lease_helpers.call_record(uid, COST, NOW)
    data = queue(record)
    publish(data, {"generation_id": record.generation_id})  # the same message again

    wait_for(lambda: healed(db, record.generation_id))
    # Both deliveries are done when the second one logged that the ledger already had it.
    wait_for(lambda: any(record.generation_id in line and "already_recorded" in line
                         for line in emulator_log().splitlines()), seconds=60)
    assert [row["_id"] for row in rows_for(db, uid)] == [record.generation_id]
    month = month_doc(db, uid, MONTH)
    assert (month["calls"], month["cost_nanos"]) == (1, COST)


def lose_next_ack(db, monkeypatch) -> dict:
    """The next commit lands, then its acknowledgement is lost (UNAVAILABLE) once."""
    api = db._firestore_api
    real_commit = api.commit
    state = {"lost": 0}

    def commit(*, request, metadata=(), retry=None, timeout=None):
        response = real_commit(request=request, metadata=metadata, retry=retry, timeout=timeout)
        if not state["lost"]:
            state["lost"] += 1
            raise gexc.ServiceUnavailable("connection reset after the commit was applied")
        return response

    monkeypatch.setattr(api, "commit", commit)
    return state


def test_a_delivery_whose_ack_was_lost_and_its_redelivery_record_once(db, monkeypatch):
    uid = user()
    record = lease_helpers.call_record(uid, COST, NOW)
    data, _ = outbox.encode(record, "test", datetime.now(timezone.utc))
    publisher = outbox.Publisher("unused", 1)
    lost = lose_next_ack(db, monkeypatch)
    settings = Settings(outbox_commit_deadline_s=20)
    # The heal's commit landed, its ack was lost: its retry finds the row (AlreadyExists).
    assert heal.heal(db, settings, publisher, data, datetime.now(timezone.utc)) == "already_recorded"
    assert lost["lost"] == 1
    # Pub/Sub, never told, delivers it again.
    assert heal.heal(db, settings, publisher, data, datetime.now(timezone.utc)) == "already_recorded"
    month = month_doc(db, uid, MONTH)
    assert (month["calls"], month["cost_nanos"]) == (1, COST)
    assert [row["_id"] for row in rows_for(db, uid)] == [record.generation_id]
    assert outbox_state(db, record.generation_id)["state"] == heal.HEALED


def test_a_record_firestore_refuses_is_dead_lettered_with_an_admin_alert(db):
    uid = user()
    record = lease_helpers.call_record(uid, COST, NOW)
    from dataclasses import replace

    bad = replace(record, metadata={"__reserved__": 1})  # Firestore refuses field names like __x__
    data = queue(bad)

    alert_ref = db.collection(heal.ADMIN_ALERTS).document(f"{heal.DEAD_LETTER_ALERT}_{bad.generation_id}")
    alert = wait_for(lambda: alert_ref.get().to_dict())
    assert (alert["alert_type"], alert["generation_id"], alert["user_id"]) == ("ledger_dead_letter",
                                                                               bad.generation_id, uid)
    # Everything needed to replay it: the record exactly as queued.
    assert json.loads(alert["record_json"]) == outbox.decode(data).record.to_log()
    assert alert["cost_nanos"] == COST
    assert "InvalidArgument" in alert["reason"]
    assert rows_for(db, uid) == [] and month_doc(db, uid, MONTH) is None
    assert outbox_state(db, bad.generation_id)["state"] == heal.DEAD_LETTER


def test_the_health_view_counts_queued_then_healed(db, api, auth, monkeypatch):
    admin = auth.create_user("ob-admin", admin=True)

    def health() -> dict:
        response = api.request("GET", "/v1/admin/ledger-health", admin)
        assert response.status_code == 200, response.text
        return response.json()

    assert api.request("GET", "/v1/admin/ledger-health", auth.create_user("ob-user")).status_code == 403
    before = health()
    uid = user()
    record = lease_helpers.call_record(uid, COST, NOW)
    queued_at = datetime.now(timezone.utc) - timedelta(minutes=3)
    data, _ = outbox.encode(record, "test", queued_at)
    publisher = outbox.Publisher("unused", 1)

    def down(*args, **kwargs):
        raise ledger.RecordingFailed(record, gexc.RetryError("deadline", gexc.ServiceUnavailable("down")))

    with monkeypatch.context() as patched:
        patched.setattr(ledger, "record_usage", down)
        with pytest.raises(heal.NotHealedYet):
            heal.heal(db, Settings(), publisher, data, datetime.now(timezone.utc))
    during = health()
    assert during["queued"] == before["queued"] + 1
    assert during["oldest_queued_at"] is not None and during["oldest_queued_age_s"] >= 180
    assert outbox_state(db, record.generation_id)["attempts"] == 1

    assert heal.heal(db, Settings(), publisher, data, datetime.now(timezone.utc)) == "recorded"
    after = health()
    assert after["queued"] == before["queued"]
    assert (after["healed_last_hour"], after["healed_last_day"]) == (before["healed_last_hour"] + 1,
                                                                     before["healed_last_day"] + 1)
    assert after["dead_lettered"] == before["dead_lettered"]
    pending = after["pending_rows"]
    assert pending["total"] == pending["under_1h"] + pending["1h_to_1d"] + pending["over_1d"]
