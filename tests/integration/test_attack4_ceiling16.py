"""Issue 16: the ceiling's last holes, driven end to end on an enforced budget. The stand-in bills
as OpenRouter documents (a model that searches by itself pays per search and re-reads what it
found on every internal step; the server tool's loop; image tokens per model family; 1-hour and
long-context cache writes; the structured-output framing). Each test shows the call refused
(402, nothing sent upstream) when the budget is below the true worst case, and admitted and
charged at most the budget when it is above.

Numbers are worked by hand from scripts/standin_models.json (nano-dollars per token) and the
policy's documented bounds (docs/budgets.md)."""
from __future__ import annotations

import math
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import requests

from .budget_helpers import put_budget, requests_from
from .ledger_checks import month_doc, rows_for
from .served_api import served_api


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def spent(db, uid: str) -> int:
    return (month_doc(db, uid, datetime.now(timezone.utc).strftime("%Y-%m")) or {}).get("cost_nanos", 0)


def error(response) -> dict:
    return response.json()["error"]


@contextmanager
def instance(tmp_path, admin, user, **env):
    """A served `api` with its own settings; budgets are put through it (no other instance's cache)."""
    with served_api(tmp_path / "function.log", **env) as base:
        def chat(**body):
            return requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60, json=body)

        def budget(usd):
            response = requests.put(f"{base}/v1/admin/budgets/{user.uid}", headers=admin.headers, timeout=60,
                                    json={"monthly_budget": usd, "enforce": True})
            assert response.status_code in (200, 201), response.text

        yield chat, budget


DEEP = "openai/o4-mini-deep-research"
RESEARCH = [{"role": "user", "content": "Research tidal power."}]  # 4 + ceil(21 / 4) = 10 tokens


def test_a_deep_research_model_is_refused_unless_listed_then_reserved_for_every_search(
        api, admin, user, db, standin, tmp_path):
    """Before: admitted as a chat model (reserved about $0.005) and billed $0.76 here. Now: refused
    while web search is off (400) and while no operator lists it (403); listed, it is reserved
    10 searches x $0.01 + 11 steps x (200,000 context x $2/M + 100 x $8/M) = $4.5088. The stand-in
    searches 10 times, each reading 6,000 tokens: 11 calls read 10 + 6,018 i (i = 0..10) =
    331,100 tokens and write 18 each: $0.10 + 331,100 x $2/M + 198 x $8/M = $0.763784."""
    body = {"model": DEEP, "messages": RESEARCH, "max_tokens": 100}
    put_budget(api, admin, user.uid, monthly_budget=10, enforce=True)
    off = api.chat(user, **body)
    assert (off.status_code, error(off)["code"]) == (400, "web_search_disabled"), off.text
    with instance(tmp_path, admin, user, TOKENLEDGER_ALLOW_WEB_SEARCH="true") as (chat, budget):
        unlisted = chat(**body)
        assert (unlisted.status_code, error(unlisted)["code"]) == (403, "search_model_not_listed"), unlisted.text
    assert requests_from(standin, user.uid) == []

    standin.script([{"web_searches": 10}], user=user.uid)
    with instance(tmp_path, admin, user, TOKENLEDGER_ALLOW_WEB_SEARCH="true", TOKENLEDGER_SEARCH_MODELS=DEEP) as (
            chat, budget):
        budget(4)
        refused = chat(**body)
        assert refused.status_code == 402 and error(refused)["estimated_cost"] == 4.5088, refused.text
        assert requests_from(standin, user.uid) == [] and spent(db, user.uid) == 0
        budget(5)
        admitted = chat(**body)
        assert admitted.status_code == 200, admitted.text
    assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [763_784_000]
    assert spent(db, user.uid) == 763_784_000 <= 4_508_800_000


EMPTY_DOMAIN_TOOL = {"type": "openrouter:web_search", "parameters": {"allowed_domains": ["empty.example"]}}
UPSTREAM_TOOLS = ('[{"type":"openrouter:web_search","parameters":{"allowed_domains":["empty.example"],'
                  '"engine":"exa","max_results":5,"max_total_results":15,"max_characters":5000}}]')


