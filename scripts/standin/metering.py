"""What one chat call bills, on the route it took: its tokens (the prompt and each agent-loop step,
images, prompt-cache reads and writes, completion and reasoning, a test's scripted usage) and its
dollars (the prices in force, the BYOK fee, a scripted cost). The counting and price rules live in
billing.py; this module applies them to one request, in the order OpenRouter checks them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from . import images as images_mod
from .billing import (
    FLOOR_FACTOR,
    Completion,
    Cost,
    Tokens,
    compute_cost,
    count_prompt,
    file_parse_cost,
    loop_prompt,
    partial_completion,
    plan_completion,
    prefix_key,
    request_prompt,
    stream_pieces,
    wants_1h_cache,
    web_search,
)
from .catalog import Catalog, Prices
from .chat_request import ChatRequest
from .responses import ApiError
from .routing import Route, check_max_price
from .state import State

BYOK_FEE_RATE = Decimal("0.05")


@dataclass(frozen=True)
class Bill:
    """The bill of one call, and the answer it bills for."""
    tokens: Tokens
    cost: Cost
    charged: Decimal  # what the account pays (only the BYOK fee when the key is the caller's)
    upstream: Decimal  # what the provider charged
    byok: bool
    content: str
    pieces: list[str]  # content as the streamed deltas
    finish_reason: str
    searches: int
    web_results: int


@dataclass(frozen=True)
class _Prompt:
    first_call: int  # prompt tokens of the first model call
    images: int
    context: int | None  # the priced model's context_length
    steps: tuple[int, ...]  # agent loop: tokens each search adds before the next call
    searches: int
    web_results: int
    extras: Decimal  # charges beside tokens: search results and fees, file parsing


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _int_override(overrides: dict, key: str, default: int) -> int:
    value = overrides.get(key, default)
    # Non-int overrides (e.g. null) only change what is reported, not the maths.
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def meter(catalog: Catalog, state: State, config: dict, req: ChatRequest, route: Route,
          behaviour: dict, stream_error: bool) -> Bill:
    """The bill of one call. ApiError 400 (context length) or 404 (provider.max_price); the
    prompt cache has seen the prefix by the time the price check refuses."""
    prompt = _prompt(catalog, req, route, behaviour)
    plan = plan_completion(req.messages, req.max_tokens, catalog.is_reasoning(route.served))
    prompt = _self_search(catalog, route.priced, behaviour, prompt)
    listed = catalog.prices(route.priced)
    cached, cache_write = _prompt_cache(state, config["cache_min_tokens"], listed, route.priced, req.messages)
    overrides = behaviour.get("usage") or {}
    completion = _int_override(overrides, "completion_tokens", plan.completion_tokens)
    if req.max_tokens is not None:
        completion = min(completion, req.max_tokens)  # never longer than the max_tokens sent (per call)
    prices = _prices_in_force(listed, route, prompt, completion, overrides, req.messages)
    check_max_price(req.body, route, listed)
    tokens = _tokens(prompt, plan, completion, cached, cache_write, overrides)

    pieces = stream_pieces(plan.content)
    finish_reason = plan.finish_reason
    if stream_error:
        # Only what was generated before the failure is billed.
        billed = partial_completion(tokens.completion, tokens.reasoning,
                                    behaviour["stream_error_after"], len(pieces))
        tokens = tokens.with_completion(billed, min(tokens.reasoning, billed))
        finish_reason = "error"

    cost = compute_cost(prices, tokens, prompt.extras)
    charged, upstream = _charge(cost.total, behaviour)
    return Bill(tokens, cost, charged, upstream, bool(behaviour.get("byok")), plan.content, pieces,
                finish_reason, prompt.searches, prompt.web_results)


def _prompt(catalog: Catalog, req: ChatRequest, route: Route, behaviour: dict) -> _Prompt:
    """The request's prompt as billed (text, tools, images, files, web results); ApiError 400
    when the first call alone is over the model's context, as OpenRouter refuses it."""
    asked = request_prompt(req.body)
    size = behaviour.get("image_size")
    image_model = route.served if route.served in catalog else route.priced
    image_tokens = sum(images_mod.image_tokens(image_model, detail, tuple(size) if size else None)
                       for detail in asked.image_details)
    web = web_search(req.body, route.variant == "online", int(behaviour.get("web_searches", 1)),
                     behaviour.get("web_results_found"))
    first_call = asked.tokens + image_tokens + web.plugin_tokens
    context = (catalog.model(route.priced) or {}).get("context_length")
    if context and first_call > context:
        raise ApiError(400, f"This endpoint's maximum context length is {context} tokens. However, you "
                       f"requested about {first_call} tokens.", {"error_type": "context_length_exceeded"})
    return _Prompt(first_call, asked.images, context, web.steps, web.searches, web.results,
                   web.cost + file_parse_cost(req.body, asked))


