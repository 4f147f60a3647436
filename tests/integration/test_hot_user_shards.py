"""A user calling faster than a Firestore document takes writes (about one a second) has their
month and day rollups spread over shard documents (store.py, metering/hot_users.py); on the real
emulator, every reader still sees the exact sums of the rows: the month read of the budget gate,
usage summaries, top users, active users, the scheduled budget check."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

from tokenledger import store
from tokenledger.analytics import figures, summaries
from tokenledger.budgets import reservations
from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from . import hot_tables
from .ledger_checks import actual_rollup, expected_rollup, month_doc, rows_for

WHEN = datetime(2039, 5, 14, 10, 0, tzinfo=timezone.utc)  # a month no other test writes
MONTH, DAY = "2039-05", "2039-05-14"
SETTINGS = Settings(record_deadline_s=5, budget_check_page_size=50)
HOT_CALLS = 30


def call(db, uid: str, cost: str) -> None:
    response = {
        "id": f"gen-hot-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "cost": float(cost)},
    }
    record = build_record(
        response,
        CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", WHEN, latency_ms=5, feature="hot"),
        Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))),
    )
    ledger.record_usage(db, record, SETTINGS)


def test_a_hot_users_rollups_are_spread_over_shards_and_every_reader_sums_them_exactly(db, monkeypatch):
    hot_tables.install(monkeypatch, step=0.06)  # about 17 calls a second
    hot, light = f"hot-{uuid.uuid4().hex[:8]}", f"light-{uuid.uuid4().hex[:8]}"
    for i in range(HOT_CALLS):  # back to back: far faster than one a second
        call(db, hot, f"0.0000{10 + i}")
    call(db, light, "0.0009")
    hot_rows = rows_for(db, hot)
    hot_nanos = sum(r["cost_nanos"] for r in hot_rows)
    assert len(hot_rows) == HOT_CALLS and hot_nanos == sum(10_000 + i * 1000 for i in range(HOT_CALLS))

    # Spread: a burst of 4 calls on the base document, then the base's share (0.8 a second: one
    # more call, the 22nd) and the other 25 round-robin over the shards, from the first.
    months = {s.id: s.to_dict() for s in db.collection("user_usage").document(hot).collection("months").stream()}
    assert set(months) == {MONTH} | {f"{MONTH}~{k}" for k in range(1, 26)}
    assert months[MONTH]["calls"] == 5 and "shard" not in months[MONTH] and months[MONTH]["sharded"] is True
    assert months[MONTH]["shard_count"] == 48
    assert sorted(doc["calls"] for name, doc in months.items() if name != MONTH) == [1] * 25
    days = [s.id for s in db.collection("user_usage").document(hot).collection("days").stream()]
    assert len(days) == len(months) and all(d.split("~")[0] == DAY for d in days)
    # The light user stays on one document per period, as before.
    assert [s.id for s in db.collection("user_usage").document(light).collection("months").stream()] == [MONTH]

    # Summed, the shards equal the rows exactly (every counter and breakdown).
    assert actual_rollup(month_doc(db, hot, MONTH)) == expected_rollup(hot_rows)

    # The month read: the documents there are (one query), once the base says `sharded`.
    assert len(list(store.user_month_docs(db, hot, MONTH).stream())) == 26
    assert reservations.read_month(db, hot, MONTH).cost_nanos == hot_nanos
    assert reservations.read_month(db, light, MONTH).cost_nanos == 900_000  # its base document alone

    # Usage summaries by day and by month.
    span = figures.DateRange(date(2039, 5, 1), date(2039, 5, 31))
    by_day = summaries.user_usage(db, hot, span, "day")
    assert by_day["totals"]["cost_nanos"] == hot_nanos and by_day["totals"]["calls"] == HOT_CALLS
    assert [(p["period"], p["calls"], p["cost_nanos"]) for p in by_day["series"] if p["calls"]] == [
        (DAY, HOT_CALLS, hot_nanos)]
    by_month = summaries.user_usage(db, hot, span, "month")
    assert by_month["totals"]["cost_nanos"] == hot_nanos and by_month["series"][0]["calls"] == HOT_CALLS

    # Top users sum each user's shards; active users count people, not documents.
    top = summaries.top_users(db, MONTH, 10)["users"]
    assert hot_nanos == 735_000  # 30 x $0.000010 + $0.000001 x (0 + 1 + ... + 29)
    assert [(u["user_id"], u["calls"], u["cost_nanos"]) for u in top] == [(light, 1, 900_000), (hot, HOT_CALLS, 735_000)]
    assert summaries.active_users(db, MONTH) == 2

    # The scheduled check sees the whole month: a $0.0005 budget is crossed by the shards' sum.
    db.collection("user_budgets").document(hot).set(
        {"monthly_budget": 0.0005, "monthly_budget_nanos": 500_000, "alert_thresholds": [1.0], "enforce": False})
    check_budgets(db, SETTINGS, WHEN)
    alert = db.collection("budget_alerts").document(f"{hot}_{MONTH}_1.0").get().to_dict()
    assert alert["current_cost_nanos"] == hot_nanos
