"""Attack: the month document's `alerts_sent` flags were keyed per mille (0.8 -> "800"), while
alert ids and thresholds are exact. Two thresholds in one per mille (an admin's 0.8001 and
0.8004, both accepted by PUT) shared one flag: once the first was sent, the second counted as
sent, and neither a chat call nor the scheduled check ever wrote it. On the real emulator,
through PUT and the scheduled check."""
from __future__ import annotations

from datetime import datetime, timezone

from tokenledger import store
from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

from .budget_helpers import alert_ids, at

SETTINGS = Settings(budget_check_page_size=50)


def test_attack2_thresholds_within_one_per_mille_are_each_alerted(db, api, auth):
    admin = auth.create_user("admin", admin=True)
    user = auth.create_user("flags")
    response = api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, headers=at("2044-02-03T09:00:00Z"),
                           json={"monthly_budget": 1, "alert_thresholds": [0.8001, 0.8004]})
    assert response.status_code == 201, response.text
    month = store.user_month_doc(db, user.uid, "2044-02")
    month.set({"cost_nanos": 800_200_000, "calls": 1, "user_id": user.uid, "month": "2044-02"}, merge=True)
    check_budgets(db, SETTINGS, datetime(2044, 2, 3, 10, 0, tzinfo=timezone.utc))  # $0.8002: the first
    month.set({"cost_nanos": 900_000_000}, merge=True)
    check_budgets(db, SETTINGS, datetime(2044, 2, 3, 11, 0, tzinfo=timezone.utc))  # $0.90: the second
    assert alert_ids(db, user.uid) == {f"{user.uid}_2044-02_0.8001", f"{user.uid}_2044-02_0.8004"}
