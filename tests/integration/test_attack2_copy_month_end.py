"""Attack: the scheduled check reads a user's budget from the copy on their base month document
(budgets/copies.py). A PUT writes the copy into the month of its own clock. A PUT whose clock
read 23:59:59 on the last day of a month, and whose batch lands after the new month's first
check filled that month's copy from the budget it read (the old one), left the new month's copy
stale for the whole month: every check of that month used the old budget and missed its
alerts. On the real emulator, the PUT's clock set by the emulator-only clock header."""
from __future__ import annotations

from datetime import datetime, timezone

from tokenledger import store
from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

from .budget_helpers import at

SETTINGS = Settings(budget_check_page_size=50)
USD = 1_000_000_000


def test_attack2_a_put_at_the_months_last_second_is_the_next_months_budget_for_the_check(db, api, auth):
    admin = auth.create_user("admin", admin=True)
    user = auth.create_user("monthend")

    def put(moment: str, **body) -> None:
        response = api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json=body, headers=at(moment))
        assert response.status_code in (200, 201), response.text

    put("2034-11-10T09:00:00Z", monthly_budget=10, alert_thresholds=[0.8, 1.0])
    # December's first calls: $0.90 spent.
    store.user_month_doc(db, user.uid, "2034-12").set({"cost_nanos": 900_000_000, "calls": 3,
                                                       "user_id": user.uid, "month": "2034-12"})
    # December's first check (30 s past midnight) copies the $10 budget into December's document.
    first = check_budgets(db, SETTINGS, datetime(2034, 12, 1, 0, 0, 30, tzinfo=timezone.utc))
    assert [a for a in first.alerts if user.uid in a] == []
    # The admin lowers the budget to $1 at 23:59:59 by the serving instance's clock; its batch
    # lands after that check.
    put("2034-11-30T23:59:59Z", monthly_budget=1, alert_thresholds=[0.8, 1.0])

    copy = store.user_month_doc(db, user.uid, "2034-12").get().to_dict()["budget_copy"]
    assert copy["fields"]["monthly_budget_nanos"] == 1 * USD
    # The next check must hold December to $1: $0.90 is past 80%.
    later = check_budgets(db, SETTINGS, datetime(2034, 12, 1, 1, 0, tzinfo=timezone.utc))
    assert [a for a in later.alerts if user.uid in a] == [f"{user.uid}_2034-12_0.8"]
    alert = db.collection("budget_alerts").document(f"{user.uid}_2034-12_0.8").get().to_dict()
    assert (alert["monthly_budget_nanos"], alert["current_cost_nanos"]) == (1 * USD, 900_000_000)
