"""One truth for a user's month: every reader of a month or a day (the API, the budget gate, the
scheduled check, top users, the report tool, the demo) gives what the usage rows add up to, for
a hot user whose month is spread over shards and again once the fold moved them into the base.

The expected values come from the usage rows alone (ledger_checks.rows_for), never from a
rollup. Each case first checks that the base document alone is NOT the month (while sharded):
a reader that ignored the shards would fail its comparison."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from scripts import demo
from tokenledger import periods, store
from tokenledger.analytics import figures, summaries
from tokenledger.budgets import check, reservations
from tokenledger.config import Settings
from tokenledger.metering import fold, ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price
from tokenledger.tools import report

from . import hot_tables
from .ledger_checks import rows_for

SETTINGS = Settings(record_deadline_s=5, budget_check_page_size=5)  # pages of 5: a hot user spans pages
CALLS = 24
COMPARED = ("calls", "free_calls", "paid_calls", "free_tokens", "paid_tokens", "cost_nanos")


def _call(db, uid: str, when: datetime, i: int) -> None:
    free = i % 5 == 0  # every fifth call free (cost 0)
    cost = 0 if free else 7_000 + 1_001 * i  # nano-dollars, all different
    response = {
        "id": f"gen-readers-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
        "choices": [{"finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100 + i, "completion_tokens": 20, "total_tokens": 120 + i,
                  "cost": float(Decimal(cost) / Decimal(10**9))},
    }
    facts = CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", when, latency_ms=5, feature=f"feat-{i % 3}")
    record = build_record(response, facts, Pricing(None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))))
    ledger.record_usage(db, record, SETTINGS)


def expected(rows: list[dict]) -> dict:
    """The compared counters, from the usage rows."""
    out = dict.fromkeys(COMPARED, 0)
    for row in rows:
        kind = "free" if row["is_free"] else "paid"
        out["calls"] += 1
        out[f"{kind}_calls"] += 1
        out[f"{kind}_tokens"] += row["total_tokens"]
        out["cost_nanos"] += row["cost_nanos"]
    return out


def pick(doc: dict) -> dict:
    return {name: int(doc.get(name) or 0) for name in COMPARED}


@pytest.fixture(params=["sharded", "folded"])
def hot(request, db, auth, monkeypatch):
    """A real user who called far faster than once a second this month (their month and day over
    a base document and shards), as it is, or after the fold moved the shards into the base."""
    user = auth.create_user("hot")
    when = datetime.now(timezone.utc)
    month, day = when.strftime("%Y-%m"), when.strftime("%Y-%m-%d")
    hot_tables.install(monkeypatch, step=0.06)
    for i in range(CALLS):
        _call(db, user.uid, when, i)
    rows = rows_for(db, user.uid)
    want = expected(rows)
    assert want["calls"] == CALLS and want["free_calls"] == 5
    assert want["cost_nanos"] == sum(7_000 + 1_001 * i for i in range(CALLS) if i % 5)
    base = (store.user_month_doc(db, user.uid, month).get().to_dict() or {})
    shards = len(periods.read_docs(db, user.uid, periods.MONTHS, month, ["month"])) - 1
    assert shards > 0 and pick(base) != want  # the base alone is not the month: a reader must sum
    if request.param == "folded":
        folded = fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[month])
        assert f"{user.uid}/months/{month}" in folded.folded and f"{user.uid}/days/{day}" in folded.folded
        # Now a plain read of the base document is the month, and the day's base is the day.
        assert pick(store.user_month_doc(db, user.uid, month).get().to_dict()) == want
        assert pick(store.user_day_doc(db, user.uid, day).get().to_dict()) == want
        assert len(periods.read_docs(db, user.uid, periods.MONTHS, month, ["month"])) == 1
    return user, month, day, rows, want


def test_the_one_function_reads_the_month_and_the_day(db, hot):
    user, month, day, rows, want = hot
    assert pick(periods.read(db, user.uid, periods.MONTHS, month)) == want
    assert pick(periods.read(db, user.uid, periods.DAYS, day)) == want  # every call on one day


def test_the_budget_gate_reads_the_whole_month(db, hot):
    user, month, _, rows, want = hot
    assert reservations.read_month(db, user.uid, month).cost_nanos == want["cost_nanos"]
    docs, _ = reservations.read_month_with(db, user.uid, month, [], ["cost_nanos", reservations.FEATURE_FIELD])
    assert reservations.totals_of(docs).features == {row["feature"] for row in rows}


def test_the_api_answers_the_whole_month(db, api, hot):
    user, month, day, rows, want = hot
    first, last = figures.month_bounds(month)
    usage = api.request("GET", f"/v1/usage?from={first}&to={last}&granularity=day", user)
    assert usage.status_code == 200, usage.text
    assert pick(usage.json()["totals"]) == want
    by_month = api.request("GET", f"/v1/usage?from={first}&to={last}&granularity=month", user).json()
    assert pick(by_month["totals"]) == want
    budget = api.request("GET", "/v1/budget", user)
    assert budget.status_code == 200, budget.text
    assert budget.json()["spent_nanos"] == want["cost_nanos"]


def test_the_scheduled_check_reads_the_whole_month(db, hot):
    user, month, _, rows, want = hot
    docs, _ = check.read_months(db, [user.uid], month)
    assert reservations.totals_of(docs[user.uid]).cost_nanos == want["cost_nanos"]
    # The months scan, in pages of 5 (the user's documents span pages): a budget of exactly what
    # the rows cost is reached, and the alert carries the whole month.
    db.collection("user_budgets").document(user.uid).set(
        {"monthly_budget": want["cost_nanos"] / 1e9, "monthly_budget_nanos": want["cost_nanos"],
         "alert_thresholds": [1.0], "enforce": False})
    when = datetime.now(timezone.utc)
    check.check_budgets(db, SETTINGS, when)
    alert = db.collection("budget_alerts").document(f"{user.uid}_{month}_1.0").get()
    assert alert.exists and alert.to_dict()["current_cost_nanos"] == want["cost_nanos"]


def test_analytics_top_users_and_the_report_read_the_whole_month(db, hot):
    user, month, _, rows, want = hot
    first, last = figures.month_bounds(month)
    for granularity in ("day", "month"):
        assert pick(summaries.user_usage(db, user.uid, figures.DateRange(first, last), granularity)["totals"]) == want
    top = {entry["user_id"]: entry for entry in summaries.top_users(db, month, 1000)["users"]}
    assert pick(top[user.uid]) == want
    assert pick(report.user_report(db, month, user.uid)["totals"]) == want
    days = summaries.daily_cost_by_model(db, month, user.uid)
    assert sum(sum(models.values()) for models in days.values()) == want["cost_nanos"]


def test_the_demos_table_reads_the_whole_month(db, hot):
    user, month, _, rows, want = hot
    assert demo.read_usage(db, {"hot": user.uid}) == {("hot", month): want}
