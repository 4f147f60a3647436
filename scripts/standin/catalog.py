"""Model catalog: the /models payload plus the prices the stand-in bills with.

The JSON file is in OpenRouter's own /models format ({"data": [...]}). Two facts
OpenRouter does not publish per model (which provider name answers, and what the
router ids like openrouter/auto actually serve) live under a separate top-level
"x_standin" key so they never leak into the /models response.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_MODELS_PATH = Path(__file__).resolve().parent.parent / "standin_models.json"

# Used when a custom catalog has no x_standin.providers entry for a model.
_PROVIDER_BY_PREFIX = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "deepseek": "DeepInfra",
    "mistralai": "Mistral",
    "meta-llama": "Chutes",
    "perplexity": "Perplexity",
}

ZERO = Decimal(0)
VARIANTS = ("nitro", "floor", "exacto", "online")


def _price(pricing: dict, key: str) -> Decimal | None:
    """Decimal price for key, None when the model has no such price."""
    raw = pricing.get(key)
    if raw is None:
        return None
    try:
        # str() first so a float like 0.2 becomes Decimal("0.2"), not its binary value.
        return Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"bad price {key}={raw!r}") from exc


def _tiers(overrides) -> tuple:
    out = []
    for entry in overrides if isinstance(overrides, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("min_prompt_tokens"), int):
            out.append((entry["min_prompt_tokens"], {k: v for k, v in entry.items() if k != "min_prompt_tokens"}))
    return tuple(sorted(out, key=lambda tier: tier[0]))


WRITE_5M, WRITE_1H = Decimal("1.25"), Decimal(2)  # Anthropic's cache-write multipliers


@dataclass(frozen=True)
class Prices:
    """USD per unit. Optional prices are None when the model does not list them."""

    prompt: Decimal
    completion: Decimal
    cache_read: Decimal | None
    cache_write: Decimal | None
    internal_reasoning: Decimal | None
    request: Decimal
    image: Decimal | None
    discount: Decimal
    cache_write_1h: Decimal | None = None  # Anthropic's 1-hour cache writes (cache_control ttl "1h")
    web_search: Decimal = ZERO  # per search a model that searches by itself makes
    # pricing.overrides: (min_prompt_tokens, the override's own prices) — long-context tiers
    tiers: tuple = ()

    @classmethod
    def from_pricing(cls, pricing: dict) -> "Prices":
        prompt = _price(pricing, "prompt")
        completion = _price(pricing, "completion")
        if prompt is None or completion is None:
            raise ValueError("pricing needs prompt and completion")
        return cls(
            prompt=prompt,
            completion=completion,
            cache_read=_price(pricing, "input_cache_read"),
            cache_write=_price(pricing, "input_cache_write"),
            internal_reasoning=_price(pricing, "internal_reasoning"),
            request=_price(pricing, "request") or ZERO,
            image=_price(pricing, "image"),
            discount=_price(pricing, "discount") or ZERO,
            cache_write_1h=_price(pricing, "input_cache_write_1h"),
            web_search=_price(pricing, "web_search") or ZERO,
            tiers=_tiers(pricing.get("overrides")),
        )

    def in_force(self, prompt_tokens: int, one_hour: bool) -> "Prices":
        """The prices a call is billed at: the long-context override its prompt reaches (a price
        the override leaves out is the base one, except cache writes, which follow the tier's
        prompt price at Anthropic's multipliers: 1.25x, 1-hour 2x), then the 1-hour write price
        when a part asks for it (2x the prompt price where the model lists none)."""
        prices = self
        for minimum, pricing in self.tiers:
            if prompt_tokens >= minimum:
                prompt = _price(pricing, "prompt") or self.prompt
                writes = self.cache_write is not None
                prices = replace(
                    self, prompt=prompt,
                    completion=_price(pricing, "completion") or self.completion,
                    cache_read=_price(pricing, "input_cache_read") or self.cache_read,
                    cache_write=_price(pricing, "input_cache_write") or (prompt * WRITE_5M if writes else None),
                    cache_write_1h=_price(pricing, "input_cache_write_1h") or (prompt * WRITE_1H if writes else None),
                    internal_reasoning=_price(pricing, "internal_reasoning") or self.internal_reasoning,
                )
        if one_hour and prices.cache_write is not None:
            one_hour_price = prices.cache_write_1h if prices.cache_write_1h is not None else prices.prompt * WRITE_1H
            prices = replace(prices, cache_write=one_hour_price)
        return prices

    def scaled(self, factor: Decimal) -> "Prices":
        """Every price times factor (a cheaper tier of the same model)."""
        def times(value):
            return None if value is None else value * factor
        return replace(self, prompt=self.prompt * factor, completion=self.completion * factor,
                       cache_read=times(self.cache_read), cache_write=times(self.cache_write),
                       internal_reasoning=times(self.internal_reasoning), request=self.request * factor,
                       image=times(self.image), cache_write_1h=times(self.cache_write_1h))

    @property
    def variable(self) -> bool:
        # OpenRouter marks router models with "-1": the price is the served model's.
        return self.prompt < 0 or self.completion < 0


class Catalog:
    def __init__(self, payload: dict):
        models = payload.get("data")
        if not isinstance(models, list):
            raise ValueError('catalog must be {"data": [...]}')
        extra = payload.get("x_standin") or {}
        self._original = copy.deepcopy(payload)
        self._models: list[dict] = models
        self._by_id: dict[str, dict] = {}
        self._prices: dict[str, Prices] = {}
        for model in models:
            mid = model["id"]
            self._by_id[mid] = model
            self._prices[mid] = Prices.from_pricing(model.get("pricing") or {})
        self._providers: dict[str, str] = dict(extra.get("providers") or {})
        self._routes: dict[str, str] = dict(extra.get("routes") or {})
        # Models that search the web by themselves: {id: {"searches": default count,
        # "read_tokens": what each search adds to the prompt}}
        self._searching: dict[str, dict] = dict(extra.get("searching") or {})
        for mid, prices in self._prices.items():
            target = self._routes.get(mid)
            if prices.variable and target not in self._by_id:
                raise ValueError(f"{mid} has variable pricing but no route to a priced model")
            if target is not None and target not in self._by_id:
                raise ValueError(f"route {mid} -> {target}: unknown target")

    def set_pricing(self, model_id: str, pricing: dict) -> dict:
        """Change a model's prices (merged into its pricing), as OpenRouter does now and then."""
        model = self._by_id.get(model_id)
        if model is None:
            raise ValueError(f"unknown model {model_id!r}")
        merged = {**(model.get("pricing") or {}), **pricing}
        prices = Prices.from_pricing(merged)  # raises ValueError on a bad price
        model["pricing"] = merged
        self._prices[model_id] = prices
        return copy.deepcopy(merged)

    def add_model(self, entry: dict) -> None:
        """List a new model (a release newer than the client's cached catalog)."""
        mid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(mid, str) or not mid:
            raise ValueError("a model needs an id")
        prices = Prices.from_pricing(entry.get("pricing") or {})  # raises ValueError on a bad price
        if prices.variable:
            raise ValueError("only priced models can be added")
        self._models.append(copy.deepcopy(entry))
        self._by_id[mid] = self._models[-1]
        self._prices[mid] = prices

    def resolve(self, model_id: str) -> tuple[str, str | None] | None:
        """(catalog id, routing variant) for a requested id; None when OpenRouter would not know
        it. Variants (`:nitro`, `:floor`, `:exacto`, `:online`) are not listed in /models but
        accepted on any model."""
        if model_id in self._by_id:
            return model_id, None
        base, sep, suffix = model_id.rpartition(":")
        if sep and suffix in VARIANTS and base in self._by_id:
            return base, suffix
        return None

    def reset(self) -> None:
        """Back to the prices the catalog was loaded with."""
        original = self._original
        self.__init__(copy.deepcopy(original))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Catalog":
        with open(path or DEFAULT_MODELS_PATH, encoding="utf-8") as fh:
            return cls(json.load(fh))

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._by_id

    def listing(self, output_modalities: set[str] | None) -> list[dict]:
        """Models for /models; None means every model."""
        out = []
        for model in self._models:
            outputs = set((model.get("architecture") or {}).get("output_modalities") or [])
            if output_modalities is None or outputs & output_modalities:
                out.append(copy.deepcopy(model))
        return out

    def ids(self) -> list[str]:
        return list(self._by_id)

    def route(self, model_id: str) -> str:
        """The model that actually serves a request for model_id."""
        return self._routes.get(model_id, model_id)

    def prices(self, model_id: str) -> Prices:
        return self._prices[model_id]

    def provider(self, model_id: str) -> str:
        if model_id in self._providers:
            return self._providers[model_id]
        prefix = model_id.split("/", 1)[0]
        return _PROVIDER_BY_PREFIX.get(prefix, prefix.capitalize() or "Unknown")

    def is_reasoning(self, model_id: str) -> bool:
        prices = self._prices.get(model_id)
        has_reasoning_price = prices is not None and prices.internal_reasoning is not None
        return has_reasoning_price or "r1" in model_id

    def searching(self, model_id: str) -> dict | None:
        return self._searching.get(model_id)

    def model(self, model_id: str) -> dict[str, Any] | None:
        return self._by_id.get(model_id)
