"""The price catalog and the catalog estimate of a call's cost (pure: no I/O).

OpenRouter publishes prices as decimal strings, USD per token (or per request / image).
The estimate mirrors how OpenRouter bills: cached prompt tokens at the cache-read price,
cache writes at the cache-write price (both are already inside prompt_tokens, so they are
never added twice), reasoning tokens as completion tokens (at `internal_reasoning` when the
model has that price), per-request and per-image prices, then the discount.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tokenledger.money import ZERO, to_decimal

PRICE_FIELDS = (
    "prompt",
    "completion",
    "internal_reasoning",
    "input_cache_read",
    "input_cache_write",
    "input_cache_write_1h",
    "request",
    "image",
    "web_search",  # per search a model makes with its own (native) search
)
# Keys of `pricing` that are not prices, and prices this app never incurs (audio parts are refused).
NOT_PRICES = ("discount", "overrides")
NEVER_INCURRED = ("audio", "input_audio_cache")
# Anthropic's documented cache-write premiums over the prompt price of the tier in force.
WRITE_5M, WRITE_1H = Decimal("1.25"), Decimal(2)
# Ids, names and descriptions that say a model searches the web by itself.
SEARCHING_MARKERS = ("deep-research", "deep research", "search-preview", "search preview", "searches the web",
                     "web search queries", "web searches")


@dataclass(frozen=True)
class ModelPrice:
    model_id: str
    name: str = ""
    prompt: Decimal = ZERO
    completion: Decimal = ZERO
    internal_reasoning: Decimal | None = None
    input_cache_read: Decimal | None = None
    input_cache_write: Decimal | None = None
    input_cache_write_1h: Decimal | None = None  # Anthropic's 1-hour cache (cache_control ttl "1h")
    request: Decimal = ZERO
    image: Decimal = ZERO
    discount: Decimal = ZERO
    # Routers such as openrouter/auto publish "-1": the price is that of the model served.
    variable: bool = False
    context_length: int | None = None
    max_completion_tokens: int | None = None
    # pricing.overrides: conditional prices (long prompts, time windows). Per price key, the
    # highest any override sets: the top-level values are only the price in force right now.
    conditional: tuple[tuple[str, Decimal], ...] = ()
    web_search: Decimal = ZERO
    # Each override's own prices (a tier: a key it leaves out is not necessarily the base price).
    tiers: tuple[tuple[tuple[str, Decimal], ...], ...] = ()
    # Price fields /models gave that this app does not understand (or could not read): such a
    # model is refused, never priced at $0 for them.
    unknown_prices: tuple[str, ...] = ()
    searches: bool = False  # it searches the web by itself (deep research, search previews)

    def ceiling(self, name: str) -> Decimal:
        """The most this model can bill per unit of `name`, whatever override applies."""
        return max(getattr(self, name) or ZERO, dict(self.conditional).get(name, ZERO))

    @property
    def bills_cache_writes(self) -> bool:
        names = ("input_cache_write", "input_cache_write_1h")
        return any(getattr(self, n) is not None for n in names) or any(k in names for k, _ in self.conditional)

    def write_ceiling(self, one_hour: bool) -> Decimal:
        """The dearest price a prompt-cache write can bill: per tier (the top-level prices and each
        override), its listed write price, or where the tier lists none its prompt price times
        Anthropic's premium (1.25; 1-hour writes 2). ZERO for a model that bills no writes."""
        if not self.bills_cache_writes:
            return ZERO
        base = {n: getattr(self, n) for n in ("prompt", "input_cache_write", "input_cache_write_1h")}
        dearest = ZERO
        for tier in ({k: v for k, v in base.items() if v is not None}, *(dict(t) for t in self.tiers)):
            prompt = tier.get("prompt", self.prompt)
            write = tier.get("input_cache_write", prompt * WRITE_5M)
            if one_hour:
                write = max(write, tier.get("input_cache_write_1h", prompt * WRITE_1H))
            dearest = max(dearest, write)
        return dearest

    @property
    def is_free(self) -> bool:
        return not self.variable and not self.unknown_prices and all(
            (getattr(self, name) or ZERO) == ZERO for name in PRICE_FIELDS
        )

    def pricing_strings(self) -> dict[str, str]:
        """Prices as OpenRouter writes them (strings), for API answers and storage."""
        if self.variable:
            return {"prompt": "-1", "completion": "-1"}
        out = {}
        for name in PRICE_FIELDS:
            value = getattr(self, name)
            if value is not None and (value != ZERO or name in ("prompt", "completion")):
                out[name] = format(value.normalize(), "f")
        if self.discount:
            out["discount"] = format(self.discount.normalize(), "f")
        return out


