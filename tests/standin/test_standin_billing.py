"""The stand-in bills what OpenRouter documents for the request shapes a metering proxy must
bound: `models` fallbacks, routers, routing variants, web search (even on free models), tools,
images and files in the prompt, and completions never longer than the max_tokens sent.

Expected costs are written out from the catalog prices (scripts/standin_models.json)."""
from __future__ import annotations

import json
import math
from decimal import Decimal as D

import pytest

from scripts.devkit.standin_driver import AUTH, HELLO, chat, script, test_client

MINI_IN, MINI_OUT = D("0.00000015"), D("0.0000006")
GPT4O_IN, GPT4O_OUT = D("0.0000025"), D("0.00001")


@pytest.fixture
def client():
    return test_client()


def test_free_model_falls_back_to_a_paid_model_and_bills_it(client):
    script(client, {"unavailable": ["meta-llama/llama-3.3-70b-instruct:free"]})
    body = chat(client, model="meta-llama/llama-3.3-70b-instruct:free", models=["openai/gpt-4o"])
    assert body["model"] == "openai/gpt-4o"
    assert body["usage"]["cost"] == 7 * GPT4O_IN + 17 * GPT4O_OUT
    # every model down: 503
    script(client, {"unavailable": ["openai/gpt-4o-mini", "openai/gpt-4o"]})
    chat(client, 503, models=["openai/gpt-4o"])


def test_web_search_plugin_is_billed_per_result_even_on_a_free_model(client):
    body = chat(client, model="meta-llama/llama-3.3-70b-instruct:free", plugins=[{"id": "web", "max_results": 3}])
    assert body["usage"]["cost"] == 3 * D("0.004")
    # each result: Exa's adaptive highlights (at most 4,000 characters: 1,000 tokens) + 50 for title and URL
    assert body["usage"]["prompt_tokens"] == 7 + 3 * 1050
    assert body["usage"]["server_tool_use"] == {"web_search_requests": 1}
    online = chat(client, model="meta-llama/llama-3.3-70b-instruct:free:online")
    assert online["usage"]["cost"] == 5 * D("0.004")


def test_web_search_server_tool_searches_as_often_as_the_model_asks_up_to_max_total_results(client):
    tool = {"type": "openrouter:web_search", "parameters": {"max_results": 2}}
    script(client, {"web_searches": 4}, {"web_searches": 4})
    free = "meta-llama/llama-3.3-70b-instruct:free"
    unbounded = chat(client, model=free, tools=[tool])
    assert unbounded["usage"]["cost"] == 8 * D("0.004")
    capped = chat(client, model=free, tools=[{**tool, "parameters": {"max_results": 2, "max_total_results": 3}}])
    assert capped["usage"]["cost"] == 3 * D("0.004")
    assert capped["usage"]["server_tool_use_details"] == {"web_search_requests": 4, "web_search_results": 3}


def test_tools_and_tool_calls_are_prompt_tokens(client):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "description": "x" * 400}}}]
    tools_len = len(json.dumps(tools, separators=(",", ":")))
    body = chat(client, tools=tools, max_tokens=5)
    assert body["usage"]["prompt_tokens"] == 7 + math.ceil(tools_len / 4) + 346
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                     "function": {"name": "f", "arguments": "{}"}}]}
    extra = len(json.dumps({"tool_calls": call["tool_calls"]}, separators=(",", ":")))
    body = chat(client, messages=HELLO + [call, {"role": "user", "content": "ok"}], max_tokens=5)
    assert body["usage"]["prompt_tokens"] == 7 + (4 + math.ceil(extra / 4)) + (4 + 1)


def test_completion_never_exceeds_the_max_tokens_sent_and_the_newer_name_wins(client):
    script(client, {"usage": {"completion_tokens": 5000}})
    body = chat(client, max_tokens=40)
    assert body["usage"]["completion_tokens"] == 40
    body = chat(client, max_tokens=1, max_completion_tokens=12)
    assert body["usage"]["completion_tokens"] == 12


def test_variants_bill_the_base_model_and_floor_can_be_cheaper(client):
    nitro = chat(client, model="openai/gpt-4o-mini:nitro")
    assert (nitro["model"], nitro["usage"]["cost"]) == ("openai/gpt-4o-mini", 7 * MINI_IN + 17 * MINI_OUT)
    floor = chat(client, model="anthropic/claude-sonnet-4:floor")
    assert floor["usage"]["cost"] == (7 * D("0.000003") + 17 * D("0.000015")) * D("0.8")
    chat(client, 400, model="nobody/model:nitro")


def test_pinned_auto_router_serves_within_its_allowed_models(client):
    body = chat(client, model="openrouter/auto",
                plugins=[{"id": "auto-router", "allowed_models": ["openai/*", "anthropic/claude-3.5-haiku"]}])
    assert body["model"] == "openai/gpt-4o"  # the dearest the pin allows
    assert body["usage"]["cost"] == 7 * GPT4O_IN + 17 * GPT4O_OUT


def test_file_parts_are_prompt_tokens_and_ocr_is_billed_unless_pdf_text(client):
    data = "data:application/pdf;base64," + "A" * 5972  # 6000 bytes: 1500 tokens, 2 OCR pages
    messages = [{"role": "user", "content": [{"type": "text", "text": "sum"},
                                              {"type": "file", "file": {"filename": "a.pdf", "file_data": data}}]}]
    ocr = chat(client, messages=messages, max_tokens=5)
    assert ocr["usage"]["prompt_tokens"] == 5 + 1500
    assert ocr["usage"]["cost"] == 1505 * MINI_IN + 5 * MINI_OUT + 2 * D("0.002")
    text = chat(client, messages=messages, max_tokens=5, plugins=[{"id": "file-parser", "pdf": {"engine": "pdf-text"}}])
    assert text["usage"]["cost"] == 1505 * MINI_IN + 5 * MINI_OUT


def test_prompt_over_the_context_length_is_refused(client):
    chat(client, 400, model="google/gemini-2.5-flash-image-preview",
         messages=[{"role": "user", "content": "x" * 4 * 32768}])


def test_a_newly_listed_model_is_served(client):
    chat(client, 400, model="newlab/model-1")
    resp = client.post("/_control/models", json={"id": "newlab/model-1", "context_length": 1000, "architecture": {"output_modalities": ["text"]},
                                                  "pricing": {"prompt": "0.000001", "completion": "0.000002"}})
    assert resp.status_code == 200
    listed = json.loads(client.get("/api/v1/models", headers=AUTH).data)["data"]
    assert "newlab/model-1" in [m["id"] for m in listed]
    assert chat(client, model="newlab/model-1")["usage"]["cost"] == 7 * D("0.000001") + 17 * D("0.000002")
