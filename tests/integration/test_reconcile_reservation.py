"""A pending row keeps the budget reservation its call held until settlement releases it
(the ledger batch for a pending row does not release it; reconcile_usage's batch does)."""
from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone

import requests
from google.cloud import firestore

from scripts.trigger_schedule import trigger
from tokenledger import money, store
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from .ledger_checks import month_doc, rows_for

RESERVED = 2_000_000  # $0.002 held against the budget while the call ran


def upstream_generation(uid: str) -> dict:
    """A real generation at the stand-in (as if a stream to it had been cut off)."""
    response = requests.post(
        os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions",
        headers={"Authorization": f"Bearer {os.environ['OPENROUTER_API_KEY']}"},
        json={"model": "openai/gpt-4o-mini", "user": uid, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def test_reservation_is_held_by_the_pending_row_and_released_on_settlement(user, standin, db):
    body = upstream_generation(user.uid)
    now = datetime.now(timezone.utc)
    record = build_record(
        {"id": body["id"], "model": body["model"], "choices": [],
         "usage": {"prompt_tokens": 10, "completion_tokens": 3}},
        CallFacts(user.uid, "openai/gpt-4o-mini", "/v1/chat/completions", now, 50, metadata={"stream": True}),
        Pricing(None, fallback_price("openai/gpt-4o-mini", money.to_decimal("0.00001"), money.to_decimal("0.00003"))),
        status="aborted",
    )
    record = dataclasses.replace(record, cost_source="pending", flags=("pending_settlement",), reserved_nanos=RESERVED)
    # The reservation as the budget check makes it: a blind increment before the call.
    month_ref = store.user_month_doc(db, user.uid, record.month)
    month_ref.set({"reserved_nanos": firestore.Increment(RESERVED)}, merge=True)
    ledger.record_usage(db, record, Settings())

    [row] = rows_for(db, user.uid)
    assert row["reserved_nanos"] == RESERVED
    assert month_doc(db, user.uid, record.month)["reserved_nanos"] == RESERVED  # still held

    status, text = trigger("reconcile_usage", timeout=120)
    assert status == 200, text
    [row] = rows_for(db, user.uid)
    assert row["cost_source"] == "reconciled" and row["reserved_nanos"] == 0
    month = month_doc(db, user.uid, record.month)
    assert month["reserved_nanos"] == 0  # released once, by the settlement
    assert month["cost_nanos"] == row["cost_nanos"] == money.to_nanos(money.to_decimal(body["usage"]["cost"]))

    status, text = trigger("reconcile_usage", timeout=120)  # again: nothing released twice
    assert status == 200, text
    assert month_doc(db, user.uid, record.month)["reserved_nanos"] == 0


def test_a_call_with_usage_releases_its_reservation_in_its_own_batch(user, standin, db):
    body = upstream_generation(user.uid)
    record = build_record(
        body,
        CallFacts(user.uid, "openai/gpt-4o-mini", "/v1/chat/completions", datetime.now(timezone.utc), 50),
        Pricing(None, fallback_price("x", money.to_decimal("0.00001"), money.to_decimal("0.00003"))),
    )
    record = dataclasses.replace(record, reserved_nanos=RESERVED)
    store.user_month_doc(db, user.uid, record.month).set({"reserved_nanos": firestore.Increment(RESERVED)}, merge=True)
    ledger.record_usage(db, record, Settings())  # a call with its usage: released in its own batch
    assert month_doc(db, user.uid, record.month)["reserved_nanos"] == 0
    [row] = rows_for(db, user.uid)
    assert row["reserved_nanos"] == 0 and row["cost_source"] == "openrouter"


def test_two_runs_settling_the_same_row_apply_the_correction_once(user, standin, db):
    """Both runs read the row while pending; the second's batch fails on the row's update-time
    precondition, so none of its rollup increments apply."""
    from tokenledger.metering.usage import record_from_row
    from tokenledger.openrouter import OpenRouterClient
    from tokenledger.reconcile import settle

    body = upstream_generation(user.uid)
    now = datetime.now(timezone.utc)
    record = build_record(
        {"id": body["id"], "model": body["model"], "choices": [],
         "usage": {"prompt_tokens": 10, "completion_tokens": 3}},
        CallFacts(user.uid, "openai/gpt-4o-mini", "/v1/chat/completions", now, 50),
        Pricing(None, fallback_price("openai/gpt-4o-mini", money.to_decimal("0.00001"), money.to_decimal("0.00003"))),
        status="incomplete",
    )
    record = dataclasses.replace(record, cost_source="pending", reserved_nanos=RESERVED)
    store.user_month_doc(db, user.uid, record.month).set({"reserved_nanos": firestore.Increment(RESERVED)}, merge=True)
    ledger.record_usage(db, record, Settings())

    settings = Settings(openrouter_base_url=os.environ["OPENROUTER_BASE_URL"].rstrip("/"),
                        openrouter_api_key=os.environ["OPENROUTER_API_KEY"])
    generation = OpenRouterClient(settings).generation(body["id"])
    snap = store.usage_doc(db, body["id"]).get()  # both runs read this same snapshot
    first = settle.settle_row(db, snap, record_from_row(snap.to_dict()), generation, settings, now)
    second = settle.settle_row(db, snap, record_from_row(snap.to_dict()), generation, settings, now)
    assert (first.outcome, second.outcome) == ("settled", "already_settled")

    [row] = rows_for(db, user.uid)
    month = month_doc(db, user.uid, record.month)
    assert month["cost_nanos"] == row["cost_nanos"] == money.to_nanos(money.to_decimal(body["usage"]["cost"]))
    assert month["reserved_nanos"] == 0 and month["calls"] == 1
