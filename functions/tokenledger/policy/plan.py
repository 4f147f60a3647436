"""plan_call: a parsed chat body -> what goes upstream and what the call can cost at most (pure).

For every admitted call, what OpenRouter can charge is at most `worst_case_nanos`: the
upstream body holds only allowlisted fields, every model it can end on is allowed and priced,
the completion bound is sent as max_tokens, web search is limited and priced, and the price
ceiling is sent as provider.max_price so no dearer provider can serve it.
"""
from __future__ import annotations

from dataclasses import dataclass

from tokenledger.config import Settings
from tokenledger.policy import bounds, candidates, fields, images, limits, messages, searching, servertools
from tokenledger.policy import values as v
from tokenledger.policy.errors import PolicyError, bad
from tokenledger.pricing.prices import Catalog, ModelPrice

REASONING_KEYS = {"effort", "max_tokens", "exclude", "enabled"}
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
PROVIDER_KEYS = {"order", "only", "ignore", "allow_fallbacks", "require_parameters", "data_collection", "zdr",
                 "sort", "quantizations", "max_price"}
MAX_PRICE_KEYS = {"prompt", "completion", "request", "image"}
PER_MILLION = 1_000_000
MAX_TOOL_CALLS = 30  # server-tool agent steps: OpenRouter's default and maximum


@dataclass(frozen=True)
class CallPlan:
    upstream_body: dict  # only allowlisted fields; `user` is added by the OpenRouter client
    requested_model: str
    record_price: ModelPrice
    candidates: tuple[str, ...]  # ids of every model that can serve the call
    prompt_bound: int
    completion_bound: int
    images: int
    web_results: int
    worst_case_nanos: int
    is_free: bool  # every candidate free and no paid server tool: not held to the dollar budget
    feature: str | None
    stream: bool


def requested_completion(body: dict, cap: int) -> int | None:
    asked = []
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        v.integer(name, value, 1, 2**31)
        if value > cap:
            raise PolicyError(400, "max_tokens_too_large", f"{name} is {value}; this app allows at most {cap}.", name)
        asked.append(value)
    return max(asked) if asked else None


def reasoning(value: object, bound: int) -> dict | None:
    if value is None:
        return None
    v.obj("reasoning", value, REASONING_KEYS)
    if "effort" in value:
        v.string("reasoning.effort", value["effort"], 10, EFFORTS)
    for name in ("exclude", "enabled"):
        if name in value:
            v.boolean(f"reasoning.{name}", value[name])
    if "max_tokens" in value:
        budget = v.integer("reasoning.max_tokens", value["max_tokens"], 1, 2**31)
        if budget >= bound:
            raise bad("reasoning.max_tokens", f"is {budget}; reasoning counts inside the completion bound of this "
                      f"call ({bound} tokens): ask for less reasoning or a larger max_tokens", "invalid_parameter")
    return value


def max_price(top: bounds.Dearest) -> dict:
    """provider.max_price (USD per million tokens; per request / image) at the reserved prices."""
    return {
        "prompt": float(top.prompt * PER_MILLION),
        "completion": float(top.completion * PER_MILLION),
        "request": float(top.request),
        "image": float(top.image),
    }


def provider(value: object, top: bounds.Dearest) -> dict:
    prefs = {} if value is None else dict(v.obj("provider", value, PROVIDER_KEYS))
    ours = max_price(top)
    theirs = prefs.get("max_price")
    if theirs is not None:
        v.obj("provider.max_price", theirs, MAX_PRICE_KEYS)
        for key, price in theirs.items():
            v.number(f"provider.max_price.{key}", price, 0, 1e9)
            ours[key] = min(ours[key], price)  # a client may only lower the ceiling
    prefs["max_price"] = ours
    return prefs


def max_tool_calls(body: dict) -> int:
    """The client's cap on server-tool steps (OpenRouter's default and maximum: 30)."""
    value = body.get("max_tool_calls")
    return MAX_TOOL_CALLS if value is None else v.integer("max_tool_calls", value, 1, MAX_TOOL_CALLS)


def worst_case(top: bounds.Dearest, prompt: int, completion: int, size, tools, web_cost) -> int:
    """The worst case of one call, or of the server tool's loop: steps + 1 model calls."""
    calls = tools.loop_steps + 1
    loop_prompt = bounds.loop_prompt(prompt, tools.loop_result_tokens, completion, tools.loop_steps,
                                     top.context_length)
    return bounds.worst_case_nanos(top, loop_prompt, calls * completion, size.images, web_cost)