@dataclass(frozen=True)
class TokenCounts:
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0
    images: int = 0


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelPrice]
    source: str  # openrouter | stored | snapshot
    fetched_at: datetime | None = None
    extra: dict = field(default_factory=dict)

    def get(self, model_id: str) -> ModelPrice | None:
        return self.models.get(model_id)

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.models


def _price(pricing: dict, name: str) -> Decimal | None:
    value = to_decimal(pricing.get(name))
    return value if value is not None and value >= ZERO else None


def _context(entry: dict, top: dict) -> int | None:
    """The longest prompt OpenRouter can route: the model's context, which can exceed the top
    provider's (other providers serve more)."""
    sizes = [n for n in (entry.get("context_length"), top.get("context_length"))
             if isinstance(n, int) and not isinstance(n, bool) and n > 0]
    return max(sizes) if sizes else None


def parse_model(entry: dict) -> ModelPrice | None:
    """One entry of GET /models -> ModelPrice; None when it has no usable id."""
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    pricing = entry.get("pricing") or {}
    prompt_raw = to_decimal(pricing.get("prompt"))
    completion_raw = to_decimal(pricing.get("completion"))
    variable = (prompt_raw is not None and prompt_raw < 0) or (
        completion_raw is not None and completion_raw < 0
    )
    top = entry.get("top_provider") or {}
    discount = to_decimal(pricing.get("discount")) or ZERO
    tiers = _tiers(pricing.get("overrides"))
    return ModelPrice(
        model_id=model_id,
        name=str(entry.get("name") or model_id),
        prompt=_price(pricing, "prompt") or ZERO,
        completion=_price(pricing, "completion") or ZERO,
        internal_reasoning=_price(pricing, "internal_reasoning"),
        input_cache_read=_price(pricing, "input_cache_read"),
        input_cache_write=_price(pricing, "input_cache_write"),
        input_cache_write_1h=_price(pricing, "input_cache_write_1h"),
        request=_price(pricing, "request") or ZERO,
        image=_price(pricing, "image") or ZERO,
        discount=discount if ZERO <= discount < 1 else ZERO,
        variable=variable,
        context_length=_context(entry, top),
        max_completion_tokens=top.get("max_completion_tokens"),
        conditional=_conditional(tiers),
        web_search=_price(pricing, "web_search") or ZERO,
        tiers=tiers,
        unknown_prices=_unknown_prices(pricing, variable) + _unknown_override_prices(pricing.get("overrides"))
        + tuple(entry.get("x_unknown_prices") or ()),
        searches=entry.get("x_searches") is True or _says_it_searches(entry),
    )


def _tiers(overrides) -> tuple[tuple[tuple[str, Decimal], ...], ...]:
    """Each override's prices (malformed entries are skipped)."""
    tiers = []
    for entry in overrides if isinstance(overrides, list) else ():
        if isinstance(entry, dict):
            prices = tuple((n, v) for n in PRICE_FIELDS if (v := _price(entry, n)) is not None)
            if prices:
                tiers.append(prices)
    return tuple(tiers)


def _conditional(tiers) -> tuple[tuple[str, Decimal], ...]:
    """Per price key, the highest value any override sets."""
    highest: dict[str, Decimal] = {}
    for tier in tiers:
        for name, value in tier:
            if value > highest.get(name, ZERO):
                highest[name] = value
    return tuple(sorted(highest.items()))


def _unknown_prices(pricing: dict, variable: bool) -> tuple[str, ...]:
    """Price fields this app cannot bound: keys it does not know with a value other than 0, and
    known prices it cannot read (a router's "-1" prompt and completion aside)."""
    unknown = []
    for name, raw in pricing.items():
        value = to_decimal(raw)
        if name in NOT_PRICES or name in NEVER_INCURRED:
            continue
        if name not in PRICE_FIELDS:
            if value is None or value != ZERO:
                unknown.append(str(name)[:40])
        elif raw is not None and (value is None or (value < ZERO and not (variable and name in ("prompt", "completion")))):
            unknown.append(name)
    return tuple(sorted(unknown))


