"""HTTP behaviour of the `api` function, in-process (see conftest.py): status codes and error
bodies, CORS, the upstream error mapping end to end, and the SSE relay as a client reads it."""
from __future__ import annotations

import json

import pytest

from .conftest import MAX_BODY, bearer

CHAT = "/v1/chat/completions"
HELLO = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}


def error(response) -> dict:
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    return body["error"]


# ---- 401 / 403 ------------------------------------------------------------------------------

ROUTES = [("POST", CHAT), ("GET", "/v1/models"), ("GET", "/v1/usage"), ("GET", "/v1/usage/export"),
          ("POST", "/v1/estimate"), ("GET", "/v1/budget"), ("GET", "/v1/alerts"),
          ("GET", "/v1/admin/top-users"), ("GET", "/v1/admin/totals"), ("GET", "/v1/admin/alerts"),
          ("GET", "/v1/admin/usage/u1"), ("GET", "/v1/admin/budgets/u1"), ("PUT", "/v1/admin/budgets/u1")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_wants_a_token(client, method, path):
    response = client.open(path, method=method, json=HELLO)
    assert response.status_code == 401
    assert error(response)["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="tokenledger"'


@pytest.mark.parametrize(
    "headers, code",
    [
        ({"Authorization": "Basic dXNlcjpwdw=="}, "unauthenticated"),
        ({"Authorization": "Bearer "}, "unauthenticated"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
        (bearer("u1", project="another-project"), "invalid_token"),
        (bearer("u1", expires_in=-60), "token_expired"),
    ],
)
def test_bad_tokens_are_401_with_their_reason(client, headers, code):
    response = client.get("/v1/models", headers=headers)
    assert (response.status_code, error(response)["code"]) == (401, code)


@pytest.mark.parametrize("path", ["/v1/admin/top-users", "/v1/admin/totals", "/v1/admin/budgets/u1"])
def test_admin_routes_refuse_users_without_the_claim(client, path):
    response = client.get(path, headers=bearer("u1"))
    assert (response.status_code, error(response)["code"]) == (403, "forbidden")


# ---- 404 / 405 / 413 / 400 ------------------------------------------------------------------

def test_unknown_route_is_a_json_404(client):
    response = client.get("/v1/nothing-here", headers=bearer())
    assert (response.status_code, error(response)) == (404, {
        "code": "not_found", "message": "No such route. See the README for the API."})


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(client):
    response = client.delete(CHAT, headers=bearer())
    assert (response.status_code, error(response)["code"]) == (405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_a_body_over_the_limit_is_413_and_never_reaches_openrouter(client, standin):
    big = {**HELLO, "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    response = client.post(CHAT, json=big, headers=bearer())
    assert (response.status_code, error(response)["code"]) == (413, "payload_too_large")
    assert standin.requests() == []


@pytest.mark.parametrize(
    "body, code",
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (json.dumps({"messages": HELLO["messages"]}).encode(), "invalid_request"),
        (json.dumps({**HELLO, "messages": []}).encode(), "invalid_request"),
        (json.dumps({**HELLO, "messages": [{"role": "robot", "content": "hi"}]}).encode(), "invalid_request"),
        (json.dumps({**HELLO, "max_tokens": 8193}).encode(), "max_tokens_too_large"),
        (json.dumps({**HELLO, "max_tokens": "10"}).encode(), "invalid_request"),
        (json.dumps({**HELLO, "feature": "has spaces"}).encode(), "invalid_request"),
        (json.dumps({**HELLO, "model": "google/gemini-2.5-flash"}).encode(), "model_not_allowed"),
        (json.dumps({**HELLO, "model": "openai/no-such-model"}).encode(), "model_not_found"),
    ],
)
def test_bad_chat_bodies_are_400_and_never_reach_openrouter(client, standin, recorded, body, code):
    response = client.post(CHAT, data=body, headers={**bearer(), "Content-Type": "application/json"})
    assert (response.status_code, error(response)["code"]) == (400, code)
    assert standin.requests() == [] and recorded == []


@pytest.mark.parametrize(
    "path, code",
    [
        ("/v1/admin/top-users?limit=0", "invalid_limit"),
        ("/v1/admin/top-users?limit=101", "invalid_limit"),
        ("/v1/admin/top-users?limit=1.0", "invalid_limit"),
        ("/v1/admin/top-users?limit=", "invalid_limit"),
        ("/v1/admin/top-users?month=2026-1", "invalid_month"),
        ("/v1/admin/totals?month=2026-13", "invalid_month"),
        ("/v1/admin/alerts?month=November", "invalid_month"),
        ("/v1/admin/alerts?limit=many", "invalid_limit"),
        ("/v1/alerts?limit=0", "invalid_limit"),
        ("/v1/usage?granularity=week", "invalid_granularity"),
        ("/v1/usage?from=2026-02-30", "invalid_date"),
        ("/v1/usage?from=2026-11-20&to=2026-11-01", "invalid_range"),
        ("/v1/usage/export?format=xml", "invalid_format"),
    ],
)
def test_query_parameters_are_checked_the_same_way_on_every_route(client, path, code):
    response = client.get(path, headers=bearer("admin-1", admin=True))
    assert (response.status_code, error(response)["code"]) == (400, code)


def test_query_errors_say_what_the_parameter_must_look_like(client):
    for path in ("/v1/admin/top-users?limit=0", "/v1/alerts?limit=0"):  # one rule, one sentence
        assert error(client.get(path, headers=bearer("admin-1", admin=True)))["message"] == (
            "'limit' must be a whole number from 1 to 100.")
    assert error(client.get("/v1/admin/totals?month=2026-13", headers=bearer("a", admin=True)))["message"] == (
        "'month' must be a month as YYYY-MM, e.g. 2026-11.")


def test_a_user_cannot_ask_for_someone_elses_usage(client):
    response = client.get("/v1/usage?user=someone-else", headers=bearer("u1"))
    assert (response.status_code, error(response)["code"]) == (403, "forbidden")


# ---- CORS -------------------------------------------------------------------------------------

def test_preflight_allows_the_api_methods_and_headers(client):
    response = client.options(CHAT, headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "PUT", "DELETE"}
    assert set(response.headers["Access-Control-Allow-Headers"].split(", ")) == {"authorization", "content-type"}


def test_errors_carry_cors_headers_so_the_browser_app_can_read_them(client):
    response = client.get("/v1/models", headers={"Origin": "https://app.example.com"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


# ---- a chat call, plain ------------------------------------------------------------------------

def test_a_plain_call_answers_openrouters_body_and_is_recorded_once(client, standin, recorded):
    response = client.post(CHAT, json={**HELLO, "feature": "http-test"}, headers=bearer("u1"))
    assert response.status_code == 200
    body = response.get_json()
    [record] = recorded
    assert response.headers["X-Usage-Recorded"] == "true"
    assert response.headers["X-Generation-Id"] == body["id"] == record.generation_id
    assert body["budget"] is None  # no budget gate ran
    [sent] = standin.requests()
    assert sent["body"]["user"] == "u1" and "feature" not in sent["body"]  # our fields stay here
    assert (record.user_id, record.feature, record.cost_source) == ("u1", "http-test", "openrouter")
    assert record.prompt_tokens == body["usage"]["prompt_tokens"]
    assert record.cost_nanos == round(body["usage"]["cost"] * 1e9)


# ---- upstream errors, end to end --------------------------------------------------------------

@pytest.mark.parametrize(
    "behaviour, status, code",
    [
        ({"status": 400, "message": "bad"}, 400, "upstream_bad_request"),
        ({"status": 401, "message": "No auth credentials found"}, 502, "upstream_unavailable"),
        ({"status": 402, "message": "Insufficient credits"}, 503, "upstream_unavailable"),
        ({"status": 403, "message": "flagged"}, 403, "content_flagged"),
        ({"status": 408, "message": "timeout"}, 504, "upstream_timeout"),
        ({"status": 429, "message": "slow down", "retry_after": "7"}, 429, "rate_limited"),
        ({"status": 502, "message": "provider down"}, 502, "upstream_error"),
        ({"status": 503, "message": "no provider"}, 503, "upstream_unavailable"),
        ({"drop_connection": True}, 502, "upstream_unreachable"),
        ({"latency_ms": 2500}, 504, "upstream_timeout"),  # the fixture's timeout is 1 s
    ],
)
def test_upstream_failures_map_to_the_documented_answers_and_record_nothing(client, standin, recorded, behaviour,
                                                                               status, code):
    standin.script([behaviour], user="u1")
    response = client.post(CHAT, json=HELLO, headers=bearer("u1"))
    assert (response.status_code, error(response)["code"]) == (status, code)
    if code == "rate_limited":
        assert response.headers["Retry-After"] == "7"
    if "drop_connection" in behaviour or "latency_ms" in behaviour:
        # Sent, then lost: OpenRouter may have billed it, so it is recorded pending for reconcile.
        [record] = recorded
        assert (record.cost_source, record.user_id) == ("pending", "u1")
    else:
        assert recorded == []


# ---- the SSE relay, as a client reads it ------------------------------------------------------

def sse_data(response) -> list:
    """The data payloads of the stream, in order (JSON parsed, [DONE] as the string)."""
    out = []
    for block in response.get_data(as_text=True).split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                payload = line[len("data: "):]
                out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_a_streamed_call_relays_chunks_then_usage_then_done(client, standin, recorded):
    response = client.post(CHAT, json={**HELLO, "stream": True}, headers=bearer("u1"))
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = sse_data(response)
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["cost"] > 0
    content = [e for e in events[:-2]]
    assert content and all(e["choices"][0]["delta"].get("content") is not None or e["choices"][0]["finish_reason"]
                           for e in content)
    [record] = recorded
    assert response.headers["X-Generation-Id"] == record.generation_id == usage_chunk["id"]
    assert (record.status, record.cost_source) == ("ok", "openrouter")
    assert record.completion_tokens == usage_chunk["usage"]["completion_tokens"]


def test_a_mid_stream_error_reaches_the_client_as_an_error_chunk_before_done(client, standin, recorded):
    standin.script([{"stream_error_after": 2, "status": 502, "message": "Provider returned error"}], user="u1")
    response = client.post(CHAT, json={**HELLO, "stream": True}, headers=bearer("u1"))
    assert response.status_code == 200
    events = sse_data(response)
    assert events[-1] == "[DONE]"
    errors = [e for e in events[:-1] if "error" in e]
    assert len(errors) == 1 and errors[0]["error"]["message"] == "Provider returned error"
    assert errors[0]["choices"][0]["finish_reason"] == "error"
    assert events.index(errors[0]) >= 2  # after the chunks that were already streamed
    [record] = recorded
    assert record.status == "error"


def test_a_stream_refused_before_its_first_byte_is_a_plain_json_error(client, standin, recorded):
    standin.script([{"status": 429, "message": "slow down", "retry_after": "3"}], user="u1")
    response = client.post(CHAT, json={**HELLO, "stream": True}, headers=bearer("u1"))
    assert (response.status_code, error(response)["code"]) == (429, "rate_limited")
    assert response.headers["Retry-After"] == "3" and recorded == []
