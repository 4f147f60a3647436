"""Which model serves a chat call and at which listed prices, as OpenRouter routes it: the first
of model + models that is up (a fallback bills as the model that served), routers pick a model,
variants (`:floor`, `:online`, ...) are served by their base model; provider.max_price keeps a
call off an endpoint listed dearer than the caller allows."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from decimal import Decimal

from .billing import FLOOR_FACTOR
from .catalog import ZERO, Catalog, Prices
from .responses import DEFAULT_ERROR_MESSAGES, ApiError

MILLION = Decimal(10**6)  # provider.max_price is USD per million tokens


@dataclass(frozen=True)
class Route:
    base: str  # the catalog id asked for (or the fallback that was up)
    variant: str | None  # "floor", "online", ... or None
    served: str  # the model named in the answer
    priced: str  # the catalog model whose prices bill the call
    provider: str


def pick_route(catalog: Catalog, chain: list[str], behaviour: dict, plugins) -> Route:
    """The route of a call; ApiError 503 when every model of the chain is scripted down."""
    down = set(behaviour.get("unavailable") or [])
    chosen = next((m for m in chain if m not in down and catalog.resolve(m)[0] not in down), None)
    if chosen is None:
        raise ApiError(503, DEFAULT_ERROR_MESSAGES[503])
    base, variant = catalog.resolve(chosen)
    if catalog.prices(base).variable or catalog.route(base) != base:  # a router
        served = behaviour.get("served_model") or _routed(catalog, base, plugins)
    else:
        served = behaviour.get("served_model") or base
    priced = served if served in catalog and not catalog.prices(served).variable else catalog.route(base)
    provider = behaviour.get("provider") or catalog.provider(served if served in catalog else priced)
    return Route(base, variant, served, priced, provider)


def check_max_price(body: dict, route: Route, listed: Prices) -> None:
    """ApiError 404 when the served endpoint's listed prices (a :floor call's flex tier) break
    the request's provider.max_price."""
    over = _over_max_price(body.get("provider"), listed.scaled(FLOOR_FACTOR) if route.variant == "floor" else listed)
    if over:
        raise ApiError(404, f"No endpoints found for {route.served} within provider.max_price ({over})")


def _over_max_price(provider, listed) -> str | None:
    """provider.max_price (USD per million tokens; per request, per image): OpenRouter serves a
    request only from an endpoint whose listed prices are all within it. The price field over it."""
    limits = provider.get("max_price") if isinstance(provider, dict) else None
    if not isinstance(limits, dict):
        return None
    asked = {"prompt": listed.prompt * MILLION, "completion": listed.completion * MILLION,
             "request": listed.request, "image": listed.image or ZERO}
    for name, price in asked.items():
        limit = limits.get(name)
        if isinstance(limit, (int, float)) and not isinstance(limit, bool) and price > Decimal(repr(limit)):
            return name
    return None


def _routed(catalog: Catalog, router: str, plugins) -> str:
    """The model a router serves: within the auto router's allowed_models when pinned (the
    dearest of them: a router owes the caller no thrift), else the catalog's route."""
    for plugin in plugins if isinstance(plugins, list) else ():
        if isinstance(plugin, dict) and plugin.get("id") == "auto-router":
            patterns = [p for p in plugin.get("allowed_models") or [] if isinstance(p, str)]
            pool = [m for m in catalog.ids() if not catalog.prices(m).variable
                    and any(fnmatch.fnmatchcase(m, p) for p in patterns)]
            if pool:
                return max(pool, key=lambda m: (catalog.prices(m).completion, catalog.prices(m).prompt))
    return catalog.route(router)
