"""Every model a call can end up on, and whether the app allows each (pure).

A call can be served by the model it names, by any entry of its `models` fallback list, or —
for a router (price "-1" in /models, e.g. openrouter/auto) — by any model of the router's pool.
Routing variants (`:nitro`, `:floor`, `:exacto`) are not catalog entries: they are served at
their base model's price or below. `:online` is the base model plus the web plugin.
"""
from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

from tokenledger.policy import values as v
from tokenledger.policy.errors import PolicyError, bad
from tokenledger.pricing.prices import Catalog, ModelPrice

ROUTING_VARIANTS = ("nitro", "floor", "exacto")
WEB_VARIANT = "online"
MAX_FALLBACK_MODELS = 8
AUTO_ROUTER_PLUGIN = "auto-router"
# A pin glob selects models by vendor and name (`openai/*`, `*/gpt-4o*`): a few wildcards. A glob
# made of wildcards, new on every request, costs its compile and match ~100x a plain one's CPU.
MAX_GLOB_WILDCARDS = 3
# The pattern compiled from a pin grows with its text (pure-Python regex compile): bounded in all.
MAX_PIN_CHARACTERS = 2000


@dataclass(frozen=True)
class Candidates:
    requested: str
    record_price: ModelPrice  # the requested model's entry (its base model's for a variant)
    prices: tuple[ModelPrice, ...]  # every model the call can be served by (routers expanded)
    online: bool  # some candidate carries `:online` (web search)
    router_pool: tuple[str, ...] | None  # ids the auto router is pinned to upstream, if any

    @property
    def all_free(self) -> bool:
        return all(p.is_free for p in self.prices)


@functools.lru_cache(maxsize=256)
def _globs(patterns: tuple[str, ...]) -> re.Pattern:
    """Every glob of a list as one compiled pattern (one match per model, not one per glob)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True)
class Tier:
    """The models a user's plan allows (ids or globs; empty: all the deployment allows)."""

    plan_id: str
    allowed: tuple[str, ...]


def is_allowed(model_id: str, allowed: tuple[str, ...]) -> bool:
    return not allowed or _globs(tuple(allowed)).match(model_id) is not None


def unroutable(price: ModelPrice) -> bool:
    """Kept out of a router's pool: prices this app cannot bound, or a model that searches by itself."""
    return bool(price.unknown_prices) or price.searches


def stacked(model_id: str) -> bool:
    """A routing variant on an id that already carries a suffix (`...:free:floor`): OpenRouter
    documents variants on a model, not on a variant, so what it would bill is unknown."""
    base, variant = split_variant(model_id)
    return variant in ROUTING_VARIANTS and ":" in base.rsplit("/", 1)[-1]


def split_variant(model_id: str) -> tuple[str, str | None]:
    base, sep, suffix = model_id.rpartition(":")
    if sep and suffix in ROUTING_VARIANTS + (WEB_VARIANT,):
        return base, suffix
    return model_id, None


def lookup(model_id: str, catalog: Catalog) -> tuple[ModelPrice | None, str | None]:
    """(catalog price, variant) of a model id; catalog entries win over suffix parsing
    (`:free`, `:thinking` are entries with their own prices)."""
    price = catalog.get(model_id)
    if price is not None:
        return price, None
    base, variant = split_variant(model_id)
    if variant is None:
        return None, None
    return catalog.get(base), variant


def router_pool(catalog: Catalog, allowed: tuple[str, ...], pinned: list[str] | None,
                tier: Tier | None = None) -> tuple[list[ModelPrice], bool]:
    """(the models a router may serve the call with, whether any was left out as unroutable);
    `tier`: only the models the caller's plan allows."""
    pool, left_out = [], False
    for p in catalog.models.values():
        if p.variable or not is_allowed(p.model_id, allowed) or (pinned is not None and not is_allowed(p.model_id, tuple(pinned))):
            continue
        if tier is not None and not is_allowed(p.model_id, tier.allowed):
            continue
        if unroutable(p):
            left_out = True
        else:
            pool.append(p)
    return pool, left_out


def not_in_plan(model_id: str, tier: Tier, field: str) -> PolicyError:
    return PolicyError(403, "model_not_in_plan",
                       f"The model '{model_id}' is not in your plan '{tier.plan_id}'.", field)


