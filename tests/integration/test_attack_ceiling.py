"""Red-team probes of the ceiling (issue 8): request shapes OpenRouter documents as billable
that the worst case left out, so an enforced budget was overspent. Each test sets an enforced
budget between the old reservation and the charge: the call must be refused (402, nothing sent
upstream) or, with room for the true worst case, admitted and charged at most the budget.

Numbers are worked by hand from scripts/standin_models.json (nano-dollars per token:
claude-sonnet-4 prompt 3,000, 5-minute cache write 3,750, 1-hour cache write 6,000,
completion 15,000) and the policy's documented bound (JSON bytes of the messages + 8 per message).
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests

from .budget_helpers import open_reservations, put_budget, requests_from
from .ledger_checks import month_doc, rows_for
from .served_api import served_api


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def spent(db, uid: str) -> int:
    return (month_doc(db, uid, datetime.now(timezone.utc).strftime("%Y-%m")) or {}).get("cost_nanos", 0)


def error(response) -> dict:
    return response.json()["error"]


DIGITS = "0123456789" * 1000  # 10,000 digits: one token each for tokenizers that split numbers
ONE_HOUR_CACHED = [{"role": "user", "content": [
    {"type": "text", "text": DIGITS, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]


def test_one_hour_cache_writes_are_reserved_at_their_price(api, admin, user, db, standin):
    """Anthropic bills writes to the 1-hour cache at 2x the prompt price (input_cache_write_1h),
    the 5-minute cache at 1.25x. The message is 10,101 JSON bytes: bound 10,109 prompt tokens.
    Reserved at the 5-minute price: 10,109 x 3,750 + 10 x 15,000 = 38,058,750; OpenRouter may
    charge 10,000 x 6,000 + 10 x 15,000 = 60,150,000 for it. At the 1-hour price the worst case
    is 10,109 x 6,000 + 150,000 = 60,804,000."""
    put_budget(api, admin, user.uid, monthly_budget=0.05, enforce=True)
    billed = {"usage": {"prompt_tokens": 10_000, "cache_write_tokens": 10_000, "completion_tokens": 10}}
    standin.script([billed], user=user.uid)
    body = {"model": "anthropic/claude-sonnet-4", "messages": ONE_HOUR_CACHED, "max_tokens": 10}

    refused = api.chat(user, **body)
    assert refused.status_code == 402, (refused.status_code, spent(db, user.uid))
    assert error(refused)["estimated_cost"] == 0.060804
    assert requests_from(standin, user.uid) == [] and spent(db, user.uid) == 0

    put_budget(api, admin, user.uid, monthly_budget=0.061, enforce=True)
    admitted = api.chat(user, **body)
    assert admitted.status_code == 200, admitted.text
    assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [60_150_000]
    assert spent(db, user.uid) == 60_150_000 <= 61_000_000
    assert open_reservations(db, user.uid) == []


LONG_CONTEXT = {
    "id": "longctx/reader-1", "name": "Long Context Reader", "context_length": 1_000_000,
    "architecture": {"output_modalities": ["text"]},
    # the first provider serves 131,072 tokens; others serve the model's whole 1M context
    "top_provider": {"context_length": 131_072, "max_completion_tokens": 4096, "is_moderated": False},
    "pricing": {"prompt": "0.000001", "completion": "0.000002"},
}
PDF_BY_URL = [{"role": "user", "content": [
    {"type": "text", "text": "Summarise this report."},
    {"type": "file", "file": {"filename": "report.pdf", "file_data": "https://example.com/annual-report.pdf"}}]}]


def test_a_file_is_bounded_by_the_models_context_not_the_first_providers(admin, user, db, standin, stack, tmp_path):
    """/models gives a model's context (`context_length`, what OpenRouter can route to) and the
    top provider's (`top_provider.context_length`), which can be smaller. A PDF's parsed text is
    bounded only by the context, so the worst case must use the larger: 1,000,000 x 1,000 +
    10 x 2,000 = 1,000,020,000, not 131,072 x 1,000 + 20,000 = 131,092,000. A PDF parsed to
    600,000 tokens is charged 600,000 x 1,000 + 10 x 2,000 = 600,020,000."""
    pricing = db.collection("model_pricing").document("current")
    stored = pricing.get().to_dict()
    standin.http.post(f"{stack.standin_url}/_control/models", timeout=10, json=LONG_CONTEXT).raise_for_status()
    billed = {"usage": {"prompt_tokens": 600_000, "completion_tokens": 10}}
    standin.script([billed], user=user.uid)
    try:
        with served_api(tmp_path / "function.log", TOKENLEDGER_CATALOG_MISS_REFRESH_S="600") as base:
            def call():
                return requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60,
                                     json={"model": "longctx/reader-1", "messages": PDF_BY_URL, "max_tokens": 10})

            def put_budget_here(usd):  # on this instance, so no cached budget of another is in the way
                response = requests.put(f"{base}/v1/admin/budgets/{user.uid}", headers=admin.headers, timeout=60,
                                        json={"monthly_budget": usd, "enforce": True})
                assert response.status_code in (200, 201), response.text

            put_budget_here(0.5)
            refused = call()
            assert refused.status_code == 402, (refused.status_code, spent(db, user.uid))
            assert error(refused)["estimated_cost"] == 1.00002
            assert requests_from(standin, user.uid) == [] and spent(db, user.uid) == 0

            put_budget_here(1.1)
            admitted = call()
            assert admitted.status_code == 200, admitted.text
            assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [600_020_000]
            assert spent(db, user.uid) == 600_020_000 <= 1_100_000_000
    finally:
        if stored is not None:
            pricing.set(stored)  # the catalog other tests expect
