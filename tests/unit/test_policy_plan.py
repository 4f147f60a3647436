"""plan_call: what goes upstream, the bounds and the worst case, with numbers worked by hand
from the prices in policy_catalog.py (USD per token; 1 USD = 10^9 nanos)."""
from __future__ import annotations

import pytest
from policy_catalog import CATALOG, HI, HI_TOKENS

from tokenledger.config import Settings
from tokenledger.policy import PolicyError, plan_call

SETTINGS = Settings()


def plan(settings=SETTINGS, **body):
    body.setdefault("messages", HI)
    return plan_call(body, CATALOG, settings)


def refused(settings=SETTINGS, **body) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        plan(settings, **body)
    return info.value


def test_plain_call():
    p = plan(model="acme/small", max_tokens=100)
    assert (p.prompt_bound, p.completion_bound) == (HI_TOKENS, 100) == (38, 100)
    assert p.worst_case_nanos == 38 * 1_000 + 100 * 2_000 == 238_000
    assert not p.is_free
    assert p.upstream_body == {
        "model": "acme/small", "messages": HI, "max_tokens": 100,
        "provider": {"max_price": {"prompt": 1.0, "completion": 2.0, "request": 0.0, "image": 0.0}},
    }


def test_free_model_with_a_paid_fallback_is_priced_at_the_fallback():
    p = plan(model="acme/small:free", models=["acme/big"], max_tokens=100)
    # dearest input: big's cache write 0.0000125; output 0.00003; request 0.001
    assert p.worst_case_nanos == 38 * 12_500 + 100 * 30_000 + 1_000_000 == 4_475_000
    assert not p.is_free
    assert p.candidates == ("acme/small:free", "acme/big")
    assert p.upstream_body["models"] == ["acme/big"]


def test_only_free_candidates_are_free():
    p = plan(model="acme/small:free")
    assert (p.is_free, p.worst_case_nanos) == (True, 0)


def test_fallback_not_allowed_by_the_app_is_refused():
    err = refused(Settings(allowed_models=("acme/small*",)), model="acme/small:free", models=["acme/big"])
    assert (err.status, err.code, err.field) == (400, "model_not_allowed", "models[0]")


def test_router_priced_at_the_dearest_model_the_app_allows_and_pinned_upstream():
    settings = Settings(allowed_models=("acme/small", "acme/small:free", "openrouter/auto"))
    p = plan(settings, model="openrouter/auto", max_tokens=100)
    assert p.worst_case_nanos == 238_000
    assert p.upstream_body["plugins"] == [{"id": "auto-router", "allowed_models": ["acme/small", "acme/small:free"]}]
    # without an allowlist: the dearest model in the whole catalog, and no pin
    p = plan(model="openrouter/auto", max_tokens=100)
    assert p.worst_case_nanos == 4_475_000 and "plugins" not in p.upstream_body


def test_router_with_no_allowed_model_is_refused():
    err = refused(Settings(allowed_models=("openrouter/auto",)), model="openrouter/auto")
    assert (err.code, err.field) == ("model_not_allowed", "model")


def test_variants_are_priced_at_their_base_model():
    for variant in ("nitro", "floor", "exacto"):
        p = plan(Settings(allowed_models=("acme/small",)), model=f"acme/small:{variant}", max_tokens=100)
        assert p.worst_case_nanos == 238_000
        assert p.upstream_body["model"] == f"acme/small:{variant}"
        assert p.record_price.model_id == "acme/small"


def test_unknown_model_names_what_is_missing():
    err = refused(model="acme/none:nitro", models=["acme/new"])
    assert (err.code, err.missing_models) == ("model_not_found", ("acme/none:nitro", "acme/new"))


def test_completion_bound_takes_the_larger_ask_and_the_model_limit():
    p = plan(model="acme/big", max_tokens=1, max_completion_tokens=4000)
    assert p.completion_bound == 4000
    assert p.upstream_body["max_tokens"] == 4000 and "max_completion_tokens" not in p.upstream_body
    assert plan(model="acme/small").completion_bound == 1000  # model limit
    assert plan(model="acme/think").completion_bound == 8192  # no limit published: the cap
    assert plan(model="acme/small", max_tokens=5000).completion_bound == 1000
    err = refused(model="acme/small", max_tokens=9000)
    assert (err.code, err.field) == ("max_tokens_too_large", "max_tokens")


def test_reasoning_counts_inside_the_completion_bound_at_the_reasoning_price():
    p = plan(model="acme/think", max_tokens=1000, reasoning={"max_tokens": 500, "effort": "high"})
    assert p.worst_case_nanos == 38 * 2_000 + 1000 * 8_000 == 8_076_000
    assert p.upstream_body["reasoning"] == {"max_tokens": 500, "effort": "high"}
    err = refused(model="acme/think", max_tokens=1000, reasoning={"max_tokens": 1000})
    assert err.field == "reasoning.max_tokens"


def test_images_are_priced_per_image_and_as_prompt_tokens():
    content = [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]
    counted = '{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"image_url"}]}'
    p = plan(model="acme/big", max_tokens=100, messages=[{"role": "user", "content": content}])
    # acme/ is no family with a documented image formula: TOKENLEDGER_IMAGE_PROMPT_TOKENS (16,384)
    assert p.prompt_bound == len(counted) + 8 + 16_384 == 16_468
    assert p.worst_case_nanos == 16_468 * 12_500 + 100 * 30_000 + 1_000_000 + 2_000_000 == 211_850_000


