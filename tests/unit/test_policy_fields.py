"""The allowlist: parameter ranges, refused fields, shape limits, feature names, and the
bodies common clients send by default (openrouter-api.md "What common clients send")."""
from __future__ import annotations

import pytest
from policy_catalog import CATALOG, HI

from tokenledger.config import Settings
from tokenledger.policy import PolicyError, plan_call
from tokenledger.policy.fields import FIELDS


def plan(settings=None, **body):
    body.setdefault("model", "acme/small")
    body.setdefault("messages", HI)
    return plan_call(body, CATALOG, settings or Settings())


def refused(settings=None, **body) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        plan(settings, **body)
    return info.value


@pytest.mark.parametrize("field,value", [
    ("temperature", 2.01), ("temperature", -0.1), ("top_p", 1e30), ("top_p", -1), ("top_p", float("inf")),
    ("frequency_penalty", 2.5), ("presence_penalty", -3), ("repetition_penalty", 0), ("min_p", 1.5),
    ("top_a", -0.1), ("top_k", -1), ("top_logprobs", 21), ("seed", 2**64), ("temperature", True),
    ("max_tokens", 0), ("max_tokens", 1.5), ("n", 2), ("logit_bias", {"12": 101}),
])
def test_out_of_range_parameters_are_refused_naming_the_field(field, value):
    err = refused(**{field: value})
    assert (err.status, err.field) == (400, field if field != "logit_bias" else "logit_bias.12")
    assert err.code in ("invalid_parameter", "invalid_request")


@pytest.mark.parametrize("field,value", [
    ("temperature", 0), ("temperature", 2), ("top_p", 1), ("frequency_penalty", -2), ("presence_penalty", 2),
    ("repetition_penalty", 2), ("top_k", 40), ("seed", -5), ("stop", ["\n", "END"]), ("logprobs", True),
    ("top_logprobs", 20), ("logit_bias", {"50256": -100}), ("verbosity", "low"), ("parallel_tool_calls", False),
    ("response_format", {"type": "json_object"}), ("transforms", ["middle-out"]), ("route", "fallback"),
])
def test_in_range_parameters_are_forwarded_as_sent(field, value):
    assert plan(**{field: value}).upstream_body[field] == value


def test_unknown_and_refused_fields():
    err = refused(sneaky_field=1)
    assert (err.status, err.code, err.field) == (400, "unsupported_field", "sneaky_field")
    assert "sneaky_field" in err.message
    for name in ("web_search_options", "modalities", "audio", "prediction", "prompt"):
        assert refused(**{name: {}}).code == "unsupported_field"
    assert refused(plugins=[{"id": "moderation"}]).field == "plugins[0].id"
    assert refused(tools=[{"type": "code_interpreter"}]).field == "tools[0].type"
    assert refused(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]).code \
        == "unsupported_content"
    assert refused(messages=[{"role": "wizard", "content": "x"}]).field == "messages[0].role"
    assert refused(stream_options={"include_usage": True, "x": 1}).field == "stream_options.x"


def test_local_fields_never_go_upstream():
    p = plan(feature="support-chat", user="someone-else", user_id="spoof")
    assert p.feature == "support-chat"
    assert not {"feature", "user", "user_id"} & set(p.upstream_body)


@pytest.mark.parametrize("feature", ["__x__", "__name__", "a b", "", "x" * 65, "é"])
def test_feature_names_that_cannot_be_stored_are_refused(feature):
    assert refused(feature=feature).field == "feature"


def test_body_depth_and_element_count_are_bounded():
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    err = refused(stop=deep)
    assert (err.status, err.code) == (400, "body_too_deep")
    err = refused(Settings(max_body_elements=100), logit_bias={str(i): 1 for i in range(200)})
    assert (err.status, err.code) == (413, "too_many_elements")


def test_too_many_images_and_fallbacks():
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    err = refused(Settings(max_images=2), messages=[{"role": "user", "content": [image] * 3}])
    assert err.field == "messages"
    assert refused(models=["acme/small"] * 9).field == "models"


def test_langchain_defaults():
    p = plan(max_completion_tokens=200, stream=False, stream_options={"include_usage": True}, temperature=0.7)
    assert p.upstream_body["max_tokens"] == 200 and p.upstream_body["stream"] is False
    assert p.upstream_body["stream_options"] == {"include_usage": True}


def test_vercel_ai_sdk_and_openai_sdk_defaults():
    tools = [{"type": "function", "function": {"name": "weather", "description": "Weather",
                                               "parameters": {"type": "object", "properties": {}}, "strict": False}}]
    p = plan(max_tokens=300, stream=True, stream_options={"include_usage": True}, tools=tools, tool_choice="auto",
             user="u-1", usage={"include": True}, n=1)
    assert p.stream and p.upstream_body["tools"] == tools and "n" not in p.upstream_body
    history = HI + [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert plan(messages=history).prompt_bound > plan().prompt_bound


def test_every_field_has_a_rule():
    assert {rule for rule, _ in FIELDS.values()} == {"forward", "clamp", "priced", "local"}
