"""Forecasts, spikes and the app's spend (pure): exact figures worked out by hand."""
from datetime import date
from decimal import Decimal

from tokenledger.budgets import app_spend, trends

B = 1_000_000_000  # $1 in nanos


def test_a_user_on_course_to_exceed_gets_the_projection_and_the_day():
    costs = {k: B // 2 for k in range(1, 10)}  # $0.50 a day on the 1st..9th
    costs[10] = B // 5  # $0.20 so far today
    f = trends.forecast(date(2026, 12, 10), costs, spent_nanos=4_700_000_000, budget_nanos=10 * B, days=7)
    # rate $0.50 (days 3..9); $4.50 before today + max($0.20, $0.50) + 21 days x $0.50 = $15.50
    assert f.projected_nanos == 15_500_000_000
    assert f.rate_nanos_per_day == 500_000_000 and f.days == 7
    # $5.00 after today, then $0.50 a day: $10.00 at the end of the 20th
    assert f.projected_day == "2026-12-20"
    assert "last 7 full days" in f.method


def test_no_forecast_when_the_projection_stays_under_or_the_budget_is_already_spent():
    slow = {k: B // 5 for k in range(1, 10)}
    assert trends.forecast(date(2026, 12, 10), slow, 1_800_000_000, 10 * B, 7) is None  # $6.20 projected
    assert trends.forecast(date(2026, 12, 10), {1: 11 * B}, 11 * B, 10 * B, 7) is None  # already over
    assert trends.forecast(date(2026, 12, 1), {1: 9 * B}, 9 * B, 10 * B, 7) is None  # no full day yet


def test_forecast_on_the_2nd_uses_the_one_full_day_and_can_cross_today():
    f = trends.forecast(date(2026, 2, 2), {1: 3 * B, 2: B}, 4 * B, 5 * B, 7)
    # rate $3 (day 1); $3 + max($1, $3) + 26 x $3 = $84 in a 28-day February; $6 >= $5 today
    assert (f.projected_nanos, f.projected_day, f.days) == (84 * B, "2026-02-02", 1)


def test_a_tenfold_day_is_a_spike_and_a_fourfold_or_small_one_is_not():
    history = {k: B // 10 for k in range(6, 20)}  # $0.10 a day, the 6th..19th
    s = trends.spike(date(2026, 12, 20), {**history, 20: B}, Decimal("5"), Decimal("0.50"))
    assert (s.day_nanos, s.median_nanos, s.history_days) == (B, B // 10, 14)
    assert trends.spike(date(2026, 12, 20), {**history, 20: 4 * B // 10}, Decimal("5"), Decimal("0.50")) is None
    small = {k: B // 100 for k in range(6, 20)}
    assert trends.spike(date(2026, 12, 20), {**small, 20: B // 2}, Decimal("5"), Decimal("0.50")) is None  # not above $0.50


def test_spike_median_leaves_out_days_without_spending_and_needs_three_such_days():
    sparse = {3: B // 10, 8: B // 10, 15: 3 * B // 10}  # median of $0.10, $0.10, $0.30 = $0.10
    s = trends.spike(date(2026, 12, 16), {**sparse, 16: B}, Decimal("5"), Decimal("0.50"))
    assert (s.median_nanos, s.history_days) == (B // 10, 3)
    assert trends.spike(date(2026, 12, 16), {8: B // 10, 15: B // 10, 16: B}, Decimal("5"), Decimal("0.50")) is None


def test_day_costs_are_summed_over_a_users_month_documents():
    docs = [{"day_costs": {"01": 5, "02": 7}}, {"day_costs": {"02": 3}}, None, {}]
    assert trends.day_costs_of(docs) == {1: 5, 2: 10}


def test_app_spend_thresholds_reached():
    thresholds = (Decimal("0.8"), Decimal("1.0"))
    assert app_spend.reached(79 * B, 100 * B, thresholds) == []
    assert app_spend.reached(80 * B, 100 * B, thresholds) == [Decimal("0.8")]
    assert app_spend.reached(100 * B, 100 * B, thresholds) == list(thresholds)
    assert app_spend.alert_id("2026-12", Decimal("0.8")) == "app_spend_2026-12_800"
