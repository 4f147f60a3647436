"""Attack: a price that rises between the catalog the policy priced a call with (kept up to
TOKENLEDGER_CATALOG_MAX_AGE_S, a day by default) and the call. The policy sends its ceiling as
provider.max_price, which OpenRouter documents for prompt, completion, request and image prices:
a rise of those is refused upstream, never billed past the reservation. max_price has no field for
internal_reasoning, cache writes or web_search: a rise of those is billed."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from scripts.devkit.ceiling_corpus import Corpus, SETTINGS, user
from tokenledger.policy import plan_call

CORPUS = Corpus()
LONGEST = {"usage": {"completion_tokens": 10**6}}


def bill_after_rise(body: dict, model: str, prices: dict) -> tuple[int, int | None]:
    """(reservation, what the stand-in bills once `prices` rose; None when it refused the call)."""
    plan = plan_call(body, CORPUS.catalog, SETTINGS)  # the catalog as fetched before the rise
    CORPUS.reset({model: prices})
    CORPUS.client.post("/_control/script", json={"user": None, "responses": [LONGEST]})
    resp = CORPUS.client.post("/api/v1/chat/completions", json={**plan.upstream_body, "user": "drift"},
                              headers={"Authorization": "Bearer sk-or-v1-corpus"})
    if resp.status_code != 200:
        assert resp.status_code == 404
        return plan.worst_case_nanos, None
    return plan.worst_case_nanos, Decimal(json.loads(resp.data, parse_float=Decimal)["usage"]["cost"]) * 10**9


@pytest.mark.parametrize("prices", [{"prompt": "0.0000015"}, {"completion": "0.000006"}, {"request": "0.01"}])
def test_a_rise_max_price_covers_is_refused_upstream_not_billed(prices):
    worst, charge = bill_after_rise({"model": "openai/gpt-4o-mini", "messages": user(), "max_tokens": 100},
                                    "openai/gpt-4o-mini", prices)
    assert charge is None

