"""Models whose cost the request cannot bound by itself (pure): a model listing a price field
this app does not understand, and models that search the web by themselves (deep research,
search previews: `searches` in pricing/prices.py).

A searching model decides how often it searches ($`web_search` each) and reads what it finds
over internal steps, each re-reading the growing prompt. It is refused unless web search is
allowed. OpenAI's search-preview models search once per request (OpenAI documents it): they are
reserved for that one search. For the others (deep research) OpenRouter documents no bound on
the number of searches, so they are admitted only when an operator lists them
(TOKENLEDGER_SEARCH_MODELS), and reserved for TOKENLEDGER_MAX_SEARCHES_PER_CALL searches. Either
way: one internal step per search plus the answer, each reading up to the model's whole context
and writing up to the completion bound. A listed model that searches more than that is billed
past its reservation: listing it is the operator accepting that.
"""
from __future__ import annotations

import math
from decimal import Decimal

from tokenledger import money
from tokenledger.config import Settings
from tokenledger.policy.errors import PolicyError
from tokenledger.pricing.prices import ModelPrice


ONE_SEARCH = "search-preview"  # OpenAI: a search model runs one web search per request


def documented_searches(p: ModelPrice) -> int | None:
    """The searches a model makes per call where its provider documents it, else None."""
    return 1 if p.model_id.startswith("openai/") and ONE_SEARCH in p.model_id else None


def _field(model_id: str, body: dict) -> str:
    return "model" if body.get("model") == model_id else "models"


def check(prices: tuple[ModelPrice, ...], body: dict, settings: Settings, loop_steps: int = 0) -> tuple[ModelPrice, ...]:
    """Refuse what cannot be bounded; the searching models admitted (each once). A searching
    model with the web search server tool is refused: each step of the tool's loop would be a
    whole research run of its own."""
    searching = {}
    for p in prices:
        field = _field(p.model_id, body)
        if p.unknown_prices:
            raise PolicyError(400, "unpriced_model", f"The model '{p.model_id}' lists prices this app cannot bound "
                              f"({', '.join(p.unknown_prices)}); it is refused rather than priced at $0 for them.", field)
        if not p.searches:
            continue
        if not settings.allow_web_search:
            raise PolicyError(400, "web_search_disabled", f"{field}: the model '{p.model_id}' searches the web by itself, "
                              "and web search is not enabled for this app (TOKENLEDGER_ALLOW_WEB_SEARCH).", field)
        if documented_searches(p) is None and p.model_id not in settings.search_models:
            raise PolicyError(403, "search_model_not_listed",
                              f"The model '{p.model_id}' searches the web by itself: OpenRouter documents no bound on "
                              "how many searches it makes (each billed) or how much it reads per call, so this app "
                              "admits it only when an operator lists it in TOKENLEDGER_SEARCH_MODELS.", field)
        if loop_steps:
            raise PolicyError(400, "invalid_request", f"tools: the model '{p.model_id}' searches the web by itself; "
                              "the web search server tool would run it once per step.", "tools")
        if p.context_length is None:
            raise PolicyError(400, "unsupported_model", f"The model '{p.model_id}' searches the web by itself and its "
                              "context length is not known, so what it reads cannot be bounded.", field)
        searching[p.model_id] = p
    return tuple(searching.values())


def worst_case_nanos(p: ModelPrice, completion: int, one_hour_cache: bool, settings: Settings) -> int:
    """searches x web_search + (searches + 1) x (whole context x dearest input price + completion
    bound x dearest output price) + request price; no discount. Searches: the documented count,
    else TOKENLEDGER_MAX_SEARCHES_PER_CALL."""
    searches = documented_searches(p) or settings.max_searches_per_call
    prompt_price = max(p.ceiling("prompt"), p.write_ceiling(one_hour_cache))
    completion_price = max(p.ceiling("completion"), p.ceiling("internal_reasoning"))
    usd: Decimal = (searches * p.ceiling("web_search") + p.ceiling("request")
                    + (searches + 1) * (p.context_length * prompt_price + completion * completion_price))
    return int(math.ceil(usd * money.NANOS_PER_USD))
