"""OpenRouter's error statuses -> what the app user gets (openrouter.map_status_error).

OpenRouter documents (docs/api-reference/errors): 400 bad request, 401 invalid credentials,
402 insufficient credits, 403 moderation, 408 timeout, 429 rate limited, 502 model down or
invalid response, 503 no provider available. The expected statuses and codes below are the
README's error table, written out, not read from the code.
"""
from __future__ import annotations

import httpx
import openai
import pytest

from tokenledger.openrouter import map_status_error


def status_error(status: int, message: str = "details here", headers: dict | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://openrouter.ai/api/v1/chat/completions")
    response = httpx.Response(status, request=request, headers=headers or {},
                              json={"error": {"code": status, "message": message}})
    return openai.APIStatusError(f"Error code: {status}", response=response,
                                 body={"error": {"code": status, "message": message}})


@pytest.mark.parametrize(
    "upstream, status, code, operator",
    [
        (400, 400, "upstream_bad_request", False),
        (401, 502, "upstream_unavailable", True),  # the operator's key: not the user's fault
        (402, 503, "upstream_unavailable", True),  # the operator's credits
        (403, 403, "content_flagged", False),
        (408, 504, "upstream_timeout", False),
        (413, 413, "payload_too_large", False),
        (422, 400, "upstream_bad_request", False),
        (429, 429, "rate_limited", False),
        (500, 502, "upstream_error", False),
        (502, 502, "upstream_error", False),
        (503, 503, "upstream_unavailable", False),
        (504, 504, "upstream_timeout", False),
        (524, 504, "upstream_timeout", False),
    ],
)
def test_each_documented_status_maps_to_the_readme_answer(upstream, status, code, operator):
    error = map_status_error(status_error(upstream))
    assert (error.status, error.code, error.upstream_status, error.operator_problem) == (status, code, upstream, operator)


def test_messages_pass_openrouters_reason_on_except_for_operator_problems():
    assert map_status_error(status_error(400, "messages: too long")).message == (
        "OpenRouter rejected the request: messages: too long")
    assert map_status_error(status_error(403, "flagged: violence")).message == (
        "The request was refused by moderation: flagged: violence")
    # A key or credit problem is the operator's business: its detail is logged, never shown.
    shown = map_status_error(status_error(401, "Invalid API key sk-or-v1-abc")).message
    assert shown == "The AI service is unavailable right now; the operator has been notified."


def test_rate_limit_keeps_retry_after_and_long_messages_are_cut():
    assert map_status_error(status_error(429, headers={"Retry-After": "17"})).retry_after == "17"
    assert map_status_error(status_error(429)).retry_after is None
    error = map_status_error(status_error(502, "x" * 2000))
    assert error.message == "The AI service failed: " + "x" * 500
