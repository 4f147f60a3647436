"""Red-team probe of POST /v1/estimate: its `max_cost` is documented as "the same bound a budget
reservation uses", so an app can show it before a call or decide with it whether the call fits.
It must then be the chat call's own worst case (the request policy's), for the same body.

Worked by hand (see test_request_policy.py): '{"role":"user","content":"Hello there"}' is 39
bytes + 8 = 47 prompt tokens; gpt-4o: 2,500 / 10,000 nano-dollars per prompt / completion token.
"""
from __future__ import annotations

import pytest

from .budget_helpers import put_budget

FREE = "meta-llama/llama-3.3-70b-instruct:free"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def estimate(api, user, **body):
    return api.request("POST", "/v1/estimate", user, json=body)


def test_estimate_of_a_free_model_with_a_paid_fallback_is_the_paid_worst_case(api, admin, user):
    body = {"model": FREE, "models": ["openai/gpt-4o"], "messages": HELLO, "max_tokens": 50}
    shown = estimate(api, user, **body)
    assert shown.status_code == 200, shown.text
    # 47 x 2,500 + 50 x 10,000: what the chat call reserves, and refuses on a smaller budget
    assert (shown.json()["is_free"], shown.json()["max_cost_nanos"]) == (False, 617_500)
    put_budget(api, admin, user.uid, monthly_budget=0.0006, enforce=True)
    refused = api.chat(user, **body)
    assert refused.status_code == 402 and refused.json()["error"]["estimated_cost"] == 0.0006175


def test_estimate_reads_max_completion_tokens_as_the_chat_call_does(api, user):
    """LangChain sends max_completion_tokens, not max_tokens."""
    shown = estimate(api, user, model="openai/gpt-4o", messages=HELLO, max_completion_tokens=50)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["max_completion_tokens"], shown.json()["max_cost_nanos"]) == (50, 617_500)


def test_estimate_refuses_what_the_chat_call_refuses(api, user):
    shown = estimate(api, user, model=FREE, messages=HELLO, plugins=[{"id": "web"}])
    assert shown.status_code == 400 and shown.json()["error"]["code"] == "web_search_disabled", shown.text
