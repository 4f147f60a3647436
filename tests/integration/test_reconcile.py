"""Settlement of pending rows by the scheduled `reconcile_usage` function (run in the emulator)
and by scripts/reconcile_usage.py: to the charged cost from GET /generation, rollups
corrected in the same batch, idempotent."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from scripts.devkit.sse import events
from scripts.trigger_schedule import trigger
from tokenledger import money

from .ledger_checks import actual_rollup, expected_day_costs, expected_rollup, month_doc, rows_for
from .served_api import served_api
from .test_streaming import LONG_TEXT, stream


def run_reconcile():
    status, body = trigger("reconcile_usage", timeout=120)
    assert status == 200, body


def charged_nanos(standin, gen_id) -> int:
    record = next(g for g in standin.generations() if g["id"] == gen_id)
    return money.to_nanos(money.to_decimal(record["total_cost"]))


def assert_rollups_match_rows(db, uid):
    rows = rows_for(db, uid)
    assert actual_rollup(month_doc(db, uid, rows[0]["month"])) == expected_rollup(rows)
    assert month_doc(db, uid, rows[0]["month"]).get("day_costs") == expected_day_costs(rows)  # corrected too


def test_stream_without_usage_is_settled_to_the_charged_cost(api, user, standin, db):
    standin.script([{"stream_no_usage": True}], user=user.uid)
    list(events(stream(api, user)))
    [pending] = rows_for(db, user.uid)
    assert pending["cost_source"] == "pending"

    run_reconcile()
    [row] = rows_for(db, user.uid)
    assert row["cost_source"] == "reconciled" and row["status"] == "incomplete"
    assert row["cost_nanos"] == charged_nanos(standin, row["_id"])
    assert row["cost_nanos"] != pending["cost_nanos"]  # the estimate was only an estimate
    assert "pending_settlement" not in row["flags"] and row["reserved_nanos"] == 0
    assert_rollups_match_rows(db, user.uid)

    # Idempotent: a second run changes nothing.
    month_before = month_doc(db, user.uid, row["month"])
    run_reconcile()
    assert rows_for(db, user.uid) == [row]
    assert month_doc(db, user.uid, row["month"])["cost_nanos"] == month_before["cost_nanos"]


def test_mid_stream_error_is_settled_to_what_was_billed(api, user, standin, db):
    standin.script([{"stream_error_after": 1, "status": 502}], user=user.uid)
    list(events(stream(api, user)))
    run_reconcile()
    [row] = rows_for(db, user.uid)
    assert row["status"] == "error" and row["cost_source"] == "reconciled"
    # Only the part generated before the failure was billed, and that is what is recorded.
    assert row["cost_nanos"] == charged_nanos(standin, row["_id"])
    assert_rollups_match_rows(db, user.uid)


def test_generation_lookups_that_404_first_are_retried_with_backoff(api, user, standin, db):
    standin.configure(generation_delay_s=1.2)  # GET /generation 404s for 1.2 s after the call
    standin.script([{"stream_no_usage": True}], user=user.uid)
    list(events(stream(api, user)))
    [row] = rows_for(db, user.uid)
    response = requests.get(
        f"{standin.root}/api/v1/generation", params={"id": row["_id"]},
        headers={"Authorization": f"Bearer {os.environ['OPENROUTER_API_KEY']}"}, timeout=10,
    )
    assert response.status_code == 404  # not visible yet
    run_reconcile()
    [row] = rows_for(db, user.uid)
    assert row["cost_source"] == "reconciled"
    assert row["cost_nanos"] == charged_nanos(standin, row["_id"])


def test_row_unresolved_past_the_configured_age_is_settled_at_its_estimate(api, user, standin, db):
    standin.configure(generation_delay_s=3600)  # OpenRouter never answers for it
    standin.script([{"stream_no_usage": True}], user=user.uid)
    list(events(stream(api, user)))
    [pending] = rows_for(db, user.uid)

    script = [sys.executable, "-m", "tokenledger.tools.reconcile", "--pending-max-age", "0", "--no-drift"]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pending["_id"] in done.stdout and "settled_at_estimate" in done.stdout

    [row] = rows_for(db, user.uid)
    assert row["cost_source"] == "estimate" and "settled_at_estimate" in row["flags"]
    assert row["cost_nanos"] == pending["cost_nanos"]
    assert_rollups_match_rows(db, user.uid)


@pytest.fixture()
def served(stack, tmp_path):
    with served_api(tmp_path / "function.log") as base:
        yield base


def test_client_abort_is_recorded_then_settled_by_reconcile_usage(served, user, standin, db):
    # Served by functions-framework (gunicorn, as deployed): a client hanging up closes the
    # response generator on the next write.
    standin.configure(stream_chunk_delay_ms=150)
    response = requests.post(
        f"{served}/v1/chat/completions", headers=user.headers, stream=True, timeout=60,
        json={"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": LONG_TEXT * 4}]},
    )
    seen = 0
    for event in events(response):
        seen += event.data is not None
        if seen == 2:
            break
    response.close()  # the user closed the tab

    deadline = time.monotonic() + 20
    while not rows_for(db, user.uid) and time.monotonic() < deadline:
        time.sleep(0.2)
    [row] = rows_for(db, user.uid)
    assert row["status"] == "aborted" and row["cost_source"] == "pending"
    assert row["generation_id"].startswith("gen-") and row["cost_nanos"] > 0

    run_reconcile()
    [row] = rows_for(db, user.uid)
    assert row["cost_source"] == "reconciled" and row["status"] == "aborted"
    assert row["cost_nanos"] == charged_nanos(standin, row["_id"])
    assert_rollups_match_rows(db, user.uid)
