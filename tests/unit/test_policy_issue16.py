"""Issue 16: what the request policy does with models that search by themselves, price fields it
does not understand, the web search server tool's loop, image tokens per model family, cache-write
prices a tier leaves out, the structured-output framing and stacked variants. Numbers are worked
by hand from the prices below (USD per token; 1 USD = 10^9 nanos)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from policy_catalog import HI, MODELS

from tokenledger.config import Settings
from tokenledger.policy import PolicyError, plan_call
from tokenledger.pricing.catalog import load_snapshot
from tokenledger.pricing.prices import catalog_to_models_json, parse_catalog

EXTRA = [
    {"id": "acme/deep", "description": "A deep research model.", "context_length": 100_000,
     "pricing": {"prompt": "0.000002", "completion": "0.000008", "web_search": "0.01"},
     "top_provider": {"max_completion_tokens": 4000}},
    {"id": "acme/web-priced", "context_length": 10_000,  # an ordinary model listing its native search price
     "pricing": {"prompt": "0.000001", "completion": "0.000002", "web_search": "0.01"}},
    {"id": "acme/odd", "pricing": {"prompt": "0.000001", "completion": "0.000002", "video_seconds": "0.1"}},
    {"id": "acme/zero-odd", "pricing": {"prompt": "0.000001", "completion": "0.000002", "future_charge": "0"}},
    {"id": "acme/unreadable", "pricing": {"prompt": "0.000001", "completion": "0.000002", "image": "free"}},
    {"id": "anthropic/claude-x", "context_length": 1_000_000,
     "pricing": {"prompt": "0.000003", "completion": "0.000015", "input_cache_write": "0.00000375", "overrides": [
         {"min_prompt_tokens": 200_000, "prompt": "0.000006", "completion": "0.0000225"}]}},
    {"id": "openai/gpt-4o-mini", "context_length": 128_000, "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}},
    {"id": "qwen/qwen2.5-vl-72b-instruct", "context_length": 32_000,
     "pricing": {"prompt": "0.00000025", "completion": "0.00000075"}},
]
CATALOG = parse_catalog({"data": MODELS["data"] + EXTRA}, "openrouter")
DEFAULTS = Settings()
WEB = Settings(allow_web_search=True)
LISTED = Settings(allow_web_search=True, search_models=("acme/deep",))


def plan(settings=DEFAULTS, **body):
    body.setdefault("messages", HI)
    return plan_call(body, CATALOG, settings)


def refused(settings=DEFAULTS, **body) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        plan(settings, **body)
    return info.value


def test_a_price_field_the_app_does_not_understand_refuses_the_model():
    err = refused(model="acme/odd", max_tokens=10)
    assert (err.status, err.code, err.field) == (400, "unpriced_model", "model")
    assert "video_seconds" in err.message
    assert refused(model="acme/unreadable", max_tokens=10).code == "unpriced_model"
    assert refused(model="acme/small", models=["acme/odd"], max_tokens=10).field == "models"
    # an unknown field priced at 0 costs nothing: admitted
    assert plan(model="acme/zero-odd", max_tokens=100).worst_case_nanos == 38 * 1_000 + 100 * 2_000


def test_a_router_leaves_out_what_it_cannot_bound_and_pins_the_rest():
    p = plan(model="openrouter/auto", max_tokens=10)
    pinned = p.upstream_body["plugins"][-1]
    assert pinned["id"] == "auto-router"
    assert {"acme/odd", "acme/unreadable", "acme/deep"}.isdisjoint(pinned["allowed_models"])
    assert "acme/zero-odd" in pinned["allowed_models"] and set(p.candidates) == set(pinned["allowed_models"])


def test_the_stored_catalog_keeps_unknown_prices_searching_and_each_tier():
    stored = parse_catalog(catalog_to_models_json(CATALOG), "stored")
    assert stored.get("acme/odd").unknown_prices == ("video_seconds",)
    assert stored.get("acme/deep").searches and stored.get("acme/deep").web_search == Decimal("0.01")
    claude = stored.get("anthropic/claude-x")
    assert claude.write_ceiling(True) == CATALOG.get("anthropic/claude-x").write_ceiling(True) == Decimal("0.000012")


def test_a_model_that_searches_by_itself_needs_web_search_and_an_operators_listing():
    err = refused(model="acme/deep", max_tokens=100)
    assert (err.status, err.code) == (400, "web_search_disabled") and "searches the web by itself" in err.message
    err = refused(WEB, model="acme/small", models=["acme/deep"], max_tokens=100)
    assert (err.status, err.code, err.field) == (403, "search_model_not_listed", "models")
    assert "TOKENLEDGER_SEARCH_MODELS" in err.message
    # listed: 10 searches x $0.01 + 11 steps x (100,000 context x $2/M + 100 x $8/M)
    p = plan(LISTED, model="acme/deep", max_tokens=100)
    assert p.worst_case_nanos == 10 * 10_000_000 + 11 * (100_000 * 2_000 + 100 * 8_000) == 2_308_800_000
    assert not p.is_free


def test_searching_models_are_recognised_by_id_name_or_description():
    catalog = parse_catalog({"data": [
        {"id": "x/o9-deep-research", "pricing": {"prompt": "0.000001", "completion": "0.000001"}},
        {"id": "x/mini-search-preview", "pricing": {"prompt": "0.000001", "completion": "0.000001"}},
        {"id": "x/plain", "description": "It searches the web before it answers.",
         "pricing": {"prompt": "0.000001", "completion": "0.000001"}},
        {"id": "x/chat", "description": "A chat model.", "pricing": {"prompt": "0.000001", "completion": "0.000001",
                                                                   "web_search": "0.01"}}]}, "openrouter")
    assert [p.searches for p in catalog.models.values()] == [True, True, True, False]


def test_an_ordinary_model_listing_a_web_search_price_is_admitted_and_pays_it_when_it_searches():
    assert plan(model="acme/web-priced", max_tokens=100).worst_case_nanos == 38 * 1_000 + 100 * 2_000
    # :online: the prompt (38 + 5 x 5,200 + 100) is more than the 10,000 context; 5 Exa results
    # ($0.02) and one native search price ($0.01) on top
    p = plan(WEB, model="acme/web-priced:online", max_tokens=100)
    assert p.worst_case_nanos == 10_000 * 1_000 + 100 * 2_000 + 20_000_000 + 10_000_000 == 40_200_000


TOOL_JSON = ('[{"type":"openrouter:web_search","parameters":{"max_results":1,"engine":"exa",'
             '"max_total_results":3,"max_characters":5000}}]')


def test_the_server_tool_loop_is_capped_upstream_and_every_step_is_reserved():
    p = plan(WEB, model="acme/small", max_tokens=100,
             tools=[{"type": "openrouter:web_search", "parameters": {"max_results": 1}}])
    assert p.upstream_body["max_tool_calls"] == 3
    first = 38 + len(TOOL_JSON) + 500 + 3 * 100  # messages, tools + their framing, 3 searches' framing
    # 3 later calls read the first call + 3 results of 5,200 tokens + their turns: past the 10,000 context
    assert p.prompt_bound == first
    assert p.worst_case_nanos == (first + 3 * 10_000) * 1_000 + 4 * 100 * 2_000 + 3 * 4_000_000
    fewer = plan(WEB, model="acme/small", max_tokens=100, max_tool_calls=2,
                 tools=[{"type": "openrouter:web_search", "parameters": {"max_results": 1}}])
    assert fewer.upstream_body["max_tool_calls"] == 2


def test_server_tool_parameters_that_read_more_than_reserved_are_refused():
    def tool(**params):
        return [{"type": "openrouter:web_search", "parameters": params}]
    err = refused(WEB, model="acme/small", tools=tool(search_context_size="high"))
    assert (err.code, err.field) == ("invalid_parameter", "tools[0].parameters.search_context_size")
    assert "30,000" in err.message
    assert refused(WEB, model="acme/small", tools=tool(max_characters=6000)).field == "tools[0].parameters.max_characters"
    low = plan(WEB, model="acme/small", tools=tool(search_context_size="low", max_characters=2000))
    assert low.upstream_body["tools"][0]["parameters"]["max_characters"] == 2000
    assert refused(WEB, model="acme/small", tools=tool(allowed_domains="x.com")).field == "tools[0].parameters.allowed_domains"
    assert refused(WEB, model="acme/small", max_tool_calls=31).field == "max_tool_calls"
    assert "max_tool_calls" not in plan(WEB, model="acme/small", max_tool_calls=5).upstream_body
    assert refused(WEB, model="acme/small", stop_server_tools_when=[]).code == "unsupported_field"
    assert refused(WEB, model="acme/small", tools=tool() + tool()).field == "tools[1]"


def image_message(*details):
    parts = [{"type": "image_url", "image_url": {"url": "https://x.test/a.png", **({"detail": d} if d else {})}}
             for d in details]
    return [{"role": "user", "content": [{"type": "text", "text": "Hi"}] + parts}]


def counted(n):
    return len('{"role":"user","content":[{"type":"text","text":"Hi"}' + ',{"type":"image_url"}' * n + ']}') + 8


@pytest.mark.parametrize("model, details, tokens", [
    ("openai/gpt-4o-mini", ("high", None), 2 * (2833 + 5667 * 8)),
    ("openai/gpt-4o-mini", ("low", "auto"), 2833 + 2833 + 5667 * 8),
    ("anthropic/claude-x", (None,), 1600),
    ("qwen/qwen2.5-vl-72b-instruct", (None,), 16_384),
    ("acme/big", (None,), 16_384),  # no documented formula: TOKENLEDGER_IMAGE_PROMPT_TOKENS
])
def test_image_tokens_are_the_model_familys_documented_maximum(model, details, tokens):
    p = plan(model=model, max_tokens=10, messages=image_message(*details))
    assert p.prompt_bound == counted(len(details)) + tokens


def test_images_on_a_fallback_are_reserved_at_the_dearest_reading_family():
    p = plan(model="anthropic/claude-x", models=["openai/gpt-4o-mini"], max_tokens=10, messages=image_message(None))
    assert p.prompt_bound == counted(1) + 2833 + 5667 * 8
    assert refused(model="openai/gpt-4o-mini", messages=image_message("ultra")).field == \
        "messages[0].content[1].image_url.detail"


def cache_part(**control):
    return [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": control}]}]


def test_a_cache_write_price_a_tier_leaves_out_is_its_prompt_price_times_the_premium():
    """claude-x lists a 5-minute write (1.25 x $3/M) but no 1-hour one, and its long-context tier
    ($6/M) lists no write price at all: 5-minute writes may cost 1.25 x $6/M, 1-hour ones 2 x $6/M."""
    claude = CATALOG.get("anthropic/claude-x")
    assert claude.write_ceiling(False) == Decimal("0.0000075")
    assert claude.write_ceiling(True) == Decimal("0.000012")
    p = plan(model="anthropic/claude-x", max_tokens=100, messages=cache_part(type="ephemeral", ttl="1h"))
    bound = len('{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral",'
                '"ttl":"1h"}}]}') + 8
    assert p.prompt_bound == bound and p.worst_case_nanos == bound * 12_000 + 100 * 22_500
    # a model that bills no cache writes is priced at its prompt price, 1 hour or not
    small = plan(model="acme/small", max_tokens=100, messages=cache_part(type="ephemeral", ttl="1h"))
    assert small.worst_case_nanos == (bound) * 1_000 + 100 * 2_000


def test_the_shipped_snapshot_reserves_one_hour_writes_at_twice_the_prompt_price():
    snapshot = load_snapshot()
    sonnet = snapshot.get("anthropic/claude-sonnet-4")
    assert sonnet.input_cache_write_1h is None  # the snapshot does not list it
    assert sonnet.write_ceiling(True) == 2 * sonnet.prompt == Decimal("0.000006")


def test_cache_control_other_than_anthropics_two_is_refused():
    assert refused(model="acme/small", messages=cache_part(type="ephemeral", ttl="2h")).field == \
        "messages[0].content[0].cache_control.ttl"
    assert refused(model="acme/small", messages=cache_part(type="persistent")).field == \
        "messages[0].content[0].cache_control.type"
    plan(model="acme/small", messages=cache_part(type="ephemeral", ttl="5m"))


def test_a_json_response_format_is_reserved_its_framing():
    p = plan(model="acme/small", max_tokens=10, response_format={"type": "json_object"})
    assert p.prompt_bound == 38 + len('{"type":"json_object"}') + 500
    text = plan(model="acme/small", max_tokens=10, response_format={"type": "text"})
    assert text.prompt_bound == 38 + len('{"type":"text"}')


def test_a_routing_variant_stacked_on_a_variant_is_refused():
    err = refused(model="acme/small:free:floor", max_tokens=10)
    assert (err.status, err.code, err.field) == (400, "unsupported_model", "model")
    assert refused(model="acme/small", models=["acme/small:free:nitro"]).field == "models[0]"
    # :online on a :free entry is documented (the web plugin, priced)
    assert not plan(WEB, model="acme/small:free:online", max_tokens=10).is_free


def test_many_routers_and_globs_are_one_pool():
    globs = [f"acme/{c}*" for c in "abcdefghijklmnopqrstuvwxyz"] * 3 + [f"openai/x{i}" for i in range(21)]
    body = {"model": "openrouter/auto", "models": ["openrouter/auto"] * 8, "max_tokens": 10,
            "plugins": [{"id": "auto-router", "allowed_models": globs}]}
    p = plan(**body)
    assert len(globs) == 99
    assert sorted(p.candidates) == ["acme/big", "acme/small", "acme/small:free", "acme/think", "acme/web-priced",
                                    "acme/zero-odd"]


def test_an_override_priced_under_an_unknown_name_refuses_the_model():
    catalog = parse_catalog({"data": [
        {"id": "x/tiered", "pricing": {"prompt": "0.000001", "completion": "0.000001", "overrides": [
            {"min_prompt_tokens": 200000, "utc_start": "09:00", "prompt": "0.000002", "video_seconds": "0.2"}]}},
        {"id": "x/plain-tiers", "pricing": {"prompt": "0.000001", "completion": "0.000001", "overrides": [
            {"min_prompt_tokens": 200000, "utc_start": "09:00", "prompt": "0.000002"}]}}]}, "openrouter")
    assert catalog.get("x/tiered").unknown_prices == ("overrides.video_seconds",)
    assert catalog.get("x/plain-tiers").unknown_prices == ()


def test_a_searching_model_with_the_server_tool_is_refused():
    err = refused(LISTED, model="acme/deep", tools=[{"type": "openrouter:web_search"}])
    assert (err.status, err.field) == (400, "tools")


def test_a_search_preview_model_is_reserved_for_its_one_documented_search():
    """OpenAI's search models search once per request: no operator listing, but web search must
    be allowed; reserved 1 x web_search + 2 steps x (context x prompt + completion bound x output)."""
    catalog = parse_catalog({"data": [{"id": "openai/gpt-4o-mini-search-preview", "context_length": 128_000,
                                       "pricing": {"prompt": "0.00000015", "completion": "0.0000006",
                                                   "web_search": "0.0275"}}]}, "openrouter")
    body = {"model": "openai/gpt-4o-mini-search-preview", "messages": HI, "max_tokens": 100}
    with pytest.raises(PolicyError) as info:
        plan_call(body, catalog, DEFAULTS)
    assert info.value.code == "web_search_disabled"
    p = plan_call(body, catalog, WEB)
    assert p.worst_case_nanos == 27_500_000 + 2 * (128_000 * 150 + 100 * 600) == 66_020_000


@pytest.mark.parametrize("model, tokens", [
    ("openai/gpt-5.1-codex-mini", (2489, 2489)), ("openai/gpt-5-nano", (3779, 3779)),
    ("openai/gpt-4.1-mini", (2489, 2489)), ("openai/gpt-4.1", (1445, 85)), ("openai/gpt-5", (1190, 70)),
    ("openai/gpt-4o-mini-search-preview", (48_169, 2833)), ("openai/o4-mini-deep-research", (2642, 2642)),
    ("openai/some-new-model", None), ("google/gemini-2.5-flash", None), ("qwen/qwen3-coder", None),
])
def test_each_family_is_recognised_from_the_model_name(model, tokens):
    from tokenledger.policy.images import family_tokens

    assert family_tokens(model) == tokens
