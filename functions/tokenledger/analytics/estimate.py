"""What a call will cost before it is made, from the price catalog (pure: no I/O).

An estimate, never a charge: the prompt size is guessed generously from the characters
sent (usage.estimate_prompt_tokens), and the completion can be anything from nothing to
max_tokens. The low end is the prompt alone at the full prompt price; the high end is the
request policy's worst case when the route has it (exactly what a budget reservation holds),
else pricing.worst_case_cost.
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
    "This model routes to another model whose price is only known after the call; max_cost "
    "is the most any model it may route to can charge."
)


def call_estimate(price: ModelPrice, prompt_tokens: int, max_completion_tokens: int,
                  worst_nanos: int | None = None, is_free: bool | None = None) -> dict:
    """`worst_nanos` / `is_free`: the request policy's verdict on the whole body (fallbacks,
    routers, tools, web search), which the reservation of the same call uses."""
    low = None if price.variable else money.to_nanos(estimate_cost(price, TokenCounts(prompt=prompt_tokens)))
    high = worst_nanos
    if high is None and not price.variable:
        high = money.to_nanos(worst_case_cost(price, prompt_tokens, max_completion_tokens))
    return {
        "estimate": True,
        "model": price.model_id,
        "is_free": price.is_free if is_free is None else is_free,
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
