"""Budget rules (pure): budgets from documents and defaults, worst case, admission, thresholds."""
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from tokenledger.budgets import alerts, rules
from tokenledger.config import Settings
from tokenledger.pricing.prices import fallback_price, parse_model

D = Decimal
SETTINGS = Settings()
PRICE = parse_model({"id": "m", "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                     "top_provider": {"max_completion_tokens": 1000}})
ROUTER = parse_model({"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}})
FALLBACK = fallback_price("x", D("0.00001"), D("0.00003"))


def budget(nanos=1_000_000_000, thresholds=("0.8", "1.0"), **kw):
    return rules.Budget(nanos, tuple(D(t) for t in thresholds), source="user", **kw)


def test_out_of_the_box_every_user_has_a_modest_enforced_budget_and_free_quota():
    b = rules.budget_from_doc(None, SETTINGS)
    assert (b.monthly_budget_nanos, b.source, b.enforced, b.free_daily_requests) == (1_000_000_000, "default", True, 50)
    assert (b.requests_per_minute, b.max_in_flight) == (60, 8)


def test_no_document_and_no_default_means_no_budget():
    settings = replace(SETTINGS, default_monthly_budget=None, default_free_daily_requests=0)
    b = rules.budget_from_doc(None, settings)
    assert (b.monthly_budget_nanos, b.source, b.enforced, b.free_daily_requests) == (None, "none", False, None)


def test_omitted_fields_inherit_the_configured_defaults_and_follow_them():
    settings = replace(SETTINGS, default_monthly_budget=D("7"), default_free_daily_requests=9,
                       rate_limit_per_minute=11, max_in_flight=3)
    b = rules.budget_from_doc({"email": "a@b.co"}, settings)
    assert (b.monthly_budget_nanos, b.enforced, b.free_daily_requests, b.email) == (7_000_000_000, True, 9, "a@b.co")
    assert (b.requests_per_minute, b.max_in_flight, b.source) == (11, 3, "user")


def test_zero_means_none_allowed_and_null_means_no_limit():
    zero = rules.budget_from_doc({"monthly_budget": 0, "monthly_budget_nanos": 0, "free_daily_requests": 0}, SETTINGS)
    assert (zero.monthly_budget_nanos, zero.enforced, zero.free_daily_requests) == (0, True, 0)
    none = rules.budget_from_doc({"monthly_budget": None, "monthly_budget_nanos": None, "free_daily_requests": None,
                                  "requests_per_minute": None}, SETTINGS)
    assert (none.monthly_budget_nanos, none.enforced, none.free_daily_requests) == (None, False, None)
    assert none.requests_per_minute == 0  # no limit
    assert not none.gated(is_free=True) and not none.gated(is_free=False)
    assert zero.gated(is_free=True) and zero.gated(is_free=False)


def test_configured_default_applies_to_users_without_a_document():
    settings = replace(SETTINGS, default_monthly_budget=D("5"), default_enforce=True, default_free_daily_requests=20)
    b = rules.budget_from_doc(None, settings)
    assert (b.monthly_budget_nanos, b.enforced, b.free_daily_requests, b.source) == (5_000_000_000, True, 20, "default")


def test_document_fields_are_read_exactly():
    b = rules.budget_from_doc({"monthly_budget": 0.1, "alert_thresholds": [0.5, 1.5], "enforce": True,
                                 "email": "a@b.co", "free_daily_requests": 3}, SETTINGS)
    assert b.monthly_budget_nanos == 100_000_000 and b.alert_thresholds == (D("0.5"), D("1.5"))
    assert (b.enforced, b.email, b.free_daily_requests) == (True, "a@b.co", 3)


def test_threshold_rules():
    assert rules.check_thresholds([D("0.5"), D("1"), D("10")]) is None
    assert "sorted" in rules.check_thresholds([D("1"), D("0.5")])
    assert "(0, 10]" in rules.check_thresholds([D("0")])
    assert "(0, 10]" in rules.check_thresholds([D("10.5")])


def test_worst_case_uses_max_tokens_then_the_models_max_then_the_cap():
    assert rules.worst_case_nanos(PRICE, FALLBACK, 100, 50, SETTINGS) == 100 * 1000 + 50 * 2000
    assert rules.worst_case_nanos(PRICE, FALLBACK, 100, None, SETTINGS) == 100 * 1000 + 1000 * 2000
    no_max = replace(PRICE, max_completion_tokens=None)
    assert rules.worst_case_nanos(no_max, FALLBACK, 0, None, SETTINGS) == SETTINGS.max_tokens_cap * 2000
    # A router's price is that of the model served: bounded by the fallback price.
    assert rules.worst_case_nanos(ROUTER, FALLBACK, 10, 10, SETTINGS) == 10 * 10_000 + 10 * 30_000


def test_worst_case_rounds_up_to_the_nano():
    tiny = parse_model({"id": "t", "pricing": {"prompt": "0.0000000001", "completion": "0"}})
    assert rules.worst_case_nanos(tiny, FALLBACK, 1, 1, SETTINGS) == 1


def test_admission_counts_own_and_others_reservations():
    assert rules.admits(cost_nanos=600, reserved_nanos=400, budget_nanos=1000)
    assert not rules.admits(cost_nanos=600, reserved_nanos=401, budget_nanos=1000)


def test_retry_after_is_the_next_utc_midnight():
    assert rules.seconds_to_next_day(datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)) == 3600
    assert rules.seconds_to_next_day(datetime(2026, 12, 31, 23, 59, 59, 500000, tzinfo=timezone.utc)) == 1


def test_thresholds_reached_and_missing():
    b = budget(thresholds=("0.5", "0.8", "1.0"))
    assert rules.reached(b, 799_999_999) == [D("0.5")]
    assert rules.reached(b, 800_000_000) == [D("0.5"), D("0.8")]
    assert rules.missing_alerts(b, 1_000_000_000, {"500": True}) == [D("0.8"), D("1.0")]
    assert rules.reached(budget(nanos=0), 0) == [] and rules.reached(budget(nanos=None), 10**12) == []


def test_alert_ids_types_and_flags():
    assert alerts.alert_id("u1", "2026-11", D("0.8")) == "u1_2026-11_0.8"
    assert alerts.alert_id("u1", "2026-11", D("1")) == "u1_2026-11_1.0"
    assert rules.threshold_flag(D("0.8")) == "800" and rules.threshold_flag(D("1.25")) == "1250"
    assert rules.threshold_flag(D("1")) == "1000" and rules.threshold_flag(D("10")) == "10000"
    # Finer than a per mille: a flag of its own (it shared 0.8's "800" and was never alerted).
    assert rules.threshold_flag(D("0.8004")) == "800_4" != rules.threshold_flag(D("0.8001")) == "800_1"
    assert rules.alert_type(D("0.99")) == "budget_threshold" and rules.alert_type(D("1.0")) == "budget_exceeded"


def test_status_shows_remaining_after_spend_and_reservations():
    s = rules.status(budget(enforce=True), "2026-11", 700_000_000, 200_000_000, 4)
    assert (s["spent"], s["reserved"], s["remaining"], s["percentage_used"]) == (0.7, 0.2, 0.1, 70.0)
    assert s["enforce"] is True and s["free_requests_today"] == 4
    over = rules.status(budget(), "2026-11", 1_500_000_000, 0)
    assert over["remaining"] == 0 and over["percentage_used"] == 150.0


def test_mail_document_is_in_the_trigger_email_format():
    facts = alerts.AlertFacts("u1", "2026-11", D("0.8"), 850_000_000, budget(email="a@b.co"))
    mail = alerts.mail_doc(facts, "a@b.co")
    assert mail["to"] == "a@b.co" and set(mail["message"]) == {"subject", "text", "html"}
    assert "80%" in mail["message"]["subject"] and "$0.85 of your $1.00" in mail["message"]["text"]
