"""The budget copy on the month document (pure parts): a copy stands for exactly the budget its
document gives, omitted fields still following the configuration at the time of the check."""
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from tokenledger.budgets import copies, rules
from tokenledger.config import Settings

SETTINGS = Settings()
STAMP = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)


def test_a_copy_keeps_only_the_budget_fields_and_the_documents_version():
    doc = {"monthly_budget": 25.0, "monthly_budget_nanos": 25_000_000_000, "email": "a@example.com",
           "created_at": STAMP, "updated_at": STAMP, "note": "not a budget field"}
    assert copies.copy_of(doc) == {"exists": True, "updated_at": STAMP, "fields": {
        "monthly_budget": 25.0, "monthly_budget_nanos": 25_000_000_000, "email": "a@example.com"}}
    assert copies.copy_of(None) == {"exists": False}


def test_a_copy_gives_the_budget_of_its_document():
    documents = [
        {"monthly_budget": 25.0, "monthly_budget_nanos": 25_000_000_000, "alert_thresholds": [0.5, 1.0],
         "enforce": True, "email": "a@example.com", "free_daily_requests": 200, "requests_per_minute": 10,
         "max_in_flight": 2, "updated_at": STAMP},
        {"monthly_budget": None, "monthly_budget_nanos": None, "free_daily_requests": None, "updated_at": STAMP},
        {"monthly_budget": 0.0, "monthly_budget_nanos": 0, "enforce": True},
        {"updated_at": STAMP},  # PUT with an empty body: every field the configured default, source "user"
        {"monthly_budget": 3},  # written by hand, without the nanos
    ]
    for doc in documents:
        assert copies.budget_of(copies.copy_of(doc), SETTINGS) == rules.budget_from_doc(doc, SETTINGS), doc
    assert copies.budget_of(copies.copy_of(None), SETTINGS) == rules.default_budget(SETTINGS)


def test_omitted_fields_follow_the_configuration_of_the_check_not_of_the_copy():
    copy = copies.copy_of({"monthly_budget": 10.0, "monthly_budget_nanos": 10_000_000_000, "updated_at": STAMP})
    changed = replace(SETTINGS, default_alert_thresholds=(Decimal("0.5"),), default_monthly_budget=Decimal(7))
    budget = copies.budget_of(copy, changed)
    assert (budget.monthly_budget_nanos, budget.alert_thresholds) == (10_000_000_000, (Decimal("0.5"),))
    assert copies.budget_of(copies.copy_of(None), changed).monthly_budget_nanos == 7_000_000_000


def test_a_put_in_a_months_last_minutes_copies_the_budget_into_the_next_month_too():
    from datetime import datetime, timezone

    def months(moment: str) -> list[str]:
        return copies.copy_months(datetime.fromisoformat(moment).replace(tzinfo=timezone.utc))

    assert months("2034-11-30T23:54:59") == ["2034-11"]
    assert months("2034-11-30T23:55:00") == ["2034-11", "2034-12"]
    assert months("2034-12-31T23:59:59") == ["2034-12", "2035-01"]
    assert months("2034-12-01T00:00:00") == ["2034-12"]
