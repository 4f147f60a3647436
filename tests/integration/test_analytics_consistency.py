"""Acceptance 1: for a generated workload across a month boundary, the raw rows, the rollups,
/v1/usage, /v1/admin/top-users, /v1/admin/totals, the export and the report all agree to the
nano-dollar and the token.

The previous month's part is recorded in-process with the ledger (occurred_at last month, as
a replay would); the current month's part goes through the real API and the stand-in. Other
tests write usage in the current month too, so global totals are compared as deltas.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from scripts.devkit import workload
from tokenledger import money
from tokenledger.config import Settings
from tokenledger.metering import ledger

from .ledger_checks import actual_rollup, expected_rollup, month_doc, rows_for

ROOT = Path(__file__).resolve().parents[2]
TOTAL_FIELDS = ("calls", "free_calls", "paid_calls", "prompt_tokens", "completion_tokens", "total_tokens",
                "free_tokens", "paid_tokens", "cost_nanos")
SUMMARY_FIELDS = ("calls", "free_calls", "paid_calls", "prompt_tokens", "completion_tokens", "total_tokens",
                  "cached_tokens", "reasoning_tokens", "free_tokens", "paid_tokens", "cost_nanos")

# Previous month, in-process: (who, model, feature, prompt, completion, cached, reasoning, days before the 1st)
PAST = [
    ("alice", "anthropic/claude-sonnet-4", "writer", 3000, 700, 1200, 0, 1),
    ("alice", "openai/gpt-4o-mini", "translate", 800, 150, 0, 0, 0),
    ("alice", "meta-llama/llama-3.3-70b-instruct:free", "chat", 500, 90, 0, 0, 0),
    ("bob", "meta-llama/llama-3.3-70b-instruct:free", "chat", 400, 80, 0, 0, 1),
    ("bob", "google/gemini-2.5-flash", None, 2200, 900, 0, 300, 0),
    ("carol", "anthropic/claude-sonnet-4", "support", 5000, 1200, 4000, 0, 0),
    ("carol", "openai/gpt-4o-mini", "support", 1000, 250, 0, 0, 1),
]
# Current month, through the API and the stand-in: (who, model, feature)
NOW = [
    ("alice", "anthropic/claude-sonnet-4", "writer"),
    ("alice", "meta-llama/llama-3.3-70b-instruct:free", "chat"),
    ("bob", "meta-llama/llama-3.3-70b-instruct:free", "chat"),
    ("bob", "openai/gpt-4o-mini", "translate"),
    ("carol", "openai/gpt-4o", "support"),
    ("carol", "deepseek/deepseek-chat-v3-0324:free", None),
]


def totals_of(api, admin, month):
    response = api.request("GET", f"/v1/admin/totals?month={month}", admin)
    assert response.status_code == 200, response.text
    return response.json()


def row_sums(rows):
    sums = Counter()
    for row in rows:
        free = row["is_free"]
        sums.update({
            "calls": 1, "free_calls": int(free), "paid_calls": int(not free),
            "prompt_tokens": row["prompt_tokens"], "completion_tokens": row["completion_tokens"],
            "total_tokens": row["total_tokens"], "cached_tokens": row["cached_tokens"],
            "reasoning_tokens": row["reasoning_tokens"], "free_tokens": row["total_tokens"] if free else 0,
            "paid_tokens": 0 if free else row["total_tokens"], "cost_nanos": row["cost_nanos"],
        })
    return {name: sums[name] for name in SUMMARY_FIELDS}


@pytest.fixture(scope="module")
def workload_run(api, auth, db):
    now = datetime.now(timezone.utc)
    first_of_month = now.replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    past_month = (first_of_month - timedelta(days=1)).strftime("%Y-%m")
    this_month = now.strftime("%Y-%m")
    admin = auth.create_user("analytics-admin", admin=True)
    people = {name: auth.create_user(name) for name in ("alice", "bob", "carol")}
    before = {m: totals_of(api, admin, m) for m in (past_month, this_month)}

    for who, model, feature, prompt, completion, cached, reasoning, days_back in PAST:
        occurred = first_of_month - timedelta(days=days_back + 1)  # the last days of last month
        rec = workload.record(people[who].uid, model, occurred, prompt, completion, cached, reasoning, feature)
        assert ledger.record_usage(db, rec, Settings(), replay=True).status == "recorded"
    for who, model, feature in NOW:
        body = {"model": model, "messages": [{"role": "user", "content": f"hello from {who} about {feature}"}]}
        if feature:
            body["feature"] = feature
        response = api.request("POST", "/v1/chat/completions", people[who], json=body)
        assert response.status_code == 200 and response.headers["X-Usage-Recorded"] == "true", response.text

    after = {m: totals_of(api, admin, m) for m in (past_month, this_month)}
    rows = {name: rows_for(db, user.uid) for name, user in people.items()}
    return {
        "admin": admin, "people": people, "rows": rows, "before": before, "after": after,
        "months": (past_month, this_month), "from": f"{past_month}-01", "to": now.strftime("%Y-%m-%d"),
    }


def test_the_workload_spans_both_months_free_and_paid(workload_run):
    rows = [row for rows in workload_run["rows"].values() for row in rows]
    assert len(rows) == len(PAST) + len(NOW)
    assert {row["month"] for row in rows} == set(workload_run["months"])
    assert {row["model_type"] for row in rows} == {"free", "paid"}


def test_rollups_equal_the_rows(workload_run, db):
    for name, user in workload_run["people"].items():
        for month in workload_run["months"]:
            rows = [r for r in workload_run["rows"][name] if r["month"] == month]
            assert actual_rollup(month_doc(db, user.uid, month)) == expected_rollup(rows), (name, month)


def rollup_docs(db, uid: str, collection: str, periods: set[str]) -> int:
    """Documents (base `{period}` and shards `{period}~{k}`) holding these periods of the user."""
    docs = db.collection("user_usage").document(uid).collection(collection).stream()
    return sum(1 for snap in docs if snap.id.split("~")[0] in periods)


@pytest.mark.parametrize("granularity", ["month", "day"])
def test_usage_api_equals_the_rows(workload_run, api, db, granularity):
    for name, user in workload_run["people"].items():
        rows = workload_run["rows"][name]
        query = f"from={workload_run['from']}&to={workload_run['to']}&granularity={granularity}"
        response = api.request("GET", f"/v1/usage?{query}", user)
        assert response.status_code == 200, response.text
        body = response.json()
        expected = row_sums(rows)
        assert {k: body["totals"][k] for k in SUMMARY_FIELDS} == expected
        assert body["totals"]["cost"] == money.usd_float(expected["cost_nanos"])
        rollup = expected_rollup(rows)
        for breakdown in ("by_model", "by_feature", "by_provider"):
            got = {k: {f: v[f] for f in ("calls", "tokens", "cost_nanos")} for k, v in body[breakdown].items()}
            assert got == rollup[breakdown], breakdown
        key = "month" if granularity == "month" else "day"
        by_period = defaultdict(list)
        for row in rows:
            by_period[row[key]].append(row)
        series = {p["period"]: p for p in body["series"] if p["calls"]}
        assert set(series) == set(by_period)
        for period, period_rows in by_period.items():
            assert {k: series[period][k] for k in SUMMARY_FIELDS} == row_sums(period_rows)
        # From rollups: the documents of each day with usage (or of the whole month): one per
        # period, plus the shards of a user who called faster than about once a second.
        days_now = {r["day"] for r in rows if r["month"] == workload_run["months"][1]}
        days_past = {r["day"] for r in rows if r["month"] == workload_run["months"][0]}
        past_month = {workload_run["months"][0]}
        expected_reads = (rollup_docs(db, user.uid, "months", past_month) + rollup_docs(db, user.uid, "days", days_now)
                          if granularity == "month" else rollup_docs(db, user.uid, "days", days_past | days_now))
        assert body["meta"]["documents_read"] == expected_reads
        assert body["efficiency"]["free_share_of_calls"] == round(expected["free_calls"] / expected["calls"], 4)


def test_admin_usage_of_a_user_equals_their_own_view(workload_run, api):
    user = workload_run["people"]["carol"]
    query = f"from={workload_run['from']}&to={workload_run['to']}"
    own = api.request("GET", f"/v1/usage?{query}", user).json()
    seen = api.request("GET", f"/v1/admin/usage/{user.uid}?{query}", workload_run["admin"]).json()
    assert seen["totals"] == own["totals"] and seen["series"] == own["series"]


def test_top_users_rank_month_rollups_and_equal_the_rows(workload_run, api, db):
    for month in workload_run["months"]:
        response = api.request("GET", f"/v1/admin/top-users?month={month}&limit=100", workload_run["admin"])
        assert response.status_code == 200, response.text
        ranking = response.json()["users"]
        keys = [(-u["cost_nanos"], -u["calls"]) for u in ranking]
        assert keys == sorted(keys)
        by_uid = {u["user_id"]: u for u in ranking}
        for name, user in workload_run["people"].items():
            rows = [r for r in workload_run["rows"][name] if r["month"] == month]
            entry = by_uid[user.uid]
            expected = row_sums(rows)
            assert {k: entry[k] for k in TOTAL_FIELDS} == {k: expected[k] for k in TOTAL_FIELDS}
    # Reads about N documents: a limit of 2 reads 2.
    small = api.request("GET", f"/v1/admin/top-users?month={workload_run['months'][0]}&limit=2", workload_run["admin"])
    assert len(small.json()["users"]) == 2 and small.json()["meta"]["documents_read"] == 2


def test_totals_grow_by_exactly_the_workload(workload_run):
    for month in workload_run["months"]:
        rows = [r for rs in workload_run["rows"].values() for r in rs if r["month"] == month]
        expected = row_sums(rows)
        before, after = workload_run["before"][month], workload_run["after"][month]
        delta = {k: after["totals"][k] - before["totals"][k] for k in TOTAL_FIELDS}
        assert delta == {k: expected[k] for k in TOTAL_FIELDS}, month
        assert after["active_users"] - before["active_users"] == len({r["user_id"] for r in rows})


def _export(api, user, query):
    response = api.request("GET", f"/v1/usage/export?{query}", user)
    assert response.status_code == 200, response.text
    return response


def test_export_rows_equal_the_ledger(workload_run, api):
    span = f"from={workload_run['from']}&to={workload_run['to']}"
    everyone = json.loads(_export(api, workload_run["admin"], f"{span}&format=json&user=*").text)
    assert everyone["count"] == len(everyone["rows"])
    for name, user in workload_run["people"].items():
        rows = {r["generation_id"]: r for r in workload_run["rows"][name]}
        response = _export(api, user, f"{span}&format=csv")
        assert response.headers["Content-Type"].startswith("text/csv")
        exported = list(csv.DictReader(io.StringIO(response.text)))
        assert {e["generation_id"] for e in exported} == set(rows)
        assert sum(money.to_nanos(Decimal(e["cost"])) for e in exported) == sum(r["cost_nanos"] for r in rows.values())
        for e in exported:
            row = rows[e["generation_id"]]
            assert int(e["cost_nanos"]) == row["cost_nanos"] and e["user_id"] == user.uid
            assert [int(e[k]) for k in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")] == [
                row[k] for k in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")]
            assert (e["model"], e["feature"] or None, e["cost_source"]) == (row["model"], row["feature"], row["cost_source"])
        as_json = json.loads(_export(api, user, f"{span}&format=json").text)["rows"]
        assert sorted(r["generation_id"] for r in as_json) == sorted(rows)
        assert [r for r in everyone["rows"] if r["user_id"] == user.uid] == as_json


def _report(*args):
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-m", "tokenledger.tools.report", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_report_agrees_with_the_api_and_the_rows(workload_run, api):
    admin = workload_run["admin"]
    for month in workload_run["months"]:
        report = json.loads(_report("--month", month, "--json", "--top", "100"))
        totals = api.request("GET", f"/v1/admin/totals?month={month}", admin).json()
        assert report["totals"] == totals["totals"] and report["active_users"] == totals["active_users"]
        ranking = api.request("GET", f"/v1/admin/top-users?month={month}&limit=100", admin).json()["users"]
        assert report["top_users"] == ranking
        # The month-wide breakdowns add up to every user's month cost (all of them are ranked).
        assert len(ranking) < 100
        for breakdown in ("by_model", "by_feature", "by_provider"):
            assert sum(v["cost_nanos"] for v in report[breakdown].values()) == sum(u["cost_nanos"] for u in ranking)
        for name, user in workload_run["people"].items():
            mine = json.loads(_report("--month", month, "--user", user.uid, "--json"))
            rows = [r for r in workload_run["rows"][name] if r["month"] == month]
            assert {k: mine["totals"][k] for k in SUMMARY_FIELDS} == row_sums(rows)
    table = _report("--month", workload_run["months"][0])
    assert "Top users" in table and workload_run["people"]["carol"].uid in table


def test_report_draws_a_chart(workload_run, tmp_path):
    out = tmp_path / "report.png"
    _report("--month", workload_run["months"][0], "--plot", str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