def _self_search(catalog: Catalog, priced: str, behaviour: dict, prompt: _Prompt) -> _Prompt:
    """A model that searches by itself: a fee per search, each search read on the next step."""
    searching = catalog.searching(priced)
    if not searching:
        return prompt
    n = int(behaviour.get("web_searches", searching.get("searches", 1)))
    return replace(prompt, steps=prompt.steps + (int(searching.get("read_tokens", 0)),) * n,
                   searches=prompt.searches + n,
                   extras=prompt.extras + n * catalog.prices(priced).web_search)


def _prompt_cache(state: State, min_tokens: int, listed: Prices, priced: str,
                  messages: list[dict]) -> tuple[int, int]:
    """(cached, cache_write) tokens: all messages but the last are the prefix; a model with a
    cache-read price reads a prefix it saw before and (with a write price) writes a new one."""
    prefix = messages[:-1]
    prefix_tokens, _ = count_prompt(prefix)
    if prefix and prefix_tokens >= min_tokens and listed.cache_read is not None:
        if state.check_prefix(priced, prefix_key(prefix)):
            return prefix_tokens, 0
        if listed.cache_write is not None:
            return 0, prefix_tokens
    return 0, 0


def _prices_in_force(listed: Prices, route: Route, prompt: _Prompt, completion: int,
                     overrides: dict, messages: list[dict]) -> Prices:
    """The tier the largest call of the loop reaches (a :floor call lands on the flex tier)."""
    calls = len(prompt.steps) + 1
    largest_call = min(prompt.first_call + sum(prompt.steps) + (calls - 1) * completion,
                       prompt.context or 10**12)
    largest_call = _int_override(overrides, "prompt_tokens", largest_call)  # the tier a scripted bill reaches
    prices = listed.in_force(largest_call, wants_1h_cache(messages))
    return prices.scaled(FLOOR_FACTOR) if route.variant == "floor" else prices


def _tokens(prompt: _Prompt, plan: Completion, completion: int, cached: int, cache_write: int,
            overrides: dict) -> Tokens:
    """Every call of the loop writes `completion`; a test's scripted usage replaces the counts."""
    calls = len(prompt.steps) + 1
    prompt_tokens = loop_prompt(prompt.first_call, prompt.steps, completion, prompt.context)
    reasoning = min(_int_override(overrides, "reasoning_tokens", plan.reasoning_tokens), completion)
    return Tokens(
        prompt=_int_override(overrides, "prompt_tokens", prompt_tokens),
        completion=completion * calls,
        reasoning=reasoning * calls,
        cached=_int_override(overrides, "cached_tokens", cached),
        cache_write=_int_override(overrides, "cache_write_tokens", cache_write),
        images=prompt.images,
    )


def _charge(upstream: Decimal, behaviour: dict) -> tuple[Decimal, Decimal]:
    """(charged, upstream): a scripted cost wins; BYOK pays only the fee on the provider's bill;
    otherwise the upstream cost is what the account paid."""
    byok = bool(behaviour.get("byok"))
    if "cost" in behaviour:
        charged = _money(behaviour["cost"])
    elif byok:
        charged = upstream * BYOK_FEE_RATE
    else:
        charged = upstream
    return charged, (upstream if byok else charged)
