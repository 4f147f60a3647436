"""The bounds of a call before it is made (pure): prompt tokens, completion tokens, and the
worst-case cost at the dearest price any candidate model may bill.

  prompt bound     = JSON bytes of the messages, tools and response format (a byte-level
                     tokenizer never makes more than one token of a byte)
                     + 8 tokens per message + 500 when tools are sent (providers wrap them)
                     + 500 when response_format asks for JSON (structured-output framing)
                     + image tokens (images.py: per model family, the dearest candidate)
                     + web results x (characters per result + 200 for title and URL),
                     capped at the largest context any candidate has (OpenRouter refuses longer
                     prompts); a call with files is bounded by that context alone (a parsed PDF
                     can hold more text than its bytes)
  completion bound = min(cap, the larger of max_tokens / max_completion_tokens, model limit);
                     sent upstream as max_tokens, reasoning included
  server-tool loop = the web search server tool runs up to `steps` searches (max_tool_calls, forced
                     upstream), each followed by another model call: steps + 1 calls, call i reading
                     at most min(context, prompt bound + every result + i x completion bound) and
                     writing up to the completion bound (loop_prompt)
  worst case       = prompt bound x dearest input price (cache writes at the dearest write price
                     of any tier, a price a tier does not list derived from its prompt price x
                     1.25, or 2 for 1-hour writes; every price the highest any override sets)
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
WEB_RESULT_FRAME_TOKENS = 200  # one result's title and URL beside its content
WEB_SEARCH_PROMPT_TOKENS = 100  # the framing OpenRouter adds around each search's results
STRUCTURED_OUTPUT_TOKENS = 500  # the framing a provider adds around a JSON response format


@dataclass(frozen=True)
class Dearest:
    """Per price field, the highest any candidate bills; limits the largest any allows."""

    prompt: Decimal
    completion: Decimal
    request: Decimal
    image: Decimal
    web_search: Decimal  # per native search (only reserved when the call searches)
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
        prompt=max(max(p.ceiling("prompt"), p.write_ceiling(one_hour_cache)) for p in prices),
        completion=max(max(p.ceiling("completion"), p.ceiling("internal_reasoning")) for p in prices),
        request=max(p.ceiling("request") for p in prices),
        image=max(p.ceiling("image") for p in prices),
        web_search=max(p.ceiling("web_search") for p in prices),
        context_length=_largest([p.context_length for p in prices]),
        max_completion_tokens=_largest([p.max_completion_tokens for p in prices]),
    )


def prompt_bound(text_bytes: int, messages: int, tools_bytes: int, image_tokens: int, structured: bool,
                 web_result_tokens: int, web_searches: int, files: int, context_length: int | None) -> int:
    if files:
        if context_length is None:
            raise PolicyError(400, "unsupported_content",
                              "messages: file parts need a model whose context length is known.", "messages")
        return context_length
    tokens = (text_bytes + MESSAGE_OVERHEAD_TOKENS * messages + tools_bytes
              + (TOOLS_OVERHEAD_TOKENS if tools_bytes else 0) + image_tokens
              + (STRUCTURED_OUTPUT_TOKENS if structured else 0)
              + web_result_tokens + web_searches * WEB_SEARCH_PROMPT_TOKENS)
    return tokens if context_length is None else min(tokens, context_length)


def loop_prompt(first: int, results: int, completion: int, steps: int, context: int | None) -> int:
    """Prompt tokens of a server-tool loop of `steps` searches: the first call reads the prompt
    bound, each later call i also every result and i earlier turns, each at most the context."""
    total = first
    for i in range(1, steps + 1):
        call = first + results + i * completion
        total += call if context is None else min(call, context)
    return total


def completion_bound(requested: int | None, cap: int, model_limit: int | None) -> int:
    bound = requested if requested is not None else cap
    return min(bound, model_limit) if model_limit else bound


def worst_case_nanos(top: Dearest, prompt_tokens: int, completion_tokens: int, images: int,
                     web_cost: Decimal) -> int:
    usd = (prompt_tokens * top.prompt + completion_tokens * top.completion + top.request
           + images * top.image + web_cost)
    # Round up: a reservation must never be below what it stands for.
    return int(math.ceil(usd * money.NANOS_PER_USD))