def test_the_server_tool_loop_is_capped_and_every_step_reserved(admin, user, db, standin, tmp_path):
    """allowed_domains on a domain with nothing on it: the model asks for 30 searches. Before: no
    cap on the loop (31 calls, $0.60 on claude-sonnet-4 against a $0.13 reservation). Now
    max_tool_calls 3 goes upstream and 4 calls are reserved: the first reads the prompt bound
    (38 + the tools' JSON + 500 + 3 x 100 framing), each later one also 15 results x 5,200 and its
    earlier turns, at $3.75/M (the 5-minute write price); 4 x 50 completion at $15/M; 15 results
    x $0.004. The stand-in runs 3 searches finding nothing: 4 calls of (5 + ceil(tools / 4) + 346
    + 16 i) prompt tokens and 16 completion each, at $3/M and $15/M."""
    first = 38 + len(UPSTREAM_TOOLS) + 500 + 300
    worst = (4 * first + 3 * 78_000 + 50 * 6) * 3_750 + 200 * 15_000 + 15 * 4_000_000
    read = 5 + math.ceil(len(UPSTREAM_TOOLS) / 4) + 346
    charge = (4 * read + 16 * 6) * 3_000 + 4 * 16 * 15_000
    body = {"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 50, "tools": [EMPTY_DOMAIN_TOOL]}
    standin.script([{"web_searches": 30, "web_results_found": 0}], user=user.uid)
    with instance(tmp_path, admin, user, TOKENLEDGER_ALLOW_WEB_SEARCH="true") as (chat, budget):
        budget(0.9)
        refused = chat(**body)
        assert refused.status_code == 402 and error(refused)["estimated_cost"] == worst / 1e9, refused.text
        budget(1)
        admitted = chat(**body)
        assert admitted.status_code == 200, admitted.text
    sent = requests_from(standin, user.uid)
    assert [r["body"]["max_tool_calls"] for r in sent] == [3]
    assert sent[0]["body"]["tools"][0]["parameters"]["max_characters"] == 5000
    assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [charge]
    assert spent(db, user.uid) == charge <= worst <= 1_000_000_000


def test_a_search_context_size_that_reads_more_than_reserved_is_refused(admin, user, standin, tmp_path):
    tool = {"type": "openrouter:web_search", "parameters": {"search_context_size": "high"}}
    with instance(tmp_path, admin, user, TOKENLEDGER_ALLOW_WEB_SEARCH="true") as (chat, budget):
        budget(1)
        response = chat(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], tools=[tool])
    assert response.status_code == 400, response.text
    assert error(response)["field"] == "tools[0].parameters.search_context_size"
    assert requests_from(standin, user.uid) == []


CHARTS = {"type": "image_url", "image_url": {"url": "https://example.test/chart.png", "detail": "high"}}
TWO_CHARTS = [{"role": "user", "content": [{"type": "text", "text": "Compare these charts."}, CHARTS, CHARTS]}]


def test_images_are_reserved_at_the_model_familys_tokens(api, admin, user, db, standin):
    """gpt-4o-mini reads a 2,048 x 768 image at detail high as 2,833 + 8 x 5,667 = 48,169 tokens.
    Before: 3,000 per image ($0.00098 reserved, $0.0145 billed). Now the bound is the message's
    JSON bytes + 8 + 2 x 48,169 at $0.15/M, + 10 x $0.60/M. Billed: (10 + 96,338) x 150 + 10 x 600."""
    counted = len('{"role":"user","content":[{"type":"text","text":"Compare these charts."},{"type":"image_url"},'
                  '{"type":"image_url"}]}') + 8
    worst = (counted + 2 * 48_169) * 150 + 10 * 600
    charge = (10 + 2 * 48_169) * 150 + 10 * 600
    body = {"model": "openai/gpt-4o-mini", "messages": TWO_CHARTS, "max_tokens": 10}
    standin.script([{"image_size": [2048, 768]}], user=user.uid)
    put_budget(api, admin, user.uid, monthly_budget=0.01, enforce=True)
    refused = api.chat(user, **body)
    assert refused.status_code == 402 and error(refused)["estimated_cost"] == worst / 1e9, refused.text
    assert requests_from(standin, user.uid) == []
    put_budget(api, admin, user.uid, monthly_budget=0.02, enforce=True)
    admitted = api.chat(user, **body)
    assert admitted.status_code == 200, admitted.text
    assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [charge] and charge == 14_458_200
    assert spent(db, user.uid) == charge <= worst


def cached_pdf(ttl: str) -> list[dict]:
    return [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "https://example.com/annual-report.pdf"},
         "cache_control": {"type": "ephemeral", "ttl": ttl}},
        {"type": "text", "text": "Summarise this report."}]}]


