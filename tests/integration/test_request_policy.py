"""Every probe of issue 8 against the real stack, with the stand-in billing as OpenRouter
documents: each attack is refused before OpenRouter is called, or admitted with a reservation
the charge stays under. Worst cases are worked by hand from scripts/standin_models.json
(nano-dollars; the policy's rules are in tokenledger/policy/bounds.py):

  '{"role":"user","content":"Hello there"}' is 39 bytes + 8 = 47 prompt tokens reserved; the
  stand-in bills it as 4 + ceil(11 / 4) = 7 tokens and answers 16 + 11 // 8 = 17 tokens.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests

from .budget_helpers import open_reservations, put_budget, requests_from
from .ledger_checks import month_doc, nothing_written, rows_for
from .served_api import served_api

FREE = "meta-llama/llama-3.3-70b-instruct:free"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


def spent(db, uid: str) -> int:
    return (month_doc(db, uid, month()) or {}).get("cost_nanos", 0)


def error(response) -> dict:
    return response.json()["error"]


def test_free_model_with_a_paid_fallback_is_held_to_the_dollar_budget(api, admin, user, db, standin):
    put_budget(api, admin, user.uid, monthly_budget=0.01, enforce=True)
    # No max_tokens: gpt-4o can answer 8,192 tokens (the cap): 47 x 2,500 + 8,192 x 10,000
    refused = api.chat(user, model=FREE, models=["openai/gpt-4o"], messages=HELLO)
    assert refused.status_code == 402, refused.text
    assert error(refused)["estimated_cost"] == 0.0820375
    assert requests_from(standin, user.uid) == [] and rows_for(db, user.uid) == [] and spent(db, user.uid) == 0

    # Bounded: 47 x 2,500 + 50 x 10,000 = 617,500 reserved per call; the free model is down
    # every time, so gpt-4o serves and bills 7 x 2,500 + 17 x 10,000 = 187,500.
    standin.script([{"unavailable": [FREE]}] * 60, user=user.uid)
    statuses = []
    while not statuses or statuses[-1] == 200:
        response = api.chat(user, model=FREE, models=["openai/gpt-4o"], messages=HELLO, max_tokens=50)
        statuses.append(response.status_code)
    # admitted while spent + 617,500 <= 10,000,000: 51 calls, then 402
    assert statuses == [200] * 51 + [402]
    rows = rows_for(db, user.uid)
    assert len(rows) == 51 and {r["model"] for r in rows} == {"openai/gpt-4o"}
    assert {r["cost_nanos"] for r in rows} == {187_500}
    assert spent(db, user.uid) == 51 * 187_500 == 9_562_500 <= 10_000_000
    assert open_reservations(db, user.uid) == []


def test_web_search_is_refused_unless_the_app_enables_it(api, admin, user, db, standin):
    put_budget(api, admin, user.uid, monthly_budget=0.05, enforce=True)
    for body in ({"plugins": [{"id": "web"}]}, {"tools": [{"type": "openrouter:web_search"}]}, {"model": FREE + ":online"}):
        response = api.chat(user, **{"model": FREE, "messages": HELLO, **body})
        assert response.status_code == 400 and error(response)["code"] == "web_search_disabled", response.text
    assert requests_from(standin, user.uid) == [] and nothing_written(db, user.uid)


def test_web_search_on_a_free_model_is_priced_and_held_to_the_budget(api, admin, user, db, standin, tmp_path):
    put_budget(api, admin, user.uid, monthly_budget=0.05, enforce=True)
    with served_api(tmp_path / "function.log", TOKENLEDGER_ALLOW_WEB_SEARCH="true") as base:
        def call():
            return requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60,
                                 json={"model": FREE, "messages": HELLO, "plugins": [{"id": "web"}]})
        # 5 results x $0.004 = 20,000,000 reserved; the stand-in bills exactly that on the free model
        statuses = [call().status_code for _ in range(3)]
    assert statuses == [200, 200, 402]
    rows = rows_for(db, user.uid)
    assert [r["cost_nanos"] for r in rows] == [20_000_000, 20_000_000]
    assert {r["is_free"] for r in rows} == {False}
    assert spent(db, user.uid) == 40_000_000 <= 50_000_000
    sent = requests_from(standin, user.uid)  # the third call never reached OpenRouter
    assert [r["body"]["plugins"] for r in sent] == [[{"id": "web", "engine": "exa", "max_results": 5}]] * 2


def test_a_huge_tools_array_is_priced_by_its_size(api, admin, user, db, standin):
    tools = [{"type": "function", "function": {"name": f"t{i}", "description": "d" * 1580}} for i in range(120)]
    assert len(json.dumps(tools)) > 190_000
    put_budget(api, admin, user.uid, monthly_budget=0.01, enforce=True)
    # over gpt-4o-mini's 128,000-token context: 128,000 x 150 + 50 x 600 = 19,230,000
    refused = api.chat(user, messages=HELLO, tools=tools, max_tokens=50)
    assert refused.status_code == 402 and error(refused)["estimated_cost"] == 0.01923
    assert requests_from(standin, user.uid) == []
    put_budget(api, admin, user.uid, monthly_budget=0.05, enforce=True)
    admitted = api.chat(user, messages=HELLO, tools=tools, max_tokens=50)
    assert admitted.status_code == 200, admitted.text
    usage = admitted.json()["usage"]
    # the stand-in bills the tools by their real size: ceil(JSON length / 4) + 346
    tools_tokens = -(-len(json.dumps(tools, separators=(",", ":"))) // 4) + 346
    assert usage["prompt_tokens"] == 7 + tools_tokens
    charged = (7 + tools_tokens) * 150 + 17 * 600
    assert rows_for(db, user.uid)[0]["cost_nanos"] == spent(db, user.uid) == charged <= 19_230_000


def test_the_larger_completion_limit_is_reserved_and_sent(api, admin, user, db, standin):
    put_budget(api, admin, user.uid, monthly_budget=0.01, enforce=True)
    standin.script([{"usage": {"completion_tokens": 4000}}], user=user.uid)
    response = api.chat(user, messages=HELLO, max_tokens=1, max_completion_tokens=4000)
    assert response.status_code == 200, response.text
    sent = requests_from(standin, user.uid)[0]["body"]
    assert sent["max_tokens"] == 4000 and "max_completion_tokens" not in sent
    # reserved 47 x 150 + 4,000 x 600 = 2,407,050; billed 7 x 150 + 4,000 x 600 = 2,401,050
    assert rows_for(db, user.uid)[0]["cost_nanos"] == spent(db, user.uid) == 2_401_050


@pytest.mark.parametrize("body, code, field", [
    ({"top_p": 1e30}, "invalid_parameter", "top_p"),
    ({"temperature": 3}, "invalid_parameter", "temperature"),
    ({"presence_penalty": -2.5}, "invalid_parameter", "presence_penalty"),
    ({"feature": "__x__"}, "invalid_request", "feature"),
    ({"sneaky": True}, "unsupported_field", "sneaky"),
])
def test_input_that_cannot_be_stored_or_billed_safely_is_a_400_before_openrouter(api, user, db, standin, body,
                                                                                   code, field):
    response = api.chat(user, messages=HELLO, **body)
    assert response.status_code == 400, response.text
    assert (error(response)["code"], error(response)["field"]) == (code, field)
    assert requests_from(standin, user.uid) == [] and nothing_written(db, user.uid)


PREFIX = '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]'


@pytest.mark.parametrize("raw, code", [
    (PREFIX + ', "stop": ' + "[" * 40 + "]" * 40 + "}", "body_too_deep"),
    (PREFIX + ', "stop": ' + "[" * 50_000 + "]" * 50_000 + "}", "body_too_deep"),
    (PREFIX + ', "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": NaN}}}]}',
     "invalid_json"),
    (PREFIX + ', "response_format": {"type": "json_schema", "json_schema": {"max": 1e400}}}', "invalid_json"),
    (PREFIX.replace('"x"', '"\\udc00"') + "}", "invalid_json"),
])
def test_bodies_that_would_crash_later_are_a_400(api, user, db, standin, raw, code):
    response = api.request("POST", "/v1/chat/completions", user, data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and error(response)["code"] == code, response.text
    assert requests_from(standin, user.uid) == [] and nothing_written(db, user.uid)


def test_routing_variants_are_served_at_their_base_price(api, user, db, standin):
    nitro = api.chat(user, model="openai/gpt-4o-mini:nitro", messages=HELLO, max_tokens=50)
    floor = api.chat(user, model="anthropic/claude-sonnet-4:floor", messages=HELLO, max_tokens=50)
    assert (nitro.status_code, floor.status_code) == (200, 200), (nitro.text, floor.text)
    rows = {r["requested_model"]: r for r in rows_for(db, user.uid)}
    assert rows["openai/gpt-4o-mini:nitro"]["model"] == "openai/gpt-4o-mini"
    assert rows["openai/gpt-4o-mini:nitro"]["cost_nanos"] == 7 * 150 + 17 * 600 == 11_250
    # :floor landed on a tier 20% cheaper
    assert rows["anthropic/claude-sonnet-4:floor"]["cost_nanos"] == (7 * 3_000 + 17 * 15_000) * 8 // 10 == 220_800


def test_a_model_released_after_the_catalog_works_at_once(user, db, standin, stack, tmp_path):
    pricing = db.collection("model_pricing").document("current")
    stored = pricing.get().to_dict()
    for model_id in ("newlab/model-1", "newlab/model-2"):
        standin.http.post(f"{stack.standin_url}/_control/models", timeout=10, json={
            "id": model_id, "context_length": 32000, "architecture": {"output_modalities": ["text"]},
            "pricing": {"prompt": "0.000001", "completion": "0.000002"}}).raise_for_status()
    try:
        with served_api(tmp_path / "function.log", TOKENLEDGER_CATALOG_MISS_REFRESH_S="600") as base:
            def call(model):
                return requests.post(f"{base}/v1/chat/completions", headers=user.headers, timeout=60,
                                     json={"model": model, "messages": HELLO, "max_tokens": 50})
            first = call("newlab/model-1")
            assert first.status_code == 200, first.text
            assert rows_for(db, user.uid)[0]["cost_nanos"] == 7 * 1_000 + 17 * 2_000
            # the refreshed catalog knows model-2 too; an id no one serves is refused, and the
            # instance does not ask /models again within TOKENLEDGER_CATALOG_MISS_REFRESH_S
            assert call("newlab/model-2").status_code == 200
            missing = call("newlab/model-3")
            assert missing.status_code == 400 and error(missing)["code"] == "model_not_found"
    finally:
        if stored is not None:
            pricing.set(stored)  # the catalog other tests expect


def test_a_streamed_call_goes_through_the_same_policy(api, admin, user, db, standin):
    """LangChain streaming: max_completion_tokens + stream_options. The fallback attack is refused
    before any byte; the bounded call streams and is recorded at what the stand-in billed."""
    put_budget(api, admin, user.uid, monthly_budget=0.01, enforce=True)
    body = {"model": FREE, "models": ["openai/gpt-4o"], "messages": HELLO, "stream": True,
            "stream_options": {"include_usage": True}}
    refused = api.request("POST", "/v1/chat/completions", user, json=body)
    assert refused.status_code == 402 and error(refused)["estimated_cost"] == 0.0820375
    standin.script([{"unavailable": [FREE]}], user=user.uid)
    with api.http.post(f"{api.base}/v1/chat/completions", headers=user.headers, stream=True, timeout=60,
                       json={**body, "max_completion_tokens": 50}) as response:
        assert response.status_code == 200
        chunks = [json.loads(line[5:]) for line in response.iter_lines(decode_unicode=True)
                  if line.startswith("data:") and line[5:].strip() != "[DONE]"]
    assert chunks[-1]["usage"]["cost"] == 0.0001875  # gpt-4o served: 7 x 2,500 + 17 x 10,000 nanos
    sent = requests_from(standin, user.uid)
    assert len(sent) == 1 and sent[0]["body"]["max_tokens"] == 50 and sent[0]["body"]["stream_options"] == {
        "include_usage": True}
    assert rows_for(db, user.uid)[0]["cost_nanos"] == spent(db, user.uid) == 187_500
    assert open_reservations(db, user.uid) == []
