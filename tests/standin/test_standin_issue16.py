"""The stand-in bills the shapes of issue 16 as OpenRouter documents them: models that search by
themselves (a fee per search, each search read on the next internal step), the web search server
tool's agent loop (`max_tool_calls`, `search_context_size`, `max_characters`, searches finding
nothing), image tokens per model family, 1-hour cache writes where the catalog lists no price,
long-context overrides, and the structured-output framing.

Expected values are worked by hand from scripts/standin_models.json."""
from __future__ import annotations

import json
import math
from decimal import Decimal as D

import pytest

from scripts.devkit.standin_driver import chat, script, test_client

FREE = "meta-llama/llama-3.3-70b-instruct:free"


@pytest.fixture
def client():
    return test_client()


def test_a_deep_research_model_bills_every_search_and_every_internal_step(client):
    """o4-mini-deep-research searches 3 times (scripted): 3 x $0.01; 4 model calls, each
    re-reading the request (7), the 6,000 tokens each search read and its own 10-token turns:
    7 + 6,017 + 12,027 + 18,037 = 36,088 prompt tokens at $2/M; 4 x 10 completion at $8/M."""
    script(client, {"web_searches": 3})
    body = chat(client, model="openai/o4-mini-deep-research", max_tokens=10)
    usage = body["usage"]
    assert usage["prompt_tokens"] == 36_088 and usage["completion_tokens"] == 40
    assert usage["cost"] == 3 * D("0.01") + 36_088 * D("0.000002") + 40 * D("0.000008")
    assert usage["server_tool_use"] == {"web_search_requests": 3}


def test_the_server_tool_loop_reads_every_result_on_every_later_step(client):
    """search_context_size "high": 30,000 characters a result (7,500 tokens + 50). Two searches
    of 2 results on a free model: calls read 7; 7 + 15,100 + 10; 7 + 30,200 + 20: 45,344 tokens;
    the fee is 4 results x $0.004."""
    script(client, {"web_searches": 2})
    tool = {"type": "openrouter:web_search", "parameters": {"max_results": 2, "search_context_size": "high"}}
    usage = chat(client, model=FREE, tools=[tool], max_tokens=10)["usage"]
    tools_tokens = math.ceil(len(json.dumps([tool], separators=(",", ":"))) / 4) + 346
    first = 7 + tools_tokens
    assert usage["prompt_tokens"] == 3 * first + 15_100 + 10 + 30_200 + 20
    assert usage["completion_tokens"] == 30 and usage["cost"] == 4 * D("0.004")


def test_max_characters_caps_a_result_and_max_tool_calls_caps_the_loop(client):
    """max_characters 2,000 wins over the context size (550 tokens a result); max_tool_calls 2
    stops a model that wants 9 searches after 2; a domain with nothing on it (0 results found)
    still costs the steps."""
    params = {"max_results": 1, "search_context_size": "high", "max_characters": 2000}
    tool = {"type": "openrouter:web_search", "parameters": params}
    first = 7 + math.ceil(len(json.dumps([tool], separators=(",", ":"))) / 4) + 346
    script(client, {"web_searches": 9}, {"web_searches": 9, "web_results_found": 0})
    capped = chat(client, model=FREE, tools=[tool], max_tokens=10, max_tool_calls=2)["usage"]
    assert capped["prompt_tokens"] == 3 * first + 2 * 550 + 550 + 10 + 20
    assert capped["server_tool_use_details"] == {"web_search_requests": 2, "web_search_results": 2}
    empty = chat(client, model="openai/gpt-4o-mini", tools=[tool], max_tokens=10)["usage"]
    calls = 10  # 9 searches + the answer, nothing found
    assert empty["prompt_tokens"] == calls * first + 10 * sum(range(calls))
    assert empty["completion_tokens"] == 100 and empty["server_tool_use_details"]["web_search_results"] == 0


IMAGE = {"type": "image_url", "image_url": {"url": "https://example.test/chart.png"}}


@pytest.mark.parametrize("model, size, detail, tokens", [
    ("openai/gpt-4o-mini", [2048, 768], None, 2833 + 5667 * 8),  # 4 x 2 tiles of 512 px
    ("openai/gpt-4o-mini", [2048, 768], "low", 2833),
    ("openai/gpt-4o", [1024, 1024], "high", 85 + 170 * 4),
    ("openai/gpt-4.1-nano", [4000, 4000], None, 3779),  # 1,536 patches x 2.46, rounded up
    ("anthropic/claude-sonnet-4", [1000, 750], None, 1000),  # 1000 x 750 / 750
    ("qwen/qwen2.5-vl-72b-instruct", [8000, 8000], None, 16_384),
])
def test_image_tokens_follow_the_model_familys_formula(client, model, size, detail, tokens):
    script(client, {"image_size": size})
    image = {**IMAGE, "image_url": {**IMAGE["image_url"], **({"detail": detail} if detail else {})}}
    usage = chat(client, model=model, max_tokens=5,
                 messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}, image]}])["usage"]
    assert usage["prompt_tokens"] == 4 + 1 + tokens


def test_one_hour_writes_without_a_listed_price_are_billed_at_twice_the_prompt(client):
    """A model billing cache writes with no input_cache_write_1h (the shipped snapshot's Anthropic
    entries): a 1-hour write is 2 x $3/M."""
    client.post("/_control/pricing", json={"model": "anthropic/claude-sonnet-4", "pricing": {
        "input_cache_write_1h": None}})
    script(client, {"usage": {"prompt_tokens": 10_000, "cache_write_tokens": 10_000, "completion_tokens": 10}})
    part = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    usage = chat(client, model="anthropic/claude-sonnet-4", max_tokens=10,
                 messages=[{"role": "user", "content": [part]}])["usage"]
    assert usage["cost"] == 10_000 * D("0.000006") + 10 * D("0.000015")


def test_a_long_prompt_is_billed_at_the_override_and_its_writes_follow_the_override(client):
    """claude-sonnet-4.5 over 200,000 prompt tokens: $6/M prompt, $22.5/M completion; the override
    lists no write prices, so writes are 1.25 x $6/M (5 minutes) or 2 x $6/M (1 hour)."""
    script(client, {"usage": {"prompt_tokens": 300_000, "cache_write_tokens": 300_000, "completion_tokens": 10}})
    usage = chat(client, model="anthropic/claude-sonnet-4.5", max_tokens=10)["usage"]
    assert usage["cost"] == 300_000 * D("0.0000075") + 10 * D("0.0000225")
    script(client, {"usage": {"prompt_tokens": 300_000, "cache_write_tokens": 300_000, "completion_tokens": 10}})
    part = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    usage = chat(client, model="anthropic/claude-sonnet-4.5", max_tokens=10,
                 messages=[{"role": "user", "content": [part]}])["usage"]
    assert usage["cost"] == 300_000 * D("0.000012") + 10 * D("0.0000225")


def test_structured_output_adds_its_framing(client):
    response_format = {"type": "json_object"}
    usage = chat(client, max_tokens=5, response_format=response_format)["usage"]
    assert usage["prompt_tokens"] == 7 + math.ceil(len('{"type":"json_object"}') / 4) + 300
