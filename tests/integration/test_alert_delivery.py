"""Alert delivery on the emulators: the Firestore trigger on alert creation delivers to the local
webhook sink (scripts/webhook_sink.py) that scripts/stack starts, through the SSRF guard.

The stack lists these targets (scripts/stackkit/webhooks.py): the sink's allowlisted port at
/hook, /flaky (500 twice per event id for a user the test arms, then 200), slack+ /slack and /redirect (302 to the
metadata server); and targets the guard must refuse: the sink's second, unlisted port over
http, https://localhost:<that port>, https://169.254.169.254/, https://[::ffff:127.0.0.1]:<port>.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

from .budget_helpers import at, put_budget
from .ledger_checks import expected_day_costs, month_doc, rows_for

SINK = os.environ.get("WEBHOOK_SINK_URL", "")
UNLISTED = os.environ.get("WEBHOOK_SINK_UNLISTED_URL", "")
SECRET = os.environ.get("TOKENLEDGER_WEBHOOK_SECRET", "")
pytestmark = pytest.mark.skipif(not SINK, reason="the stack's webhook sink is off (TOKENLEDGER_ALERT_WEBHOOKS given)")


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def received() -> list[dict]:
    return requests.get(f"{SINK}/_received", timeout=10).json()["requests"]


def settled(db, path: str, timeout: float = 90.0) -> dict:
    """The alert document once its delivery is no longer pending (every target final)."""
    deadline = time.monotonic() + timeout
    while True:
        doc = db.document(path).get().to_dict() or {}
        if doc.get("deliveries") and doc.get("delivery_pending") is False:
            return doc
        assert time.monotonic() < deadline, f"delivery of {path} still open: {doc.get('deliveries')}"
        time.sleep(0.5)


def verify(request: dict) -> dict:
    """A receiver's check, written from the README's description (not from the package)."""
    header = {k.lower(): v for k, v in request["headers"].items()}["x-tokenledger-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    body = request["body"].encode("utf-8")
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    assert abs(time.time() - int(parts["t"])) < 300
    return json.loads(body)


def event_id_of(request: dict) -> str:
    return {k.lower(): v for k, v in request["headers"].items()}["x-tokenledger-event-id"]


def about(requests_: list[dict], alert_id: str) -> list[dict]:
    return [r for r in requests_ if alert_id in r["body"]]


def test_a_threshold_alert_reaches_the_receivers_signed_once_and_blocked_targets_get_nothing(api, auth, admin, db,
                                                                                            standin):
    user = auth.create_user("hooked")
    requests.post(f"{SINK}/_flaky", json={"match": user.uid}, timeout=10).raise_for_status()  # 500 twice, for this user
    put_budget(api, admin, user.uid, monthly_budget=1.0, enforce=False)
    standin.script([{"cost": 0.9}], user=user.uid)
    response = api.request("POST", "/v1/chat/completions", user, headers=at("2047-09-06T12:00:00Z"),
                           json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    check_budgets(db, Settings(), datetime(2047, 9, 6, 13, 0, tzinfo=timezone.utc))  # if the call did not write it
    alert_id = f"{user.uid}_2047-09_0.8"
    doc = settled(db, f"budget_alerts/{alert_id}")
    mine = about(received(), alert_id)
    sink_port = urlsplit(SINK).port

    hook = [r for r in mine if r["path"] == "/hook"]
    assert len(hook) == 1 and hook[0]["port"] == sink_port  # once; the ::ffff: twin never arrived
    event = verify(hook[0])
    assert event["type"] == "budget_threshold" and event["id"] == event_id_of(hook[0])
    assert (event["data"]["user_id"], event["data"]["month"], event["data"]["alert_id"]) == (user.uid, "2047-09",
                                                                                            alert_id)
    assert event["data"]["current_cost_nanos"] == 900_000_000
    assert event["data"]["monthly_budget_nanos"] == 1_000_000_000

    flaky = [r for r in mine if r["path"] == "/flaky"]
    assert [r["status"] for r in flaky] == [500, 500, 200]
    assert len({event_id_of(r) for r in flaky}) == 1  # the same event id on every retry
    assert {json.loads(r["body"])["id"] for r in flaky} == {event_id_of(flaky[0])}
    for r in flaky:
        verify(r)

    slack = [r for r in mine if r["path"] == "/slack"]
    assert len(slack) == 1
    slack_body = json.loads(slack[0]["body"])
    assert slack_body["text"].startswith(f"tokenledger budget_threshold: user {user.uid} in 2047-09")
    assert "blocks" in slack_body

    redirect = [r for r in mine if r["path"] == "/redirect"]
    assert [r["status"] for r in redirect] == [302]
    assert not [r for r in mine if r["port"] != sink_port]  # the unlisted port got nothing

    states = {s["status"] for s in doc["deliveries"].values()}
    by_status = sorted((s["status"], s["attempts"]) for s in doc["deliveries"].values())
    assert by_status == [("blocked", 0), ("blocked", 0), ("blocked", 0), ("blocked", 0), ("blocked", 1),
                         ("delivered", 1), ("delivered", 1), ("delivered", 3)], states
    reasons = sorted(s["last_error"] for s in doc["deliveries"].values() if s["status"] == "blocked")
    unlisted = urlsplit(UNLISTED)
    assert reasons == sorted([
        f"blocked: http to 127.0.0.1:{unlisted.port} is not in TOKENLEDGER_WEBHOOK_ALLOW_HTTP (https only)",
        "blocked: 169.254.169.254 resolves to 169.254.169.254 is link-local",
        "blocked: ::ffff:127.0.0.1 resolves to ::ffff:7f00:1 is IPv4-mapped: 127.0.0.1 is loopback",
        next(r for r in reasons if r.startswith("blocked: localhost resolves to ")),
        "blocked: redirect not followed; its target is refused: http to 169.254.169.254:80 is not in "
        "TOKENLEDGER_WEBHOOK_ALLOW_HTTP (https only)",
    ])
    assert "loopback" in next(r for r in reasons if r.startswith("blocked: localhost"))
    assert all("127.0.0.1:" + str(sink_port) not in s.get("last_error", "") for s in doc["deliveries"].values())


def _calls(api, user, standin, days: dict[int, list[float]], month: str) -> None:
    for day, costs in sorted(days.items()):
        standin.script([{"cost": c} for c in costs], user=user.uid)
        for _ in costs:
            response = api.request("POST", "/v1/chat/completions", user, headers=at(f"{month}-{day:02d}T12:00:00Z"),
                                   json={"model": "openai/gpt-4o-mini",
                                         "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200, response.text


def _alerts(db, uid: str, kind: str) -> dict[str, dict]:
    snaps = db.collection("budget_alerts").where(filter=FieldFilter("user_id", "==", uid)).stream()
    return {s.id: s.to_dict() for s in snaps if (s.to_dict() or {}).get("alert_type") == kind}


def test_a_forecast_for_the_user_on_course_to_exceed_and_not_for_the_other(api, auth, admin, db, standin):
    fast, slow = auth.create_user("fast"), auth.create_user("slow")
    for who, per_day in ((fast, 0.5), (slow, 0.2)):
        put_budget(api, admin, who.uid, monthly_budget=10.0, enforce=False, requests_per_minute=None,
                   max_in_flight=None)
        _calls(api, who, standin, {d: [per_day] for d in range(1, 10)}, "2047-03")
    fast_month = month_doc(db, fast.uid, "2047-03")  # base document and shards (calls back to back), summed
    assert fast_month["day_costs"] == {f"{d:02d}": 500_000_000 for d in range(1, 10)}  # written by the ledger
    assert fast_month["day_costs"] == expected_day_costs(rows_for(db, fast.uid))
    now = datetime(2047, 3, 10, 9, 0, tzinfo=timezone.utc)
    check_budgets(db, Settings(), now)
    check_budgets(db, Settings(), now + timedelta(hours=1))  # once per user and month
    assert _alerts(db, slow.uid, "budget_forecast") == {}
    alerts = _alerts(db, fast.uid, "budget_forecast")
    assert list(alerts) == [f"{fast.uid}_2047-03_forecast"]
    forecast = alerts[f"{fast.uid}_2047-03_forecast"]
    # $4.50 spent by the 9th at $0.50 a day: $4.50 + $0.50 today + 21 more days x $0.50 = $15.50;
    # $10.00 is reached at the end of the 20th ($4.50 + 11 days x $0.50)
    assert forecast["projected_nanos"] == 15_500_000_000 and forecast["current_cost_nanos"] == 4_500_000_000
    assert forecast["projected_day"] == "2047-03-20"
    listed = api.request("GET", "/v1/alerts", fast).json()["data"]
    assert [(a["alert_type"], a["projected"], a["projected_day"]) for a in listed] == [
        ("budget_forecast", 15.5, "2047-03-20")]


def test_a_tenfold_day_writes_one_spike_alert(api, auth, admin, db, standin):
    user = auth.create_user("spiky")
    put_budget(api, admin, user.uid, monthly_budget=100.0, enforce=False, requests_per_minute=None,
               max_in_flight=None)
    _calls(api, user, standin, {5: [0.1], 6: [0.1], 7: [0.1], 8: [0.1], 9: [0.5, 0.5]}, "2047-05")
    now = datetime(2047, 5, 9, 18, 0, tzinfo=timezone.utc)
    check_budgets(db, Settings(), now)
    _calls(api, user, standin, {9: [0.2]}, "2047-05")
    check_budgets(db, Settings(), now + timedelta(hours=1))  # once per user and day
    spikes = _alerts(db, user.uid, "usage_spike")
    assert list(spikes) == [f"{user.uid}_2047-05-09_spike"]
    assert (spikes[f"{user.uid}_2047-05-09_spike"]["day_cost_nanos"],
            spikes[f"{user.uid}_2047-05-09_spike"]["median_day_cost_nanos"]) == (1_000_000_000, 100_000_000)


def test_app_spend_alerts_once_per_threshold_and_are_delivered(api, auth, admin, db, standin):
    user = auth.create_user("app")
    put_budget(api, admin, user.uid, monthly_budget=100.0, enforce=False, requests_per_minute=None,
               max_in_flight=None)
    settings = Settings(app_monthly_budget=Decimal("5"))
    now = datetime(2047, 7, 20, 12, 0, tzinfo=timezone.utc)
    _calls(api, user, standin, {2: [1.0, 1.0], 3: [1.0, 1.0]}, "2047-07")  # $4.00 of $5.00: 80%
    check_budgets(db, settings, now)
    check_budgets(db, settings, now)
    _calls(api, user, standin, {4: [1.0]}, "2047-07")  # $5.00: 100%
    check_budgets(db, settings, now)
    check_budgets(db, settings, now)
    ids = sorted(s.id for s in db.collection("admin_alerts").stream() if s.id.startswith("app_spend_2047-07"))
    assert ids == ["app_spend_2047-07_1000", "app_spend_2047-07_800"]
    doc = settled(db, "admin_alerts/app_spend_2047-07_800")
    assert doc["current_cost_nanos"] == 4_000_000_000 and doc["monthly_budget_nanos"] == 5_000_000_000
    hook = [r for r in about(received(), "app_spend_2047-07_800") if r["path"] == "/hook"]
    assert len(hook) == 1 and verify(hook[0])["type"] == "app_spend"


def test_the_sweep_redrives_what_is_due_and_gives_up_after_24_hours(db):
    """The sweep on its own (a collection without a trigger, so only the sweep acts): an alert
    whose target is due again is delivered; one created 24 h ago has its open target failed."""
    from tokenledger.notify import deliver, sweep
    from tokenledger.notify.targets import parse

    collection = f"sweep_test_{int(time.time() * 1000)}"
    target = parse(f"{SINK}/hook")
    settings = Settings(alert_webhooks=(f"{SINK}/hook",), webhook_allow_http=(urlsplit(SINK).netloc,))
    now = datetime.now(timezone.utc)
    open_state = {"status": "retrying", "attempts": 2, "last_error": "HTTP 503", "next_at": now - timedelta(seconds=1)}
    db.collection(collection).document("fresh").set({
        "alert_type": "budget_threshold", "user_id": "u-sweep", "created_at": now - timedelta(hours=1),
        "deliveries": {target.id: open_state}, "delivery_pending": True})
    db.collection(collection).document("old").set({
        "alert_type": "budget_threshold", "user_id": "u-sweep", "created_at": now - timedelta(hours=24, seconds=1),
        "deliveries": {target.id: open_state}, "delivery_pending": True})
    worker = deliver.Worker(db, settings, SECRET)
    report = sweep.sweep(worker, collections=(collection,))
    assert (report.open_alerts, report.delivered, report.given_up) == (2, 1, 1)
    fresh = db.collection(collection).document("fresh").get().to_dict()
    old = db.collection(collection).document("old").get().to_dict()
    assert (fresh["deliveries"][target.id]["status"], fresh["deliveries"][target.id]["attempts"]) == ("delivered", 3)
    assert fresh["delivery_pending"] is False and fresh["delivery_undelivered"] is False
    assert old["deliveries"][target.id]["status"] == "failed"
    assert old["deliveries"][target.id]["last_error"] == "gave up after 24 h: HTTP 503"
    assert (old["delivery_pending"], old["delivery_undelivered"]) == (False, True)
    hook = [r for r in about(received(), f'"{collection}"') if r["path"] == "/hook"]
    assert len(hook) == 1 and verify(hook[0])["data"]["alert_id"] == "fresh"
    assert sweep.sweep(worker, collections=(collection,)).open_alerts == 0  # nothing left to read


def test_the_deployed_sweep_gives_up_on_an_alert_older_than_a_day(db):
    """sweep_alert_deliveries as the scheduler runs it in the emulator (with the stack's targets):
    an alert created 25 h ago whose /hook target is still open is given up."""
    from scripts.trigger_schedule import trigger
    from tokenledger.notify.targets import parse

    hook = parse(f"{SINK}/hook")
    now = datetime.now(timezone.utc)
    alert = db.collection("admin_alerts").document(f"sweep_old_{int(time.time() * 1000)}")
    alert.create({"alert_type": "test_kind", "message": "old", "created_at": now - timedelta(hours=25),
                  "deliveries": {hook.id: {"status": "retrying", "attempts": 5, "last_error": "timeout",
                                           "next_at": now + timedelta(hours=1)}}})
    deadline = time.monotonic() + 90
    while True:  # the trigger ran: the 7 other targets are final, /hook (not due for an hour) is still open
        doc = alert.get().to_dict()
        others = [s for k, s in (doc.get("deliveries") or {}).items() if k != hook.id]
        if len(others) == 7 and all(s["status"] in ("delivered", "blocked", "failed") for s in others) \
                and "delivery_next_at" in doc:
            break
        assert time.monotonic() < deadline, doc.get("deliveries")
        time.sleep(0.5)
    assert (doc["deliveries"][hook.id]["status"], doc["delivery_pending"]) == ("retrying", True)
    status, body = trigger("sweep_alert_deliveries")
    assert status == 200, body
    after = alert.get().to_dict()
    assert after["deliveries"][hook.id]["status"] == "failed"
    assert after["deliveries"][hook.id]["last_error"] == "gave up after 24 h: timeout"
    assert (after["delivery_pending"], after["delivery_undelivered"]) == (False, True)
