"""The monthly drift check (part of reconcile_usage): the ledger's month total against
OpenRouter's own account (GET /key usage_monthly), written to reconciliation/{YYYY-MM},
with an admin alert above the tolerance (default 1% or $1, whichever is larger)."""
from __future__ import annotations

import os
from datetime import datetime, timezone

from scripts.devkit import workload
from scripts.trigger_schedule import trigger
from tokenledger import config, money
from tokenledger.metering import ledger
from tokenledger.openrouter import OpenRouterClient
from tokenledger.reconcile import settle

# A month no other test writes to: its ledger holds exactly what this module seeds.
OWN_MONTH_NOW = datetime(2031, 3, 15, 12, 0, tzinfo=timezone.utc)


def ledger_month_nanos(db, month):
    shards = db.collection("usage_totals").document(month).collection("shards").stream()
    return sum(s.to_dict().get("cost_nanos", 0) for s in shards)


def test_drift_on_a_month_of_its_own_is_exact(auth, standin, db):
    uid = auth.create_user("drift").uid
    # Two gpt-4o-mini calls of 1,200 prompt + 300 completion tokens at $0.15 / $0.60 per
    # million: 1,200 x 150 + 300 x 600 = 360,000 nano-dollars each.
    for _ in range(2):
        ledger.record_usage(db, workload.record(uid, "openai/gpt-4o-mini", OWN_MONTH_NOW), config.Settings())
    settings = config.Settings(openrouter_base_url=os.environ["OPENROUTER_BASE_URL"].rstrip("/"),
                               openrouter_api_key=os.environ["OPENROUTER_API_KEY"])
    client = OpenRouterClient(settings)
    # The stand-in was reset (no calls): its account shows exactly the configured offset.
    standin.configure(key_usage_offset="0.0015")
    drift = settle.check_drift(db, client, settings, OWN_MONTH_NOW)
    doc = db.collection("reconciliation").document("2031-03").get().to_dict()
    assert (doc["ledger_total_nanos"], doc["openrouter_total_nanos"], doc["drift_nanos"]) == (
        720_000, 1_500_000, 780_000)
    assert (doc["tolerance"], doc["above_tolerance"]) == (1.0, False)  # $1 beats 1% of $0.0015
    assert drift.drift == money.from_nanos(780_000)
    assert not db.collection("admin_alerts").document("ledger_drift_2031-03").get().exists

    # $250 the ledger never saw: 1% of $250.0015 is $2.500015, above $1; the drift is above both.
    standin.configure(key_usage_offset="250.0015")
    settle.check_drift(db, client, settings, OWN_MONTH_NOW)
    doc = db.collection("reconciliation").document("2031-03").get().to_dict()
    assert (doc["ledger_total_nanos"], doc["openrouter_total_nanos"], doc["drift_nanos"]) == (
        720_000, 250_001_500_000, 250_000_780_000)
    assert (doc["tolerance"], doc["above_tolerance"]) == (2.500015, True)
    alert = db.collection("admin_alerts").document("ledger_drift_2031-03").get().to_dict()
    assert (alert["alert_type"], alert["month"], alert["drift"]) == ("ledger_drift", "2031-03", 250.00078)
    assert alert["message"] == ("The ledger for 2031-03 differs from OpenRouter's account by $250.000780 "
                                "(tolerance $2.50).")


def check(db, standin):
    status, body = trigger("reconcile_usage", timeout=120)
    assert status == 200, body
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    doc = db.collection("reconciliation").document(month).get().to_dict()
    key = standin.key(os.environ["OPENROUTER_API_KEY"])
    return month, doc, key


def test_the_scheduled_function_writes_the_current_months_drift(api, user, standin, db):
    """The deployed function's run (this month, shared with every other test: the relation is
    exact, the totals are whatever the suite has spent)."""
    assert api.chat(user).status_code == 200  # something in the ledger this month

    month, doc, key = check(db, standin)
    openrouter_nanos = money.to_nanos(money.to_decimal(key["usage_monthly"]))
    assert doc["month"] == month and doc["checked_at"]
    assert doc["ledger_total_nanos"] == ledger_month_nanos(db, month)
    assert doc["openrouter_total_nanos"] == openrouter_nanos
    assert doc["drift_nanos"] == openrouter_nanos - doc["ledger_total_nanos"]
    first_drift = doc["drift_nanos"]

    # OpenRouter's account shows $5 the ledger never saw (e.g. calls that bypassed it).
    standin.configure(key_usage_offset=5)
    month, doc, key = check(db, standin)
    assert doc["openrouter_total_nanos"] == money.to_nanos(money.to_decimal(key["usage_monthly"]))
    assert doc["drift_nanos"] == first_drift + 5_000_000_000
    assert doc["above_tolerance"] is True
    alert = db.collection("admin_alerts").document(f"ledger_drift_{month}").get().to_dict()
    assert alert["alert_type"] == "ledger_drift" and alert["drift"] == doc["drift"]
    assert month in alert["message"]
