"""What a call will cost before it is made, from the price catalog (pure: no I/O).

An estimate, never a charge: the prompt size is guessed generously from the characters
sent (usage.estimate_prompt_tokens), and the completion can be anything from nothing to
max_tokens. The low end is the prompt alone at the full prompt price; the high end is
pricing.worst_case_cost, the same bound a budget reservation uses.
"""
from __future__ import annotations

from tokenledger import money
from tokenledger.pricing.prices import ModelPrice, TokenCounts, estimate_cost, worst_case_cost

NOTE = (
    "An estimate from the price catalog, not a charge: the prompt size is guessed from its "
    "length and the completion may use anything up to max_completion_tokens. The amount "
    "recorded is what OpenRouter bills."
)
VARIABLE_NOTE = (
    "This model routes to another model whose price is only known after the call; no "
    "cost range can be given in advance."
)


def call_estimate(price: ModelPrice, prompt_tokens: int, max_completion_tokens: int) -> dict:
    if price.variable:
        low = high = None
    else:
        low = money.to_nanos(estimate_cost(price, TokenCounts(prompt=prompt_tokens)))
        high = money.to_nanos(worst_case_cost(price, prompt_tokens, max_completion_tokens))
    return {
        "estimate": True,
        "model": price.model_id,
        "is_free": price.is_free,
        "variable_price": price.variable,
        "prompt_tokens_estimate": prompt_tokens,
        "max_completion_tokens": max_completion_tokens,
        "min_cost": None if low is None else money.usd_float(low),
        "max_cost": None if high is None else money.usd_float(high),
        "min_cost_nanos": low,
        "max_cost_nanos": high,
        "currency": "USD",
        "pricing": price.pricing_strings(),
        "note": VARIABLE_NOTE if price.variable else NOTE,
    }
