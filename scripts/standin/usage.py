"""The `usage` object of a chat answer, where a client reads its bill: token counts and their
details, cost, BYOK and upstream cost, web searches, and what a test scripts into it (a cost left
out or null, a count replaced) to see how the client copes."""

from __future__ import annotations

from typing import Any

from .metering import Bill

# Usage override keys that live inside the *_details objects.
_PROMPT_DETAIL_KEYS = {"cached_tokens", "cache_write_tokens", "audio_tokens", "video_tokens"}
_COMPLETION_DETAIL_KEYS = {"reasoning_tokens"}


def usage_object(bill: Bill, behaviour: dict) -> dict:
    overrides = behaviour.get("usage") or {}
    if "completion_tokens" in overrides:  # reported as billed: clamped to the max_tokens sent
        overrides = {**overrides, "completion_tokens": bill.tokens.completion}
    usage = _build_usage(bill, behaviour, overrides)
    if bill.searches:
        # The prose docs and the OpenAPI schema name it differently: send both.
        usage["server_tool_use"] = {"web_search_requests": bill.searches}
        usage["server_tool_use_details"] = {"web_search_requests": bill.searches,
                                            "web_search_results": bill.web_results}
    return usage


def _build_usage(bill: Bill, behaviour: dict, overrides: dict) -> dict:
    tokens, cost = bill.tokens, bill.cost
    usage: dict[str, Any] = {
        "prompt_tokens": tokens.prompt,
        "completion_tokens": tokens.completion,
        "total_tokens": tokens.prompt + tokens.completion,
        "prompt_tokens_details": {
            "cached_tokens": tokens.cached,
            "cache_write_tokens": tokens.cache_write,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": tokens.reasoning},
        "cost": bill.charged,
        "is_byok": bill.byok,
        "cost_details": {
            "upstream_inference_cost": bill.upstream,
            "upstream_inference_prompt_cost": cost.prompt,
            "upstream_inference_completions_cost": cost.completion,
        },
    }
    if behaviour.get("omit_cost"):
        del usage["cost"], usage["cost_details"]
    elif behaviour.get("cost_null"):
        usage["cost"] = None
    for key, value in overrides.items():
        if key in _PROMPT_DETAIL_KEYS and isinstance(usage["prompt_tokens_details"], dict):
            usage["prompt_tokens_details"][key] = value
        elif key in _COMPLETION_DETAIL_KEYS and isinstance(usage["completion_tokens_details"], dict):
            usage["completion_tokens_details"][key] = value
        else:
            usage[key] = value
    return usage