def _unknown_override_prices(overrides) -> tuple[str, ...]:
    """Prices an override sets under a name this app does not know. Prices are decimal strings;
    conditions (`min_prompt_tokens`: a number, `utc_start`: a time) are not."""
    unknown = set()
    for entry in overrides if isinstance(overrides, list) else ():
        for name, raw in entry.items() if isinstance(entry, dict) else ():
            if name not in PRICE_FIELDS and name not in NEVER_INCURRED and isinstance(raw, str) \
                    and to_decimal(raw) not in (None, ZERO):
                unknown.add(f"overrides.{str(name)[:40]}")
    return tuple(sorted(unknown))


def _says_it_searches(entry: dict) -> bool:
    text = " ".join(str(entry.get(k) or "") for k in ("id", "name", "description")).lower()
    return any(marker in text for marker in SEARCHING_MARKERS)


def parse_catalog(models_json: dict, source: str, fetched_at: datetime | None = None) -> Catalog:
    models = {}
    for entry in models_json.get("data") or []:
        price = parse_model(entry)
        if price is not None:
            models[price.model_id] = price
    return Catalog(models=models, source=source, fetched_at=fetched_at)


def catalog_to_models_json(catalog: Catalog) -> dict:
    """The compact /models-shaped form the catalog is stored in (fits one Firestore doc)."""
    return {
        "data": [
            {
                "id": p.model_id,
                "name": p.name,
                "pricing": {**p.pricing_strings(),
                            **({"overrides": [{k: format(v.normalize(), "f") for k, v in tier} for tier in p.tiers]}
                               if p.tiers else {})},
                "top_provider": {
                    "context_length": p.context_length,
                    "max_completion_tokens": p.max_completion_tokens,
                },
                **({"x_unknown_prices": list(p.unknown_prices)} if p.unknown_prices else {}),
                **({"x_searches": True} if p.searches else {}),
            }
            for p in catalog.models.values()
        ]
    }


def fallback_price(model_id: str, prompt: Decimal, completion: Decimal) -> ModelPrice:
    """The conservative price used for a model the catalog does not know: never $0."""
    return ModelPrice(model_id=model_id, name=model_id, prompt=prompt, completion=completion)


def estimate_cost(price: ModelPrice, tokens: TokenCounts) -> Decimal:
    """What the catalog says this call costs, in USD (exact)."""
    cached = min(tokens.cached, tokens.prompt)
    cache_write = min(tokens.cache_write, tokens.prompt - cached)
    uncached = tokens.prompt - cached - cache_write
    reasoning = min(tokens.reasoning, tokens.completion)
    cache_read_price = price.input_cache_read if price.input_cache_read is not None else price.prompt
    cache_write_price = (
        price.input_cache_write if price.input_cache_write is not None else price.prompt
    )
    reasoning_price = (
        price.internal_reasoning if price.internal_reasoning is not None else price.completion
    )
    total = (
        uncached * price.prompt
        + cached * cache_read_price
        + cache_write * cache_write_price
        + (tokens.completion - reasoning) * price.completion
        + reasoning * reasoning_price
        + price.request
        + tokens.images * price.image
    )
    return total * (1 - price.discount)


def worst_case_cost(price: ModelPrice, prompt_tokens: int, max_completion_tokens: int) -> Decimal:
    """Upper bound of a call before it is made: full-price prompt and every completion token."""
    completion_price = max(price.completion, price.internal_reasoning or ZERO)
    total = prompt_tokens * price.prompt + max_completion_tokens * completion_price + price.request
    return total * (1 - price.discount)


@dataclass(frozen=True)
class PriceChange:
    model_id: str
    field: str  # a price field, or "model" when the model was added / removed
    old: str | None
    new: str | None


def price_changes(old: Catalog, new: Catalog) -> list[PriceChange]:
    """Every price that differs between two catalogs, plus models added and removed."""
    changes: list[PriceChange] = []
    for model_id in sorted(old.models.keys() | new.models.keys()):
        before, after = old.get(model_id), new.get(model_id)
        if before is None or after is None:
            changes.append(PriceChange(model_id, "model", None if before is None else "listed",
                                       None if after is None else "listed"))
            continue
        a, b = before.pricing_strings(), after.pricing_strings()
        for name in sorted(a.keys() | b.keys()):
            if a.get(name) != b.get(name):
                changes.append(PriceChange(model_id, name, a.get(name), b.get(name)))
    return changes
