"""The bounds of a call before it is made (pure): prompt tokens, completion tokens, and the
worst-case cost at the dearest price any candidate model may bill.

  prompt bound     = JSON bytes of the messages, tools and response format (a byte-level
                     tokenizer never makes more than one token of a byte)
                     + 8 tokens per message + 500 when tools are sent (providers wrap them)
                     + images x image allowance + web results x result allowance,
                     capped at the largest context any candidate has (OpenRouter refuses longer
                     prompts); a call with files is bounded by that context alone (a parsed PDF
                     can hold more text than its bytes)
  completion bound = min(cap, the larger of max_tokens / max_completion_tokens, model limit);
                     sent upstream as max_tokens, reasoning included
  worst case       = prompt bound x dearest input price (cache writes; 1-hour ones when a part asks for them;
                     every price the highest any conditional override of the model sets)
                     + completion bound x dearest output price (reasoning included)
                     + dearest per-request price + images x dearest per-image price
                     + web results x price per result; no discount (it may end any time)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from tokenledger import money
from tokenledger.money import ZERO
from tokenledger.policy.errors import PolicyError
from tokenledger.pricing.prices import ModelPrice

MESSAGE_OVERHEAD_TOKENS = 8
TOOLS_OVERHEAD_TOKENS = 500
WEB_RESULT_PROMPT_TOKENS = 1000  # one result's title, URL and content as the model reads it
WEB_SEARCH_PROMPT_TOKENS = 100  # the framing OpenRouter adds around each search's results


@dataclass(frozen=True)
class Dearest:
    """Per price field, the highest any candidate bills; limits the largest any allows."""

    prompt: Decimal
    completion: Decimal
    request: Decimal
    image: Decimal
    context_length: int | None  # None: some candidate does not say
    max_completion_tokens: int | None

    @property
    def is_free(self) -> bool:
        return self.prompt == self.completion == self.request == self.image == ZERO


def _largest(values: list[int | None]) -> int | None:
    return None if any(not value for value in values) else max(values)


def dearest(prices: tuple[ModelPrice, ...], one_hour_cache: bool = False) -> Dearest:
    """`one_hour_cache`: a part asks for the 1-hour cache, whose writes cost more (Anthropic 2x)."""
    return Dearest(
        prompt=max(max(p.ceiling("prompt"), p.ceiling("input_cache_write"),
                       p.ceiling("input_cache_write_1h") if one_hour_cache else ZERO)
                   for p in prices),
        completion=max(max(p.ceiling("completion"), p.ceiling("internal_reasoning")) for p in prices),
        request=max(p.ceiling("request") for p in prices),
        image=max(p.ceiling("image") for p in prices),
        context_length=_largest([p.context_length for p in prices]),
        max_completion_tokens=_largest([p.max_completion_tokens for p in prices]),
    )


def prompt_bound(text_bytes: int, messages: int, tools_bytes: int, images: int, image_tokens: int,
                 web_results: int, web_searches: int, files: int, context_length: int | None) -> int:
    if files:
        if context_length is None:
            raise PolicyError(400, "unsupported_content",
                              "messages: file parts need a model whose context length is known.", "messages")
        return context_length
    tokens = (text_bytes + MESSAGE_OVERHEAD_TOKENS * messages + tools_bytes
              + (TOOLS_OVERHEAD_TOKENS if tools_bytes else 0) + images * image_tokens
              + web_results * WEB_RESULT_PROMPT_TOKENS + web_searches * WEB_SEARCH_PROMPT_TOKENS)
    return tokens if context_length is None else min(tokens, context_length)


def completion_bound(requested: int | None, cap: int, model_limit: int | None) -> int:
    bound = requested if requested is not None else cap
    return min(bound, model_limit) if model_limit else bound


def worst_case_nanos(top: Dearest, prompt_tokens: int, completion_tokens: int, images: int,
                     web_cost: Decimal) -> int:
    usd = (prompt_tokens * top.prompt + completion_tokens * top.completion + top.request
           + images * top.image + web_cost)
    # Round up: a reservation must never be below what it stands for.
    return int(math.ceil(usd * money.NANOS_PER_USD))