def test_files_are_bounded_by_the_context_and_parsed_with_the_free_engine():
    content = [{"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"}}]
    p = plan(model="acme/small", max_tokens=100, messages=[{"role": "user", "content": content}])
    assert p.prompt_bound == 10000
    assert p.worst_case_nanos == 10000 * 1_000 + 100 * 2_000 == 10_200_000
    assert p.upstream_body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]
    err = refused(model="acme/small", messages=[{"role": "user", "content": content}],
                  plugins=[{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}])
    assert err.field == "plugins.file-parser.pdf.engine"


def test_a_huge_tools_array_is_prompt_and_capped_at_the_context():
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": "d" * 1500}} for i in range(120)]
    p = plan(model="acme/small", max_tokens=100, tools=tools)
    assert p.prompt_bound == 10000  # 185 KB of tools: over the 10,000-token context
    small = [{"type": "function", "function": {"name": "f"}}]
    p = plan(model="acme/small", max_tokens=100, tools=small, tool_choice="auto")
    tools_text = '[{"type":"function","function":{"name":"f"}}]'
    assert p.prompt_bound == 38 + len(tools_text) + 500 == 583
    assert p.upstream_body["tools"] == small and p.upstream_body["tool_choice"] == "auto"


WEB = Settings(allow_web_search=True)


def test_web_search_is_off_by_default():
    for body in ({"plugins": [{"id": "web"}]}, {"tools": [{"type": "openrouter:web_search"}]}):
        assert refused(model="acme/small:free", **body).code == "web_search_disabled"
    assert refused(model="acme/small:online").code == "web_search_disabled"


def test_web_plugin_on_a_free_model_is_a_paid_call():
    p = plan(WEB, model="acme/small:free", plugins=[{"id": "web", "max_results": 3}])
    assert p.worst_case_nanos == 3 * 4_000_000  # 0.02 USD per 5 results
    assert not p.is_free
    assert p.upstream_body["plugins"] == [{"id": "web", "engine": "exa", "max_results": 3}]
    p = plan(WEB, model="acme/small:free", plugins=[{"id": "web", "max_results": 50}])
    assert p.upstream_body["plugins"][0]["max_results"] == 5 and p.worst_case_nanos == 20_000_000
    assert refused(WEB, model="acme/small:free", plugins=[{"id": "web", "engine": "native"}]).code == "invalid_request"


def test_online_variant_becomes_the_base_model_and_the_web_plugin():
    p = plan(WEB, model="acme/small:online", max_tokens=100)
    assert p.upstream_body["model"] == "acme/small"
    assert p.upstream_body["plugins"] == [{"id": "web", "engine": "exa", "max_results": 5}]
    # prompt: 38 + 5 results x (5,000 characters + 200) + 100 for the search's framing = 26,138,
    # more than the model's context: 10,000
    assert p.prompt_bound == 10_000
    assert p.worst_case_nanos == 10_000 * 1_000 + 100 * 2_000 + 20_000_000 == 30_200_000


def test_web_search_server_tool_is_limited_upstream_and_priced_per_result():
    p = plan(WEB, model="acme/small:free", tools=[{"type": "openrouter:web_search", "parameters": {"max_results": 4}}])
    # 3 searches of 4 results at most: max_total_results 12 and max_tool_calls 3 sent upstream, each
    # result at most 5,000 characters
    assert p.upstream_body["tools"] == [{"type": "openrouter:web_search", "parameters": {
        "engine": "exa", "max_results": 4, "max_total_results": 12, "max_characters": 5000}}]
    assert p.upstream_body["max_tool_calls"] == 3
    assert p.worst_case_nanos == 12 * 4_000_000 and not p.is_free


def test_provider_preferences_keep_the_price_ceiling():
    p = plan(model="acme/small", provider={"order": ["X"], "max_price": {"prompt": 0.5, "completion": 9}})
    assert p.upstream_body["provider"] == {
        "order": ["X"], "max_price": {"prompt": 0.5, "completion": 2.0, "request": 0.0, "image": 0.0}}
    assert refused(model="acme/small", provider={"sneaky": 1}).field == "provider.sneaky"


def test_conditional_prices_reserve_the_dearest_override():
    # Gemini-style long-context pricing: from 200k prompt tokens the prompt price doubles, and a
    # peak-hours window raises the completion price; the top-level values are only today's price.
    from tokenledger.pricing.prices import catalog_to_models_json, parse_catalog

    models = {"data": [{"id": "acme/long", "context_length": 1_000_000,
                        "pricing": {"prompt": "0.000001", "completion": "0.000002", "overrides": [
                            {"min_prompt_tokens": 200000, "prompt": "0.000002"},
                            {"utc_start": "09:00", "utc_end": "17:00", "completion": "0.000005"},
                            "not an override"]}}]}
    catalog = parse_catalog(models, "openrouter")
    p = plan_call({"model": "acme/long", "messages": HI, "max_tokens": 100}, catalog, SETTINGS)
    assert p.worst_case_nanos == 38 * 2_000 + 100 * 5_000 == 576_000
    assert p.upstream_body["provider"]["max_price"]["prompt"] == 2.0
    assert p.upstream_body["provider"]["max_price"]["completion"] == 5.0
    # the stored copy of the catalog keeps what the worst case needs
    stored = parse_catalog(catalog_to_models_json(catalog), "stored")
    from decimal import Decimal

    assert (stored.get("acme/long").ceiling("prompt"), stored.get("acme/long").ceiling("completion")) == (
        Decimal("0.000002"), Decimal("0.000005"))
