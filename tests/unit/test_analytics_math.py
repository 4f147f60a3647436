"""Summaries of rollups, date ranges, export rows and estimates (pure)."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from tokenledger import money
from tokenledger.analytics import estimate, export, figures
from tokenledger.pricing.prices import parse_model

TODAY = date(2026, 11, 22)


def test_default_range_is_the_current_month_up_to_today():
    span = figures.date_range(None, None, TODAY, 366)
    assert (span.start, span.end, span.days) == (date(2026, 11, 1), TODAY, 22)


def test_from_alone_runs_to_the_end_of_its_month_but_not_past_today():
    assert figures.date_range("2026-02-10", None, TODAY, 366).end == date(2026, 2, 28)
    assert figures.date_range("2026-11-05", None, TODAY, 366).end == TODAY
    assert figures.date_range(None, "2026-03-15", TODAY, 366).start == date(2026, 3, 1)


@pytest.mark.parametrize(
    "start, end, code",
    [
        ("2026-13-01", None, "invalid_date"),
        ("2026-1-01", None, "invalid_date"),
        ("20261101", None, "invalid_date"),
        ("2026-11-01", "2026-02-29", "invalid_date"),
        ("2026-11-02", "2026-11-01", "invalid_range"),
        ("2025-01-01", "2026-01-02", "range_too_long"),
    ],
)
def test_bad_ranges_are_refused_with_a_slug(start, end, code):
    with pytest.raises(figures.RangeError) as err:
        figures.date_range(start, end, TODAY, 366)
    assert err.value.code == code and err.value.message


def test_max_range_is_inclusive():
    assert figures.date_range("2026-01-01", "2026-01-10", TODAY, 10).days == 10
    with pytest.raises(figures.RangeError):
        figures.date_range("2026-01-01", "2026-01-11", TODAY, 10)


def test_whole_months_are_those_covered_first_to_last_day():
    span = figures.DateRange(date(2026, 1, 15), date(2026, 4, 30))
    assert span.each_month() == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert span.whole_months() == {"2026-02", "2026-03", "2026-04"}
    assert figures.DateRange(date(2025, 12, 31), date(2026, 1, 1)).each_month() == ["2025-12", "2026-01"]


@pytest.mark.parametrize("value", ["2026-00", "2026-13", "26-11", "2026-11-01", ""])
def test_bad_months(value):
    with pytest.raises(figures.RangeError):
        figures.parse_month(value)


def doc(calls, nanos, model="m", feature="f", free=0, prompt=100, cached=0, latency=0, **extra):
    return {
        "calls": calls, "free_calls": free, "paid_calls": calls - free, "prompt_tokens": prompt,
        "completion_tokens": 10, "total_tokens": prompt + 10, "cached_tokens": cached, "cost_nanos": nanos,
        "cost": nanos / 1e9, "latency_ms_total": latency,
        "by_model": {model: {"calls": calls, "tokens": prompt + 10, "cost_nanos": nanos, "cost": nanos / 1e9}},
        "by_feature": {feature: {"calls": calls, "tokens": prompt + 10, "cost_nanos": nanos}},
        **extra,
    }


def test_summarise_adds_integers_and_derives_cost_from_nanos():
    # Three documents whose float costs do not add up exactly; the nanos do.
    docs = {"2026-11-01": doc(1, 100_000_001), "2026-11-02": doc(2, 200_000_002, model="n"),
            "2026-11-04": doc(1, 3, model="n", reserved_nanos=999, pending="x")}
    out = figures.summarise(docs, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"], lambda k: k)
    assert out["totals"]["cost_nanos"] == 300_000_006 and out["totals"]["calls"] == 4
    assert out["totals"]["cost"] == float(Decimal("0.300000006"))
    assert "reserved_nanos" not in out["totals"]
    assert list(out["by_model"]) == ["n", "m"]  # most expensive first
    assert out["by_model"]["n"] == {"calls": 3, "tokens": 220, "cost_nanos": 200_000_005, "cost": 0.200000005}
    assert [p["calls"] for p in out["series"]] == [1, 2, 0, 1]  # zero-filled


def test_summarise_by_month_buckets_day_and_month_documents():
    docs = {"2026-09": doc(5, 50), "2026-10-30": doc(1, 1), "2026-10-31": doc(2, 2)}
    out = figures.summarise(docs, ["2026-09", "2026-10"], lambda k: k[:7])
    assert [(p["period"], p["calls"], p["cost_nanos"]) for p in out["series"]] == [("2026-09", 5, 50), ("2026-10", 3, 3)]


def test_efficiency_figures():
    efficiency = figures.efficiency({"calls": 4, "cost_nanos": 2_000_000, "total_tokens": 1000, "latency_ms_total": 1000,
                             "cached_tokens": 300, "prompt_tokens": 800, "free_calls": 1})
    assert efficiency == {"avg_cost_per_call": 0.0005, "cost_per_1k_tokens": 0.002, "avg_latency_ms": 250.0,
                       "cache_hit_share": 0.375, "free_share_of_calls": 0.25}
    assert set(figures.efficiency({}).values()) == {None}


def test_shards_sum_and_user_entry():
    summed = figures.sum_shards([{"calls": 2, "cost_nanos": 5, "month": "2026-11"}, {"calls": 1, "cost_nanos": 7}])
    assert (summed["calls"], summed["cost_nanos"], summed["cost"]) == (3, 12, 1.2e-08)
    entry = figures.user_entry({"user_id": "u1", "calls": 3, "cost_nanos": 9, "free_calls": 1}, rank=2)
    assert (entry["rank"], entry["user_id"], entry["calls"], entry["free_calls"], entry["cost_nanos"]) == (2, "u1", 3, 1, 9)


def test_export_row_writes_exact_usd_and_iso_time():
    row = {"generation_id": "gen-1", "user_id": "u", "timestamp": datetime(2026, 11, 1, 12, tzinfo=timezone.utc),
           "cost_nanos": 123_456_789, "cost": 0.123456789, "estimated_cost_nanos": 1, "upstream_cost_nanos": None,
           "flags": ["cost_missing"], "is_free": False, "feature": None, "metadata": {"messages": ["secret"]}}
    out = export.export_row("gen-1", row)
    assert out["cost"] == "0.123456789" and out["estimated_cost"] == "0.000000001" and out["upstream_cost"] is None
    assert out["timestamp"] == "2026-11-01T12:00:00+00:00" and "metadata" not in out
    lines = export.csv_lines([out], header=True)
    parsed = list(csv.DictReader(io.StringIO(lines)))
    assert parsed[0]["cost"] == "0.123456789" and parsed[0]["flags"] == "cost_missing"
    assert parsed[0]["is_free"] == "false" and parsed[0]["feature"] == ""
    assert export.json_items([out], first=False).startswith(",\n")


PAID = parse_model({"id": "p/m", "pricing": {"prompt": "0.000003", "completion": "0.000015", "request": "0.001"}})


def test_estimate_range_is_prompt_alone_to_every_completion_token():
    result = estimate.call_estimate(PAID, prompt_tokens=1000, max_completion_tokens=500)
    low = Decimal("0.003") + Decimal("0.001")
    assert result["min_cost_nanos"] == money.to_nanos(low)
    assert result["max_cost_nanos"] == money.to_nanos(low + 500 * Decimal("0.000015"))
    assert result["estimate"] is True and result["is_free"] is False


def test_estimate_of_a_router_gives_no_range():
    router = parse_model({"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}})
    result = estimate.call_estimate(router, 10, 10)
    assert result["variable_price"] and result["min_cost"] is None and result["max_cost"] is None
