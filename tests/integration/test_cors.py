"""CORS as a browser on another origin sees it, and the Hosting rewrite's `/api` prefix."""
from __future__ import annotations

EXPOSED = {"x-usage-recorded", "x-generation-id", "retry-after", "x-tokenledger-overhead-ms",
           "x-tokenledger-downgraded"}
ORIGIN = "http://elsewhere.example:3000"


def exposed(response) -> set[str]:
    return {h.strip().lower() for h in response.headers.get("Access-Control-Expose-Headers", "").split(",") if h.strip()}


def test_preflight_allows_the_chat_call_from_another_origin(api):
    r = api.request("OPTIONS", "/v1/chat/completions", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status_code in (200, 204)
    assert r.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert "POST" in r.headers["Access-Control-Allow-Methods"].upper()
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed


def test_chat_answer_exposes_the_headers_a_page_reads(api, user, standin):
    r = api.request("POST", "/v1/chat/completions", user, headers={"Origin": ORIGIN}, json={
        "model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 50})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert exposed(r) == EXPOSED
    assert r.headers["X-Usage-Recorded"] == "true"


def test_error_answers_expose_them_too(api):
    r = api.request("GET", "/v1/usage", headers={"Origin": ORIGIN})
    assert r.status_code == 401
    assert exposed(r) == EXPOSED


def test_hosting_rewrite_path_reaches_the_same_routes(api, user):
    # Hosting rewrites /api/** to the function with the path kept: /api/v1/models.
    direct = api.request("GET", "/v1/models", user)
    rewritten = api.request("GET", "/api/v1/models", user)
    assert rewritten.status_code == direct.status_code == 200
    assert rewritten.json()["data"] == direct.json()["data"]
