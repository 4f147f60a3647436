"""The stand-in honours provider.max_price as OpenRouter documents it (provider routing): an
endpoint whose listed prompt or completion price (USD per million tokens), request or image price
is above the request's max_price does not serve it; with no endpoint left the request fails
before generating and nothing is billed. gpt-4o-mini lists $0.15 / $0.60 per million."""
from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from scripts.devkit.standin_driver import AUTH, HELLO, test_client


@pytest.fixture
def client():
    return test_client()


def post(client, **body):
    body = {"model": "openai/gpt-4o-mini", "messages": HELLO, "max_tokens": 10, **body}
    return client.post("/api/v1/chat/completions", json=body, headers=AUTH)


def generations(client) -> list:
    return json.loads(client.get("/_control/generations").data)["generations"]


@pytest.mark.parametrize("limits", [{"prompt": 0.15, "completion": 0.6}, {"prompt": 0.15, "completion": 0.6,
                                    "request": 0, "image": 0}, {"completion": 1}, {}])
def test_a_max_price_at_or_above_the_listed_prices_is_served(client, limits):
    resp = post(client, provider={"max_price": limits})
    assert resp.status_code == 200
    assert json.loads(resp.data, parse_float=D)["usage"]["cost"] > 0


@pytest.mark.parametrize("limits, field", [({"prompt": 0.149}, "prompt"), ({"completion": 0.59}, "completion"),
                                           ({"prompt": 0.15, "request": 0}, None)])
def test_a_max_price_below_a_listed_price_is_refused_before_any_billing(client, limits, field):
    before = len(generations(client))
    resp = post(client, provider={"max_price": limits})
    if field is None:
        assert resp.status_code == 200
        return
    assert resp.status_code == 404
    assert f"max_price ({field})" in json.loads(resp.data)["error"]["message"]
    assert len(generations(client)) == before


def test_a_price_rise_after_the_caller_set_its_max_price_is_refused(client):
    client.post("/_control/pricing", json={"model": "openai/gpt-4o-mini", "pricing": {"prompt": "0.0000015"}})
    resp = post(client, provider={"max_price": {"prompt": 0.15, "completion": 0.6}})
    assert resp.status_code == 404 and generations(client) == []