def pinned_patterns(plugins: object) -> list[str] | None:
    """The auto router's allowed_models from the client's plugins, if it pinned them."""
    for plugin in plugins if isinstance(plugins, list) else ():
        if isinstance(plugin, dict) and plugin.get("id") == AUTO_ROUTER_PLUGIN:
            models = v.array("plugins.auto-router.allowed_models", plugin.get("allowed_models"), 100, 1)
            for i, pattern in enumerate(models):
                _pin_glob(f"plugins.auto-router.allowed_models[{i}]", pattern)
            if sum(len(pattern) for pattern in models) > MAX_PIN_CHARACTERS:
                raise bad("plugins.auto-router.allowed_models", f"the globs hold more than {MAX_PIN_CHARACTERS:,} "
                          "characters in all", "invalid_parameter")
            return models
    return None


def _pin_glob(field: str, pattern: object) -> str:
    v.string(field, pattern, 200)
    if "[" in pattern or sum(pattern.count(c) for c in "*?") > MAX_GLOB_WILDCARDS:
        raise bad(field, f"a glob may hold at most {MAX_GLOB_WILDCARDS} wildcards (* or ?) and no [...] class; "
                  f"got '{pattern[:40]}'", "invalid_parameter")
    return pattern


def model_ids(body: dict) -> list[tuple[str, str]]:
    """(field, id) of the requested model and each fallback, in the order OpenRouter tries them."""
    ids = [("model", v.string("model", body.get("model"), 200))]
    if body.get("models") is not None:
        for i, item in enumerate(v.array("models", body["models"], MAX_FALLBACK_MODELS, 1)):
            ids.append((f"models[{i}]", v.string(f"models[{i}]", item, 200)))
    return ids


def resolve(body: dict, catalog: Catalog, allowed: tuple[str, ...], tier: Tier | None = None) -> Candidates:
    """Every model the call can end on; `tier`: the caller's plan's models (403 model_not_in_plan
    for any candidate outside it: requested, fallback or router pool)."""
    tier = tier if tier is not None and tier.allowed else None
    ids = model_ids(body)
    for field, model_id in ids:
        base, variant = split_variant(model_id)
        if not (is_allowed(model_id, allowed) or (variant and is_allowed(base, allowed))):
            raise PolicyError(400, "model_not_allowed", f"The model '{model_id}' is not allowed by this app.", field)
        if stacked(model_id):
            raise bad(field, f"'{model_id}' stacks a routing variant on a variant; OpenRouter does not document "
                      "what that bills (use one suffix)", "unsupported_model")
    for field, model_id in ids:
        base, variant = split_variant(model_id)
        if tier is not None and not (is_allowed(model_id, tier.allowed) or (variant and is_allowed(base, tier.allowed))):
            raise not_in_plan(model_id, tier, field)
    missing = tuple(model_id for _, model_id in ids if lookup(model_id, catalog)[0] is None)
    if missing:
        raise PolicyError(400, "model_not_found", f"The model '{missing[0]}' is not a model OpenRouter offers.",
                          "model" if missing[0] == ids[0][1] else "models", missing_models=missing)
    pinned = pinned_patterns(body.get("plugins"))
    prices: list[ModelPrice] = []
    online = False
    pool: list[ModelPrice] | None = None  # the same for every router of the call: computed once
    pool_ids: tuple[str, ...] | None = None
    for field, model_id in ids:
        price, variant = lookup(model_id, catalog)
        online = online or variant == WEB_VARIANT
        if not price.variable:
            prices.append(price)
            continue
        if pool is None:
            pool, left_out = router_pool(catalog, allowed, pinned, tier)
            if not pool and tier is not None and router_pool(catalog, allowed, pinned)[0]:
                raise not_in_plan(model_id, tier, field)
            if not pool:
                raise bad(field, f"the router '{model_id}' can route to no model this app allows", "model_not_allowed")
            prices.extend(pool)
            if allowed or pinned is not None or left_out or tier is not None:
                pool_ids = tuple(sorted(p.model_id for p in pool))
    record_price = lookup(ids[0][1], catalog)[0]
    return Candidates(ids[0][1], record_price, tuple(prices), online, pool_ids)
