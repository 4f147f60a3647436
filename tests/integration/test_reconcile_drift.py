"""The monthly drift check (part of reconcile_usage): the ledger's month total against
OpenRouter's own account (GET /key usage_monthly), written to reconciliation/{YYYY-MM},
with an admin alert above the tolerance (default 1% or $1, whichever is larger)."""
from __future__ import annotations

import os
from datetime import datetime, timezone

from scripts.trigger_schedule import trigger
from tokenledger import money


def ledger_month_nanos(db, month):
    shards = db.collection("usage_totals").document(month).collection("shards").stream()
    return sum(s.to_dict().get("cost_nanos", 0) for s in shards)


def check(db, standin):
    status, body = trigger("reconcile_usage", timeout=120)
    assert status == 200, body
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    doc = db.collection("reconciliation").document(month).get().to_dict()
    key = standin.key(os.environ["OPENROUTER_API_KEY"])
    return month, doc, key


def test_drift_is_written_and_alerted_when_openrouter_disagrees(api, user, standin, db):
    assert api.chat(user).status_code == 200  # something in the ledger this month

    month, doc, key = check(db, standin)
    openrouter_nanos = money.to_nanos(money.to_decimal(key["usage_monthly"]))
    assert doc["month"] == month and doc["checked_at"]
    assert doc["ledger_total_nanos"] == ledger_month_nanos(db, month)
    assert doc["openrouter_total_nanos"] == openrouter_nanos
    assert doc["drift_nanos"] == openrouter_nanos - doc["ledger_total_nanos"]
    assert doc["above_tolerance"] is False  # cents apart at most: within $1

    # OpenRouter's account shows $5 the ledger never saw (e.g. calls that bypassed it).
    standin.configure(key_usage_offset=5)
    month, doc, key = check(db, standin)
    assert doc["openrouter_total_nanos"] == money.to_nanos(money.to_decimal(key["usage_monthly"]))
    assert doc["drift_nanos"] == doc["openrouter_total_nanos"] - doc["ledger_total_nanos"]
    assert doc["drift"] > 4 and doc["above_tolerance"] is True
    alert = db.collection("admin_alerts").document(f"ledger_drift_{month}").get().to_dict()
    assert alert["alert_type"] == "ledger_drift" and alert["drift"] == doc["drift"]
    assert month in alert["message"]