def test_long_context_one_hour_writes_are_reserved_at_the_tiers_price(api, admin, user, db, standin):
    """claude-sonnet-4.5 from 200,000 prompt tokens bills $6/M and lists no write price for that
    tier: a 1-hour write costs 2 x $6/M. Before: reserved at $6/M ($6.00225) and billed $10.80225.
    Now: 1,000,000 (its context: a PDF) x $12/M + 100 x $22.5/M = $12.00225. The stand-in bills a
    PDF read as 900,000 tokens, all written to the 1-hour cache: 900,000 x $12/M + 100 x $22.5/M."""
    body = {"model": "anthropic/claude-sonnet-4.5", "messages": cached_pdf("1h"), "max_tokens": 100}
    standin.script([{"usage": {"prompt_tokens": 900_000, "cache_write_tokens": 900_000, "completion_tokens": 100}}],
                   user=user.uid)
    put_budget(api, admin, user.uid, monthly_budget=11, enforce=True)
    refused = api.chat(user, **body)
    assert refused.status_code == 402 and error(refused)["estimated_cost"] == 12.00225, refused.text
    put_budget(api, admin, user.uid, monthly_budget=12.5, enforce=True)
    admitted = api.chat(user, **body)
    assert admitted.status_code == 200, admitted.text
    assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [10_802_250_000]
    assert spent(db, user.uid) == 10_802_250_000 <= 12_002_250_000


UNLISTED_1H = {
    "id": "anthropic/claude-sonnet-4-snapshot", "name": "Claude Sonnet 4 as the shipped snapshot lists it",
    "context_length": 200_000, "architecture": {"output_modalities": ["text"]},
    "top_provider": {"context_length": 200_000, "max_completion_tokens": 64_000, "is_moderated": False},
    # like the snapshot's Anthropic entries: a 5-minute write price, no input_cache_write_1h
    "pricing": {"prompt": "0.000003", "completion": "0.000015", "input_cache_write": "0.00000375"},
}


def test_one_hour_writes_without_a_listed_price_are_reserved_at_twice_the_prompt(
        admin, user, db, standin, stack, tmp_path):
    """Before: reserved at the 5-minute price, 200,000 x $3.75/M + 100 x $15/M = $0.7515, and
    billed 200,000 x $6/M + 100 x $15/M = $1.2015 (over the default $1 budget). Now the missing
    1-hour price is 2 x $3/M: reserved $1.2015."""
    pricing = db.collection("model_pricing").document("current")
    stored = pricing.get().to_dict()
    standin.http.post(f"{stack.standin_url}/_control/models", timeout=10, json=UNLISTED_1H).raise_for_status()
    standin.script([{"usage": {"prompt_tokens": 200_000, "cache_write_tokens": 200_000, "completion_tokens": 100}}],
                   user=user.uid)
    body = {"model": UNLISTED_1H["id"], "messages": cached_pdf("1h"), "max_tokens": 100}
    try:
        with instance(tmp_path, admin, user, TOKENLEDGER_CATALOG_MISS_REFRESH_S="600") as (chat, budget):
            budget(1)
            refused = chat(**body)
            assert refused.status_code == 402 and error(refused)["estimated_cost"] == 1.2015, refused.text
            assert requests_from(standin, user.uid) == []
            budget(1.25)
            admitted = chat(**body)
            assert admitted.status_code == 200, admitted.text
        assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [1_201_500_000]
        assert spent(db, user.uid) == 1_201_500_000 <= 1_250_000_000
    finally:
        if stored is not None:
            pricing.set(stored)  # the catalog other tests expect


def test_structured_output_is_reserved_its_framing(api, admin, user, db, standin):
    """A JSON response format adds the provider's framing (the stand-in: 300 tokens). Before: the
    bound was 38 + 22 bytes (reserved $0.0000096, billed $0.00004725). Now + 500: (38 + 22 + 500)
    x $0.15/M + 1 x $0.60/M = $0.0000846; billed (5 + 6 + 300) x $0.15/M + $0.60/M."""
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1,
            "response_format": {"type": "json_object"}}
    put_budget(api, admin, user.uid, monthly_budget=0.00008, enforce=True)
    refused = api.chat(user, **body)
    assert refused.status_code == 402 and error(refused)["estimated_cost"] == 0.0000846, refused.text
    put_budget(api, admin, user.uid, monthly_budget=0.0001, enforce=True)
    admitted = api.chat(user, **body)
    assert admitted.status_code == 200, admitted.text
    assert [r["cost_nanos"] for r in rows_for(db, user.uid)] == [311 * 150 + 600]
    assert spent(db, user.uid) == 47_250 <= 84_600


def test_a_stacked_free_floor_suffix_is_refused(api, user, standin):
    response = api.chat(user, model="meta-llama/llama-3.3-70b-instruct:free:floor", max_tokens=10)
    assert response.status_code == 400 and error(response)["code"] == "unsupported_model", response.text
    assert requests_from(standin, user.uid) == []
