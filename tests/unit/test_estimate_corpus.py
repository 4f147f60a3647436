"""The catalog estimate against what OpenRouter charges, one documented case each.

The "charged" side is the stand-in's billing (scripts/standin/billing.py), written from
OpenRouter's published rules independently of tokenledger.pricing.prices: cache reads at the
cache-read price, cache writes at the write price (both inside prompt_tokens), reasoning as
completion (at internal_reasoning when listed), per-request and per-image prices, discount,
and the BYOK fee. Prices come from the same /models entries both sides read.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from scripts.standin.billing import Tokens, compute_cost
from scripts.standin.catalog import DEFAULT_MODELS_PATH, Prices
from tokenledger import money
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price, parse_model

BYOK_FEE = Decimal("0.05")
MODELS = {m["id"]: m for m in json.loads(DEFAULT_MODELS_PATH.read_text())["data"]}
# A model whose reasoning tokens cost more than its visible completion tokens.
MODELS["example/reasoner"] = {
    "id": "example/reasoner",
    "pricing": {"prompt": "0.000001", "completion": "0.000004", "internal_reasoning": "0.000008"},
}
FALLBACK = fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))

# (case, model, tokens, byok)
CORPUS = [
    ("plain", "openai/gpt-4o", Tokens(prompt=1200, completion=350), False),
    ("cache read (OpenAI 0.5x)", "openai/gpt-4o", Tokens(prompt=5000, completion=200, cached=4096), False),
    ("cache read (Anthropic 0.1x)", "anthropic/claude-sonnet-4", Tokens(prompt=9000, completion=400, cached=8000), False),
    ("cache write (Anthropic 1.25x)", "anthropic/claude-sonnet-4", Tokens(prompt=9000, completion=400, cache_write=8000), False),
    ("cache read + write", "anthropic/claude-3.5-haiku", Tokens(prompt=6000, completion=100, cached=3000, cache_write=2500), False),
    ("reasoning at internal_reasoning", "deepseek/deepseek-r1", Tokens(prompt=300, completion=2400, reasoning=2000), False),
    ("reasoning at its own price", "example/reasoner", Tokens(prompt=300, completion=2400, reasoning=2000), False),
    ("reasoning at the completion price", "openai/gpt-4o-mini", Tokens(prompt=300, completion=900, reasoning=600), False),
    ("per-request price", "perplexity/sonar", Tokens(prompt=40, completion=120), False),
    ("per-image price", "google/gemini-2.5-flash", Tokens(prompt=1500, completion=80, images=2), False),
    ("per-image, image model", "google/gemini-2.5-flash-image-preview", Tokens(prompt=20, completion=1300, images=1), False),
    ("discount", "mistralai/mistral-small-3.2-24b-instruct", Tokens(prompt=2200, completion=700), False),
    ("BYOK fee", "anthropic/claude-sonnet-4", Tokens(prompt=4000, completion=600, cached=2000), True),
    ("BYOK fee with discount", "mistralai/mistral-small-3.2-24b-instruct", Tokens(prompt=2200, completion=700), True),
]


def charged(model: str, tokens: Tokens, byok: bool) -> tuple[Decimal, Decimal]:
    """(cost charged to the account, upstream inference cost) as OpenRouter reports them."""
    upstream = compute_cost(Prices.from_pricing(MODELS[model]["pricing"]), tokens).total
    return (upstream * BYOK_FEE if byok else upstream), upstream


def documented_response(model: str, tokens: Tokens, byok: bool) -> dict:
    cost, upstream = charged(model, tokens, byok)
    return {
        "id": "gen-corpus",
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": tokens.prompt,
            "completion_tokens": tokens.completion,
            "total_tokens": tokens.prompt + tokens.completion,
            "prompt_tokens_details": {"cached_tokens": tokens.cached, "cache_write_tokens": tokens.cache_write},
            "completion_tokens_details": {"reasoning_tokens": tokens.reasoning},
            "cost": float(cost),  # JSON numbers arrive as floats
            "is_byok": byok,
            "cost_details": {"upstream_inference_cost": float(upstream)},
        },
    }


def record_for(model: str, tokens: Tokens, byok: bool):
    return build_record(
        documented_response(model, tokens, byok),
        CallFacts("u", model, "/v1/chat/completions", datetime(2026, 11, 1, tzinfo=timezone.utc), 1,
                  metadata={"images": tokens.images}),
        Pricing(parse_model(MODELS[model]), FALLBACK, BYOK_FEE),
    )


@pytest.mark.parametrize("case, model, tokens, byok", CORPUS, ids=[c[0] for c in CORPUS])
def test_estimate_is_within_one_percent_and_cost_of_record_is_exact(case, model, tokens, byok):
    cost, upstream = charged(model, tokens, byok)
    record = record_for(model, tokens, byok)
    charged_nanos = money.to_nanos(money.to_decimal(float(cost)))
    assert record.cost_nanos == charged_nanos and record.cost_source == "openrouter"
    assert abs(record.estimated_cost_nanos - charged_nanos) <= charged_nanos / 100, case
    if byok:
        assert record.upstream_cost_nanos == money.to_nanos(money.to_decimal(float(upstream)))


def test_the_corpus_catches_naive_pricing():
    """prompt_tokens x prompt price (ignoring cache, per-item prices, discount, BYOK) is more
    than 1% off on every case but those where no such rule applies: the corpus can tell a
    right estimate from a wrong one."""
    agree = set()
    for case, model, tokens, byok in CORPUS:
        price = parse_model(MODELS[model])
        naive = tokens.prompt * price.prompt + tokens.completion * price.completion
        cost, _ = charged(model, tokens, byok)
        if abs(naive - cost) <= cost / 100:
            agree.add(case)
    # Reasoning is billed at the completion price for both reasoning models here.
    assert agree == {"plain", "reasoning at internal_reasoning", "reasoning at the completion price"}


# The same cases worked out by hand from the prices on OpenRouter's model pages (USD per token:
# gpt-4o 2.5e-6 in / 1e-5 out / 1.25e-6 cache read; claude-sonnet-4 3e-6 / 1.5e-5 / 3e-7 read /
# 3.75e-6 write; claude-3.5-haiku 8e-7 / 4e-6 / 8e-8 read / 1e-6 write; deepseek-r1 4e-7 / 2e-6;
# gpt-4o-mini 1.5e-7 / 6e-7) and its billing rules: cached and cache-write tokens are part of
# prompt_tokens, reasoning tokens part of completion_tokens, BYOK pays 5% of the provider's bill.
# A second oracle beside the stand-in, so the stand-in is not the only reading of the rules.
BY_HAND = {
    "plain": "1200*0.0000025 + 350*0.00001",
    "cache read (OpenAI 0.5x)": "904*0.0000025 + 4096*0.00000125 + 200*0.00001",
    "cache read (Anthropic 0.1x)": "1000*0.000003 + 8000*0.0000003 + 400*0.000015",
    "cache write (Anthropic 1.25x)": "1000*0.000003 + 8000*0.00000375 + 400*0.000015",
    "cache read + write": "500*0.0000008 + 3000*0.00000008 + 2500*0.000001 + 100*0.000004",
    "reasoning at internal_reasoning": "300*0.0000004 + 2400*0.000002",
    "reasoning at its own price": "300*0.000001 + 400*0.000004 + 2000*0.000008",
    "reasoning at the completion price": "300*0.00000015 + 900*0.0000006",
    "BYOK fee": "0.05 * (2000*0.000003 + 2000*0.0000003 + 600*0.000015)",
}
BY_HAND_USD = {
    "plain": "0.0065", "cache read (OpenAI 0.5x)": "0.00938", "cache read (Anthropic 0.1x)": "0.0114",
    "cache write (Anthropic 1.25x)": "0.039", "cache read + write": "0.00354",
    "reasoning at internal_reasoning": "0.00492", "reasoning at its own price": "0.0179",
    "reasoning at the completion price": "0.000585", "BYOK fee": "0.00078",
}


@pytest.mark.parametrize("case", sorted(BY_HAND))
def test_charges_match_the_ones_worked_out_by_hand(case):
    _, model, tokens, byok = next(c for c in CORPUS if c[0] == case)
    expected = Decimal(BY_HAND_USD[case])
    assert expected == _evaluate(BY_HAND[case])  # the sum as written above
    assert charged(model, tokens, byok)[0] == expected  # the stand-in bills the same
    record = record_for(model, tokens, byok)
    assert record.cost_nanos == money.to_nanos(expected)
    assert abs(record.estimated_cost_nanos - money.to_nanos(expected)) <= money.to_nanos(expected) / 100


def _evaluate(expression: str) -> Decimal:
    """a*b + c*d (+ a leading factor * (...)) in exact decimals."""
    factor = Decimal(1)
    if "(" in expression:
        head, inner = expression.split("(", 1)
        factor, expression = Decimal(head.strip(" *")), inner.rstrip(")")
    return factor * sum((Decimal(a) * Decimal(b) for a, b in (term.strip().split("*") for term in expression.split("+"))),
                        Decimal(0))
