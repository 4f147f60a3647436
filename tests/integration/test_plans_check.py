"""The scheduled check holds users to their plan too: it has only uids, so it reads the users'
claims from the Auth emulator (real users, custom claims set as the Admin SDK sets them)."""
from __future__ import annotations

from datetime import datetime, timezone

import firebase_admin

from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

from .budget_helpers import alert_ids
from .plan_helpers import on_plan, plan_id

NOW = datetime(2034, 7, 10, 12, 0, tzinfo=timezone.utc)  # a month no other test uses
MONTH = "2034-07"


def test_the_check_alerts_on_the_plans_thresholds_and_budget(db, auth, stack):
    if not firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": stack.project})
    pid = plan_id("chk")
    db.collection("plans").document(pid).set({"monthly_budget": 2.0, "monthly_budget_nanos": 2_000_000_000,
                                              "alert_thresholds": [0.25]})
    on = on_plan(auth, "chk", pid)
    off = on_plan(auth, "nochk", None)  # the default ($1, alerts at 80% and 100%): $0.60 is below both
    for user in (on, off):
        db.document(f"user_usage/{user.uid}/months/{MONTH}").set(
            {"cost_nanos": 600_000_000, "user_id": user.uid, "month": MONTH})
    report = check_budgets(db, Settings(), NOW)
    assert alert_ids(db, on.uid) == {f"{on.uid}_{MONTH}_0.25"}  # $0.60 of the plan's $2: past 25%
    assert alert_ids(db, off.uid) == set()
    alert = db.collection("budget_alerts").document(f"{on.uid}_{MONTH}_0.25").get().to_dict()
    assert (alert["monthly_budget"], alert["current_cost"]) == (2.0, 0.6)
    assert report.plan_reads >= 1
    db.collection("plans").document(pid).delete()
