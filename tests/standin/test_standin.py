"""Tests for the local OpenRouter stand-in (scripts/openrouter_standin.py).

Money is compared as exact Decimals: responses are parsed with parse_float=Decimal,
and expected costs are written out from the catalog prices so a reader can check
the arithmetic by hand.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import httpx
import pytest

from scripts.standin.app import create_app

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

KEY = "sk-or-v1-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = "/api/v1/chat/completions"
GEN_ID = re.compile(r"^gen-\d+-[A-Za-z0-9]{20}$")

# Catalog prices (USD per token), restated here on purpose: the test is a second
# reading of the spec, not a copy of the server's numbers.
MINI_IN, MINI_OUT, MINI_READ = D("0.00000015"), D("0.0000006"), D("0.000000075")


def loads(data: bytes | str):
    return json.loads(data, parse_float=D)


def tok(text: str) -> int:
    """Prompt tokens of one message with this text."""
    return 4 + math.ceil(len(text) / 4)


@pytest.fixture
def app():
    return create_app(api_key=KEY)


@pytest.fixture
def client(app):
    return app.test_client()


def chat(client, expect: int = 200, headers: dict | None = None, **body):
    body.setdefault("model", "openai/gpt-4o-mini")
    body.setdefault("messages", [{"role": "user", "content": "Hello world"}])
    resp = client.post(CHAT, json=body, headers=AUTH if headers is None else headers)
    assert resp.status_code == expect, resp.data
    return loads(resp.data), resp


def script(client, *responses, user=None):
    resp = client.post("/_control/script", json={"user": user, "responses": list(responses)})
    assert resp.status_code == 200, resp.data


def config(client, **settings):
    resp = client.post("/_control/config", json=settings)
    assert resp.status_code == 200, resp.data


def generation(client, gen_id: str, expect: int = 200):
    resp = client.get(f"/api/v1/generation?id={gen_id}", headers=AUTH)
    assert resp.status_code == expect, resp.data
    return loads(resp.data)


def sse(resp) -> list[str]:
    return [line for line in resp.get_data(as_text=True).split("\n") if line]


def data_chunks(lines: list[str]) -> list[dict]:
    return [loads(line[6:]) for line in lines if line.startswith("data: {")]


# -- cost maths ------------------------------------------------------------------


def test_plain_call_shape_and_exact_cost(client):
    body, resp = chat(client, user="alice")
    # "Hello world": 4 + ceil(11/4) = 7 prompt; 16 + 11//8 = 17 completion.
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (7, 17, 24)
    expected = 7 * MINI_IN + 17 * MINI_OUT
    assert expected == D("0.00001125")
    assert usage["cost"] == expected
    assert '"cost":0.00001125' in resp.get_data(as_text=True)  # exact digits, not float noise
    assert usage["is_byok"] is False
    assert usage["cost_details"] == {
        "upstream_inference_cost": expected,
        "upstream_inference_prompt_cost": 7 * MINI_IN,
        "upstream_inference_completions_cost": 17 * MINI_OUT,
    }
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}
    assert GEN_ID.match(body["id"]) and resp.headers["X-Generation-Id"] == body["id"]
    assert (body["provider"], body["model"], body["object"]) == ("OpenAI", "openai/gpt-4o-mini", "chat.completion")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Echo: Hello world", "refusal": None}
    assert choice["finish_reason"] == choice["native_finish_reason"] == "stop"
    record = generation(client, body["id"])["data"]
    assert record["total_cost"] == record["usage"] == usage["cost"]
    assert record["external_user"] == "alice" and record["streamed"] is False


def test_openai_style_cache_read_on_repeated_prefix(client):
    system = {"role": "system", "content": "s" * 400}  # 104 tokens >= 64
    msgs = [system, {"role": "user", "content": "hi"}]
    first, _ = chat(client, messages=msgs)
    second, _ = chat(client, messages=msgs)
    prompt = tok("s" * 400) + tok("hi")
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert first["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 0  # no write price
    assert first["usage"]["cost"] == prompt * MINI_IN + 16 * MINI_OUT
    assert second["usage"]["prompt_tokens"] == prompt  # cached tokens stay inside prompt_tokens
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == 104
    assert second["usage"]["cost"] == 5 * MINI_IN + 104 * MINI_READ + 16 * MINI_OUT == D("0.00001815")


def test_anthropic_cache_write_then_read(client):
    msgs = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "hi"}]
    first, _ = chat(client, model="anthropic/claude-3.5-haiku", messages=msgs)
    second, _ = chat(client, model="anthropic/claude-3.5-haiku", messages=msgs)
    assert first["usage"]["prompt_tokens_details"]["cache_write_tokens"] == 104
    assert first["usage"]["cost"] == 5 * D("0.0000008") + 104 * D("0.000001") + 16 * D("0.000004") == D("0.000172")
    assert second["usage"]["prompt_tokens_details"] == {"cached_tokens": 104, "cache_write_tokens": 0, "audio_tokens": 0}
    assert second["usage"]["cost"] == 5 * D("0.0000008") + 104 * D("0.00000008") + 16 * D("0.000004")
    assert generation(client, second["id"])["data"]["cache_discount"] == 104 * (D("0.0000008") - D("0.00000008"))
    assert first["choices"][0]["native_finish_reason"] == "end_turn"


def test_cache_needs_min_prefix_and_is_per_model(client):
    short = [{"role": "system", "content": "short"}, {"role": "user", "content": "hi"}]
    chat(client, messages=short)
    again, _ = chat(client, messages=short)
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    long = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "hi"}]
    chat(client, model="openai/gpt-4o-mini", messages=long)
    other, _ = chat(client, model="openai/gpt-4o", messages=long)
    assert other["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    config(client, cache_min_tokens=5)
    chat(client, messages=short)
    now_cached, _ = chat(client, messages=short)
    assert now_cached["usage"]["prompt_tokens_details"]["cached_tokens"] == tok("short")


def test_reasoning_tokens_inside_completion(client):
    text = "Hello world how are you today"  # 29 chars
    body, _ = chat(client, model="deepseek/deepseek-r1", messages=[{"role": "user", "content": text}])
    usage = body["usage"]
    assert usage["completion_tokens"] == 16 + 29 // 8 == 19
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 9
    assert usage["cost"] == 12 * D("0.0000004") + 10 * D("0.000002") + 9 * D("0.000002") == D("0.0000428")
    assert body["provider"] == "DeepInfra"


def test_internal_reasoning_price_and_custom_catalog(tmp_path):
    catalog = {"data": [
        {"id": "acme/thinker", "name": "Thinker", "architecture": {"output_modalities": ["text"]},
         "pricing": {"prompt": "0.000001", "completion": "0.000002", "internal_reasoning": "0.000005"}},
        {"id": "acme/r1-lite", "name": "R1 lite", "architecture": {"output_modalities": ["text"]},
         "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
    ]}
    path = tmp_path / "models.json"
    path.write_text(json.dumps(catalog))
    client = create_app(api_key=KEY, models_path=str(path)).test_client()
    body, _ = chat(client, model="acme/thinker")  # 7 prompt, 17 completion of which 8 reasoning
    assert body["usage"]["cost"] == 7 * D("0.000001") + 9 * D("0.000002") + 8 * D("0.000005")
    body, _ = chat(client, model="acme/r1-lite")  # reasoning by name, priced as completion
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 8
    assert body["usage"]["cost"] == 7 * D("0.000001") + 17 * D("0.000002")
    assert body["provider"] == "Acme"
    chat(client, expect=400, model="openai/gpt-4o-mini")


def test_per_request_price(client):
    body, _ = chat(client, model="perplexity/sonar")
    assert body["usage"]["cost"] == 7 * D("0.000001") + 17 * D("0.000001") + D("0.005") == D("0.005024")


def test_discount(client):
    body, _ = chat(client, model="mistralai/mistral-small-3.2-24b-instruct")
    assert body["usage"]["cost"] == (7 * D("0.0000001") + 17 * D("0.0000003")) * D("0.8") == D("0.00000464")


def test_image_input_billed_per_image(client):
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    body, _ = chat(client, model="google/gemini-2.5-flash", messages=[{"role": "user", "content": content}])
    # The image is prompt tokens too, beside its per-image price: Gemini counts 258 per 768-px tile,
    # and an image the test does not size is 1,024 x 1,024 (2 x 2 tiles).
    assert body["usage"]["prompt_tokens"] == tok("What is this?") + 4 * 258 == 1040
    assert body["usage"]["cost"] == 1040 * D("0.0000003") + 17 * D("0.0000025") + D("0.001238")
    assert body["choices"][0]["native_finish_reason"] == "STOP"


def test_free_models_cost_zero(client):
    body, _ = chat(client, model="deepseek/deepseek-chat-v3-0324:free")
    assert body["usage"]["cost"] == 0 and body["provider"] == "Chutes"


def test_router_models_report_and_price_the_served_model(client):
    auto, _ = chat(client, model="openrouter/auto")
    assert auto["model"] == "openai/gpt-4o-mini"
    assert auto["usage"]["cost"] == D("0.00001125")
    assert generation(client, auto["id"])["data"]["model"] == "openai/gpt-4o-mini"
    free, _ = chat(client, model="openrouter/free")
    assert free["model"] == "meta-llama/llama-3.3-70b-instruct:free"
    assert free["usage"]["cost"] == 0


def test_max_tokens_truncates_with_length(client):
    body, _ = chat(client, max_tokens=5)
    assert body["usage"]["completion_tokens"] == 5
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["cost"] == 7 * MINI_IN + 5 * MINI_OUT


def test_bad_requests(client):
    body, _ = chat(client, expect=400, model="nope/not-a-model")
    assert body == {"error": {"code": 400, "message": "nope/not-a-model is not a valid model ID"}}
    body, _ = chat(client, expect=400, messages=[])
    assert body["error"]["code"] == 400
    resp = client.post(CHAT, json={"model": "openai/gpt-4o-mini"}, headers=AUTH)
    assert resp.status_code == 400
    assert loads(client.get("/api/v1/generation?id=gen-nope", headers=AUTH).data) == {
        "error": {"code": 404, "message": "Generation not found"}}


# -- streaming --------------------------------------------------------------------


def test_stream_shape(client):
    plain, _ = chat(client, messages=[{"role": "user", "content": "stream me please"}])
    resp = client.post(CHAT, headers=AUTH, json={
        "model": "openai/gpt-4o-mini", "stream": True,
        "messages": [{"role": "user", "content": "stream me please"}]})
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    lines = sse(resp)
    assert lines[0] == ": OPENROUTER PROCESSING"
    assert lines[-1] == "data: [DONE]"
    chunks = data_chunks(lines)
    assert {c["id"] for c in chunks} == {resp.headers["X-Generation-Id"]}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    *content_chunks, finish, usage_chunk = chunks
    assert "".join(c["choices"][0]["delta"]["content"] for c in content_chunks) == plain["choices"][0]["message"]["content"]
    assert len(content_chunks) >= 3  # arrives piecewise
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["cost"] == plain["usage"]["cost"]
    record = generation(client, resp.headers["X-Generation-Id"])["data"]
    assert record["streamed"] is True and record["total_cost"] == plain["usage"]["cost"]


def test_stream_error_after_bills_tokens_so_far(client):
    script(client, {"stream_error_after": 2})
    text = "Hello world how are you"  # answer "Echo: Hello world how are you" = 6 pieces
    resp = client.post(CHAT, headers=AUTH, json={
        "model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": text}]})
    assert resp.status_code == 200
    lines = sse(resp)
    assert lines[-1] == "data: [DONE]"
    chunks = data_chunks(lines)
    assert len(chunks) == 3
    err = chunks[-1]
    assert err["error"]["code"] == 502
    assert err["choices"] == [{"index": 0, "delta": {}, "finish_reason": "error", "native_finish_reason": "error"}]
    assert not any("usage" in c for c in chunks)
    record = generation(client, err["id"])["data"]
    billed = (16 + len(text) // 8) * 2 // 6  # 18 tokens, 2 of 6 pieces sent
    assert record["tokens_completion"] == billed == 6
    assert record["finish_reason"] == "error"
    assert record["total_cost"] == tok(text) * MINI_IN + billed * MINI_OUT


def test_stream_no_usage_still_records_full_cost(client):
    script(client, {"stream_no_usage": True})
    resp = client.post(CHAT, headers=AUTH, json={"model": "openai/gpt-4o-mini", "stream": True,
                                                 "messages": [{"role": "user", "content": "Hello world"}]})
    lines = sse(resp)
    assert lines[-1] == "data: [DONE]"
    assert not any("usage" in c for c in data_chunks(lines))
    assert generation(client, resp.headers["X-Generation-Id"])["data"]["total_cost"] == D("0.00001125")


# -- scripted faults ----------------------------------------------------------------


def test_scripted_error_is_one_shot_with_retry_after(client):
    script(client, {"status": 429, "message": "slow down", "retry_after": 7, "error_type": "rate_limit_exceeded"})
    body, resp = chat(client, expect=429)
    assert body == {"error": {"code": 429, "message": "slow down", "metadata": {"error_type": "rate_limit_exceeded"}}}
    assert resp.headers["Retry-After"] == "7"
    chat(client)  # consumed: next call succeeds
    assert loads(client.get("/_control/generations").data)["generations"].__len__() == 1


def test_scripts_target_a_user(client):
    script(client, {"status": 402}, user="alice")
    chat(client, user="bob")
    body, _ = chat(client, expect=402, user="alice")
    assert body["error"]["code"] == 402 and body["error"]["message"]
    script(client, {"status": 503})  # null user: any caller
    chat(client, expect=503, user="carol")


def test_omit_cost_and_cost_null_keep_the_real_record(client):
    script(client, {"omit_cost": True}, {"cost_null": True})
    body, _ = chat(client)
    assert "cost" not in body["usage"] and "cost_details" not in body["usage"]
    assert generation(client, body["id"])["data"]["total_cost"] == D("0.00001125")
    body, _ = chat(client)
    assert body["usage"]["cost"] is None
    assert generation(client, body["id"])["data"]["total_cost"] == D("0.00001125")


def test_free_model_that_billed(client):
    script(client, {"cost": "0.0042"})
    body, _ = chat(client, model="meta-llama/llama-3.3-70b-instruct:free")
    assert body["usage"]["cost"] == D("0.0042")
    assert generation(client, body["id"])["data"]["total_cost"] == D("0.0042")
    assert loads(client.get("/api/v1/key", headers=AUTH).data)["data"]["usage"] == D("0.0042")


def test_served_model_provider_and_usage_overrides(client):
    script(client, {"served_model": "openai/gpt-4o", "provider": "Azure"},
           {"usage": {"cached_tokens": 3}})
    body, _ = chat(client)
    assert (body["model"], body["provider"]) == ("openai/gpt-4o", "Azure")
    assert body["usage"]["cost"] == 7 * D("0.0000025") + 17 * D("0.00001")
    body, _ = chat(client)
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 3
    assert body["usage"]["cost"] == 4 * MINI_IN + 3 * MINI_READ + 17 * MINI_OUT


def test_byok_fee_and_key_byok_usage(client):
    script(client, {"byok": True})
    body, _ = chat(client)
    upstream = D("0.00001125")
    assert body["usage"]["is_byok"] is True
    assert body["usage"]["cost"] == upstream * D("0.05")
    assert body["usage"]["cost_details"]["upstream_inference_cost"] == upstream
    record = generation(client, body["id"])["data"]
    assert (record["is_byok"], record["total_cost"], record["upstream_inference_cost"]) == (True, upstream * D("0.05"), upstream)
    key = loads(client.get("/api/v1/key", headers=AUTH).data)["data"]
    assert key["usage"] == upstream * D("0.05") and key["byok_usage"] == upstream


def test_latency(client):
    script(client, {"latency_ms": 120})
    start = time.monotonic()
    chat(client)
    assert time.monotonic() - start >= 0.12


def test_drop_connection_in_process(client):
    script(client, {"drop_connection": True})
    with pytest.raises(ConnectionError):
        client.post(CHAT, headers=AUTH, json={"model": "openai/gpt-4o-mini",
                                              "messages": [{"role": "user", "content": "x"}]})


def test_control_validation(client):
    assert client.post("/_control/config", json={"latency": 5}).status_code == 400
    assert client.post("/_control/script", json={"responses": [{"stauts": 500}]}).status_code == 400


# -- generation, key, models, auth, control -----------------------------------------


def test_generation_404_until_delay_passes(client):
    config(client, generation_delay_s=0.2)
    body, _ = chat(client)
    generation(client, body["id"], expect=404)
    time.sleep(0.25)
    record = generation(client, body["id"])["data"]
    expected_fields = {
        "id", "total_cost", "usage", "cache_discount", "upstream_inference_cost", "is_byok", "model",
        "provider_name", "streamed", "cancelled", "finish_reason", "latency", "generation_time",
        "tokens_prompt", "tokens_completion", "native_tokens_prompt", "native_tokens_completion",
        "native_tokens_reasoning", "native_tokens_cached", "external_user", "created_at"}
    assert expected_fields <= set(record)
    assert (record["tokens_prompt"], record["tokens_completion"], record["cancelled"]) == (7, 17, False)


def test_key_usage_sums_generations_plus_offset(client):
    a, _ = chat(client)
    b, _ = chat(client, model="perplexity/sonar")
    key = loads(client.get("/api/v1/key", headers=AUTH).data)["data"]
    total = a["usage"]["cost"] + b["usage"]["cost"]
    assert key["usage"] == key["usage_daily"] == key["usage_monthly"] == total
    assert (key["label"], key["limit"], key["is_free_tier"], key["byok_usage"]) == ("standin", None, False, 0)
    config(client, key_usage_offset=1.5)
    assert loads(client.get("/api/v1/key", headers=AUTH).data)["data"]["usage"] == total + D("1.5")


def test_models_listing_filter_and_paging(client):
    default = loads(client.get("/api/v1/models", headers=AUTH).data)["data"]
    everything = loads(client.get("/api/v1/models?output_modalities=all", headers=AUTH).data)["data"]
    ids = [m["id"] for m in default]
    assert "google/gemini-2.5-flash-image-preview" not in ids
    assert "google/gemini-2.5-flash-image-preview" in [m["id"] for m in everything]
    assert len(everything) == len(default) + 1
    page = loads(client.get("/api/v1/models?offset=2&limit=3", headers=AUTH).data)["data"]
    assert [m["id"] for m in page] == ids[2:5]
    mini = next(m for m in default if m["id"] == "openai/gpt-4o-mini")
    assert mini["pricing"] == {"prompt": "0.00000015", "completion": "0.0000006", "input_cache_read": "0.000000075"}
    assert mini["top_provider"] == {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": True}
    for model in everything:
        assert {"id", "canonical_slug", "name", "created", "context_length", "architecture", "top_provider",
                "per_request_limits", "supported_parameters", "pricing"} <= set(model)
        assert all(isinstance(v, str) for k, v in model["pricing"].items() if k not in ("discount", "overrides"))
    assert next(m for m in default if m["id"] == "openrouter/auto")["pricing"]["prompt"] == "-1"
    assert client.get("/api/v1/models?limit=x", headers=AUTH).status_code == 400


def test_auth(app):
    client = app.test_client()
    for path in ("/api/v1/models", "/api/v1/key", "/api/v1/generation?id=x"):
        resp = client.get(path)
        assert resp.status_code == 401
        assert loads(resp.data) == {"error": {"code": 401, "message": "No auth credentials found"}}
    body, _ = chat(client, expect=401, headers={"Authorization": "Bearer wrong"})
    assert body == {"error": {"code": 401, "message": "Invalid API key"}}
    config(client, api_key="rotated")
    chat(client, expect=401)
    chat(client, headers={"Authorization": "Bearer rotated"})
    open_client = create_app().test_client()  # no key configured: any bearer works, none doesn't
    chat(open_client, headers={"Authorization": "Bearer anything"})
    chat(open_client, expect=401, headers={})


def test_request_log_redacts_authorization(client):
    chat(client, headers={**AUTH, "X-Title": "tokenledger", "HTTP-Referer": "https://example.test"}, user="u1")
    logged = loads(client.get("/_control/requests").data)["requests"][-1]
    assert logged["body"]["user"] == "u1"
    assert logged["headers"]["authorization"] == "[redacted]"
    assert logged["headers"]["x-title"] == "tokenledger"
    assert KEY not in json.dumps(logged)


def test_generations_filter_and_reset(client):
    chat(client, user="alice")
    chat(client, user="bob")
    records = loads(client.get("/_control/generations?user=alice").data)["generations"]
    assert [r["external_user"] for r in records] == ["alice"]
    script(client, {"status": 500})
    config(client, latency_ms=5000, api_key="other")
    assert client.post("/_control/reset").status_code == 200
    assert loads(client.get("/_control/generations").data)["generations"] == []
    assert loads(client.get("/_control/requests").data)["requests"] == []
    chat(client)  # script gone, latency gone, original key restored


def test_unknown_route_error_shape(client):
    resp = client.get("/api/v1/nope", headers=AUTH)
    assert resp.status_code == 404 and loads(resp.data)["error"]["code"] == 404
    resp = client.get(CHAT, headers=AUTH)
    assert resp.status_code == 405 and loads(resp.data)["error"]["code"] == 405


def test_standin_is_independent_of_tokenledger():
    sources = [SCRIPTS / "openrouter_standin.py", *sorted((SCRIPTS / "standin").glob("*.py"))]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+tokenledger", text, re.M), path
        assert "/work/shared" not in text, path


# -- the real server (CLI entry point, sockets) ----------------------------------------


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "openrouter_standin.py"), "--host", "127.0.0.1", "--port", "0", "--key", KEY],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+)/api/v1", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture
def live(server):
    httpx.post(server + "/_control/reset")
    yield server
    httpx.post(server + "/_control/reset")  # also frees any stalled stream thread


def test_live_stream_arrives_incrementally(live):
    httpx.post(live + "/_control/config", json={"stream_chunk_delay_ms": 60})
    stamps = []
    body = {"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "one two three"}]}
    with httpx.stream("POST", live + "/api/v1" + "/chat/completions", json=body, headers=AUTH) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data:"):
                stamps.append((time.monotonic(), line))
    assert stamps[-1][1] == "data: [DONE]"
    assert stamps[-2][0] - stamps[0][0] >= 0.2  # spread out, not one buffered blob


def test_live_drop_connection(live):
    httpx.post(live + "/_control/script", json={"user": None, "responses": [{"drop_connection": True}]})
    with pytest.raises(httpx.TransportError):
        httpx.post(live + "/api/v1/chat/completions", headers=AUTH,
                   json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    ok = httpx.post(live + "/api/v1/chat/completions", headers=AUTH,
                    json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    assert ok.status_code == 200


def test_live_stall_then_client_gives_up(live):
    httpx.post(live + "/_control/script", json={"user": "u9", "responses": [{"stream_stall_after": 2}]})
    body = {"model": "openai/gpt-4o-mini", "stream": True, "user": "u9",
            "messages": [{"role": "user", "content": "Hello world"}]}
    got = []
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream("POST", live + "/api/v1/chat/completions", json=body, headers=AUTH,
                          timeout=httpx.Timeout(5, read=0.3)) as resp:
            for line in resp.iter_lines():
                got.append(line)
    assert sum(line.startswith("data: {") for line in got) == 2
    records = loads(httpx.get(live + "/_control/generations?user=u9").content)["generations"]
    assert len(records) == 1
    assert records[0]["cancelled"] is True
    assert records[0]["total_cost"] == D("0.00001125")  # the full answer is billed


def test_cost_floats_round_trip_to_the_exact_decimal(client):
    """A float-parsing client (the openai SDK) must see exactly the billed amount."""
    models = [m["id"] for m in loads(client.get("/api/v1/models", headers=AUTH).data)["data"]]
    for model in models:
        for length in (1, 37, 999, 12345):
            msgs = [{"role": "system", "content": "p" * length}, {"role": "user", "content": "q" * length}]
            for _ in range(2):  # second pass hits the prompt cache
                body, resp = chat(client, model=model, messages=msgs, max_tokens=1000)
                exact = body["usage"]["cost"]
                as_float = json.loads(resp.data)["usage"]["cost"]
                assert D(repr(as_float)) == exact, (model, length, exact, as_float)