def bound_call(body: dict, found, size, tools, extra_bytes: int, settings: Settings):
    """(dearest prices, completion bound, prompt bound, worst case in nanos, web cost) of a call."""
    searching_models = searching.check(found.prices, body, settings, tools.loop_steps)
    top = bounds.dearest(found.prices, size.one_hour_cache)
    completion = bounds.completion_bound(requested_completion(body, settings.max_tokens_cap),
                                         settings.max_tokens_cap, top.max_completion_tokens)
    structured = (body.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    prompt = bounds.prompt_bound(
        size.text_bytes + extra_bytes, size.messages,
        messages.json_bytes(tools.tools) if tools.tools else 0,
        images.image_tokens(tuple(p.model_id for p in found.prices), size.images, size.low_detail_images,
                            settings.image_prompt_tokens),
        structured, tools.result_tokens, tools.web_searches, size.files, top.context_length,
    )
    web_cost = tools.web_cost(settings) + (tools.web_searches * top.web_search if tools.web_searches else 0)
    worst = worst_case(top, prompt, completion, size, tools, web_cost)
    for model in searching_models:
        worst = max(worst, searching.worst_case_nanos(model, completion, size.one_hour_cache, settings)
                    + bounds.worst_case_nanos(top, 0, 0, size.images, web_cost))
    return top, completion, prompt, worst, web_cost


def upstream_model(model_id: str) -> str:
    base, variant = candidates.split_variant(model_id)
    return base if variant == candidates.WEB_VARIANT else model_id  # :online -> base + web plugin


def plan_call(body: dict, catalog: Catalog, settings: Settings, tier: candidates.Tier | None = None) -> CallPlan:
    limits.check_shape(body, settings.max_body_depth, settings.max_body_elements)
    upstream = fields.simple_fields(body)  # refuses unknown fields
    feature = v.feature(body["feature"]) if body.get("feature") is not None else None

    found = candidates.resolve(body, catalog, settings.allowed_models, tier)
    size = messages.measure(body.get("messages"), settings.max_messages)
    if size.images > settings.max_images:
        raise bad("messages", f"at most {settings.max_images} images per request; got {size.images}")
    tools = servertools.plugins(body.get("plugins"), settings, found.online, size.files)
    servertools.tools(body.get("tools"), settings, tools)
    extra_bytes = 0
    if body.get("response_format") is not None:
        fields.response_format("response_format", body["response_format"])
        upstream["response_format"] = body["response_format"]
        extra_bytes += messages.json_bytes(body["response_format"])
    if tools.tools:
        upstream["tools"] = tools.tools
    for plugin in tools.plugins:
        if plugin.get("search_prompt"):
            extra_bytes += messages.json_bytes(plugin["search_prompt"])

    top, completion, prompt, worst, web_cost = bound_call(body, found, size, tools, extra_bytes, settings)
    thinking = reasoning(body.get("reasoning"), completion)
    steps_cap = max_tool_calls(body)
    if tools.loop_steps:
        upstream["max_tool_calls"] = min(tools.loop_steps, steps_cap)

    upstream["model"] = upstream_model(found.requested)
    upstream["messages"] = body["messages"]
    if body.get("models") is not None:
        upstream["models"] = [upstream_model(m) for m in body["models"]]
    upstream["max_tokens"] = completion
    if thinking is not None:
        upstream["reasoning"] = thinking
    upstream["provider"] = provider(body.get("provider"), top)
    plugins = list(tools.plugins)
    if found.router_pool is not None:
        plugins.append({"id": candidates.AUTO_ROUTER_PLUGIN, "allowed_models": list(found.router_pool)})
    if plugins:
        upstream["plugins"] = plugins

    return CallPlan(
        upstream_body=upstream,
        requested_model=found.requested,
        record_price=found.record_price,
        candidates=tuple(dict.fromkeys(p.model_id for p in found.prices)),
        prompt_bound=prompt,
        completion_bound=completion,
        images=size.images,
        web_results=tools.web_results,
        worst_case_nanos=worst,
        is_free=top.is_free and web_cost == 0,
        feature=feature,
        stream=body.get("stream") is True,
    )
