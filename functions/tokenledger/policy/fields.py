"""The allowlist: every top-level field a client may send, with its rule (pure).

Rules:
  forward  checked (type, range) and sent upstream as it came
  clamp    replaced upstream by a value the policy computes (the completion bound, the
           price ceiling, the search limits)
  priced   changes what the call can cost: it enters the worst case (plan.py)
  local    ours, never sent upstream (`feature`; `user` comes from the token)
  refuse   a 400 naming the field
Anything not in the table is refused with 400 `unsupported_field`.
"""
from __future__ import annotations

from typing import Callable

from tokenledger.policy import values as v
from tokenledger.policy.errors import bad

FORWARD, CLAMP, PRICED, LOCAL = "forward", "clamp", "priced", "local"

Check = Callable[[str, object], object]


def _stop(field: str, value: object) -> object:
    if isinstance(value, str):
        return v.string(field, value, 500)
    for i, item in enumerate(v.array(field, value, 4)):
        v.string(f"{field}[{i}]", item, 500)
    return value


def _logit_bias(field: str, value: object) -> object:
    if not isinstance(value, dict) or len(value) > 300:
        raise bad(field, "must be an object of at most 300 token ids")
    for key, bias in value.items():
        if not str(key).isdigit():
            raise bad(field, f"keys must be token ids; got '{str(key)[:20]}'")
        v.number(f"{field}.{key}", bias, -100, 100)
    return value


def _stream_options(field: str, value: object) -> object:
    v.obj(field, value, {"include_usage"})
    if "include_usage" in value:
        v.boolean(f"{field}.include_usage", value["include_usage"])
    return value


def _usage(field: str, value: object) -> object:
    v.obj(field, value, {"include"})
    if "include" in value:
        v.boolean(f"{field}.include", value["include"])
    return value


def response_format(field: str, value: object) -> object:
    v.obj(field, value, {"type", "json_schema"})
    v.string(f"{field}.type", value.get("type"), 20, ("text", "json_object", "json_schema"))
    if "json_schema" in value and not isinstance(value["json_schema"], dict):
        raise bad(f"{field}.json_schema", "must be an object")
    return value


def _tool_choice(field: str, value: object) -> object:
    if isinstance(value, str):
        return v.string(field, value, 20, ("none", "auto", "required"))
    v.obj(field, value, {"type", "function"})
    v.string(f"{field}.type", value.get("type"), 20, ("function",))
    v.obj(f"{field}.function", value.get("function"), {"name"})
    v.string(f"{field}.function.name", value["function"].get("name"), 64)
    return value


def _transforms(field: str, value: object) -> object:
    for i, item in enumerate(v.array(field, value, 1)):
        v.string(f"{field}[{i}]", item, 20, ("middle-out",))  # can only shrink the prompt
    return value


def _n(field: str, value: object) -> object:
    v.integer(field, value, 1, 1)  # OpenRouter returns one choice; n > 1 would be silently ignored
    return None  # nothing to forward


def _seed(field: str, value: object) -> object:
    return v.integer(field, value, -(2**63), 2**63 - 1)


def _range(low: float, high: float, low_open: bool = False) -> Check:
    return lambda field, value: v.number(field, value, low, high, low_open)


def _int_range(low: int, high: int) -> Check:
    return lambda field, value: v.integer(field, value, low, high)


def _bool(field: str, value: object) -> object:
    return v.boolean(field, value)


def _choice(*choices: str) -> Check:
    return lambda field, value: v.string(field, value, 20, choices)


# field -> (rule, check). Checks of "priced"/"clamp" fields live in the modules that price them
# (candidates, bounds, servertools, messages); here they are None.
FIELDS: dict[str, tuple[str, Check | None]] = {
    "model": (PRICED, None),
    "messages": (PRICED, None),
    "models": (PRICED, None),
    "route": (FORWARD, _choice("fallback")),
    "provider": (CLAMP, None),
    "plugins": (PRICED, None),
    "tools": (PRICED, None),
    "tool_choice": (FORWARD, _tool_choice),
    "parallel_tool_calls": (FORWARD, _bool),
    "response_format": (PRICED, response_format),
    "reasoning": (PRICED, None),
    "include_reasoning": (FORWARD, _bool),
    "max_tokens": (CLAMP, None),
    "max_completion_tokens": (CLAMP, None),
    "max_tool_calls": (CLAMP, None),  # server-tool steps: forced to the reserved number (plan.py)
    "n": (FORWARD, _n),
    "stream": (FORWARD, _bool),
    "stream_options": (FORWARD, _stream_options),
    "usage": (FORWARD, _usage),
    "transforms": (FORWARD, _transforms),
    "temperature": (FORWARD, _range(0, 2)),
    "top_p": (FORWARD, _range(0, 1)),
    "top_k": (FORWARD, _int_range(0, 1000)),
    "min_p": (FORWARD, _range(0, 1)),
    "top_a": (FORWARD, _range(0, 1)),
    "frequency_penalty": (FORWARD, _range(-2, 2)),
    "presence_penalty": (FORWARD, _range(-2, 2)),
    "repetition_penalty": (FORWARD, _range(0, 2, low_open=True)),
    "seed": (FORWARD, _seed),
    "stop": (FORWARD, _stop),
    "logprobs": (FORWARD, _bool),
    "top_logprobs": (FORWARD, _int_range(0, 20)),
    "logit_bias": (FORWARD, _logit_bias),
    "verbosity": (FORWARD, _choice("low", "medium", "high")),
    "feature": (LOCAL, None),
    "user": (LOCAL, None),  # replaced by the caller's uid
    "user_id": (LOCAL, None),
}

# Fields clients know from elsewhere that this app refuses, with the reason given.
REFUSED = {
    "web_search_options": "provider-native web search is priced by each provider; use plugins: [{\"id\": \"web\"}]",
    "modalities": "only text output is metered",
    "audio": "audio output is not metered",
    "prediction": "predicted outputs are billed beyond max_tokens",
    "prompt": "send messages, not a completion prompt",
    "stop_server_tools_when": "it replaces max_tool_calls, the bound on server-tool steps this app reserves for",
}


def simple_fields(body: dict) -> dict:
    """Check every field the table lists as forward-only and return those to send upstream.
    Unknown fields are refused here."""
    out = {}
    for name, value in body.items():
        entry = FIELDS.get(name)
        if entry is None:
            reason = REFUSED.get(name)
            if reason:
                raise bad(name, f"is not supported: {reason}", "unsupported_field")
            raise bad(name, "is not a field this API accepts (see the request policy in the README)",
                      "unsupported_field")
        rule, check = entry
        if rule == FORWARD and value is not None:
            forwarded = check(name, value)
            if forwarded is not None:
                out[name] = value
    return out
