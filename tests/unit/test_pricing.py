from decimal import Decimal

from tokenledger.pricing.prices import TokenCounts, estimate_cost, parse_catalog, parse_model, worst_case_cost

HAIKU = {
    "id": "anthropic/claude-3.5-haiku",
    "name": "Claude 3.5 Haiku",
    "pricing": {
        "prompt": "0.0000008",
        "completion": "0.000004",
        "input_cache_read": "0.00000008",
        "input_cache_write": "0.000001",
        "request": "0",
        "image": "0",
    },
    "top_provider": {"context_length": 200000, "max_completion_tokens": 8192},
}


def test_prices_are_exact_decimals_from_strings():
    price = parse_model(HAIKU)
    assert price.prompt == Decimal("0.0000008")
    assert price.input_cache_write == Decimal("0.000001")
    assert price.max_completion_tokens == 8192
    assert not price.is_free


def test_cache_reads_and_writes_are_priced_inside_prompt_tokens_not_added_again():
    price = parse_model(HAIKU)
    tokens = TokenCounts(prompt=1000, completion=100, cached=600, cache_write=300)
    # 100 uncached + 600 cache reads + 300 cache writes; completion 100.
    expected = (
        100 * Decimal("0.0000008")
        + 600 * Decimal("0.00000008")
        + 300 * Decimal("0.000001")
        + 100 * Decimal("0.000004")
    )
    assert estimate_cost(price, tokens) == expected


def test_reasoning_tokens_are_completion_tokens_at_the_reasoning_price():
    price = parse_model(
        {"id": "r", "pricing": {"prompt": "0.0000004", "completion": "0.000002", "internal_reasoning": "0.000003"}}
    )
    tokens = TokenCounts(prompt=10, completion=50, reasoning=20)
    assert estimate_cost(price, tokens) == 10 * Decimal("0.0000004") + 30 * Decimal("0.000002") + 20 * Decimal(
        "0.000003"
    )


def test_request_image_and_discount():
    price = parse_model(
        {
            "id": "x",
            "pricing": {"prompt": "0.000001", "completion": "0.000001", "request": "0.005", "image": "0.001", "discount": 0.2},
        }
    )
    cost = estimate_cost(price, TokenCounts(prompt=100, completion=100, images=2))
    assert cost == (Decimal("0.0002") + Decimal("0.005") + Decimal("0.002")) * Decimal("0.8")


def test_free_and_router_models():
    catalog = parse_catalog(
        {
            "data": [
                {"id": "meta-llama/llama-3.3-70b-instruct:free", "pricing": {"prompt": "0", "completion": "0"}},
                {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
                {"pricing": {"prompt": "1"}},
            ]
        },
        "test",
    )
    assert set(catalog.models) == {"meta-llama/llama-3.3-70b-instruct:free", "openrouter/auto"}
    assert catalog.get("meta-llama/llama-3.3-70b-instruct:free").is_free
    auto = catalog.get("openrouter/auto")
    assert auto.variable and not auto.is_free


def test_worst_case_bounds_the_estimate():
    price = parse_model(HAIKU)
    worst = worst_case_cost(price, prompt_tokens=1000, max_completion_tokens=200)
    assert worst >= estimate_cost(price, TokenCounts(prompt=1000, completion=200, cached=500))
    assert worst == 1000 * Decimal("0.0000008") + 200 * Decimal("0.000004")
