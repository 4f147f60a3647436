"""The hot path's pure rules: production vs emulator, rate limits, the feature cap, the budget
cache, the revocation cache and which upstream failures may have been billed."""
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import openai
import pytest

from tokenledger import config
from tokenledger.api.auth import UserStanding
from tokenledger.budgets import features, limits, rules
from tokenledger.budgets.cache import BudgetCache
from tokenledger.metering.rollups import map_key
from tokenledger.openrouter import map_transport_error

EMULATOR = {"FUNCTIONS_EMULATOR": "true", "FIREBASE_DEBUG_MODE": "true", "K_SERVICE": "api", "K_REVISION": "1"}
CLOUD_RUN = {"K_SERVICE": "api", "K_REVISION": "api-00001"}


@pytest.mark.parametrize(
    "env, production, emulator",
    [
        ({}, False, False),  # a script, the served_api test server
        (EMULATOR, False, True),
        (CLOUD_RUN, True, False),
        # A deployed .env may set FUNCTIONS_EMULATOR (not a reserved name): still production.
        ({**CLOUD_RUN, "FUNCTIONS_EMULATOR": "true"}, True, False),
        ({"FUNCTIONS_EMULATOR": "true"}, False, False),  # without the emulator's FIREBASE_ variable
    ],
)
def test_production_and_emulator_decision_table(env, production, emulator):
    assert config.is_production(env) is production
    assert config.is_emulator(env) is emulator


@pytest.mark.parametrize("variable", ["FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"])
def test_production_refuses_to_start_with_an_emulator_host(variable):
    with pytest.raises(config.UnsafeEnvironment, match=variable):
        config.check_environment({**CLOUD_RUN, variable: "127.0.0.1:8080"})
    config.check_environment({**EMULATOR, variable: "127.0.0.1:8080"})  # the emulator itself is fine
    config.check_environment(CLOUD_RUN)


NOW = datetime(2026, 11, 30, 23, 59, 30, tzinfo=timezone.utc)
LIMITED = rules.Budget(None, (), requests_per_minute=2, max_in_flight=1)


def test_rate_limit_rules_count_this_call_in():
    assert limits.check(2, 1, LIMITED, NOW) is None
    per_minute = limits.check(3, 1, LIMITED, NOW)
    assert (per_minute.limit_name, per_minute.limit, per_minute.retry_after_s) == ("requests_per_minute", 2, 30)
    in_flight = limits.check(1, 2, LIMITED, NOW)
    assert (in_flight.limit_name, in_flight.limit, in_flight.retry_after_s) == ("max_in_flight", 1, 1)
    assert limits.check(10**6, 10**6, rules.Budget(None, ()), NOW) is None  # 0: no limit
    assert limits.minute_key(NOW) == "2026-11-30T23:59"


def test_local_limiter_refuses_then_remembers_until_the_next_minute():
    limiter = limits.LocalLimiter()
    budget = replace(LIMITED, max_in_flight=0)
    limiter.acquire("u", budget, NOW)
    limiter.acquire("u", budget, NOW)
    with pytest.raises(limits.RateLimited) as refused:
        limiter.acquire("u", budget, NOW)
    assert refused.value.retry_after_s == 30
    remembered = limiter.refused("u", NOW.replace(second=50))
    assert (remembered.limit_name, remembered.retry_after_s) == ("requests_per_minute", 10)
    next_minute = datetime(2026, 12, 1, 0, 0, 0, tzinfo=timezone.utc)
    assert limiter.refused("u", next_minute) is None
    limiter.acquire("u", budget, next_minute)  # a new minute, a new count
    assert limiter.refused("v", NOW) is None


def test_local_limiter_frees_a_slot_when_a_call_ends():
    limiter = limits.LocalLimiter()
    budget = replace(LIMITED, requests_per_minute=0)
    limiter.acquire("u", budget, NOW)
    with pytest.raises(limits.RateLimited):
        limiter.acquire("u", budget, NOW.replace(second=31))
    limiter.release("u")
    limiter.acquire("u", budget, NOW.replace(second=33))  # the refusal held 1 s; the slot is free


def test_feature_cap_counts_new_names_under_other():
    assert features.choose("a", {"a", "b"}, 2) == "a"
    assert features.choose("c", {"a", "b"}, 2) == "other"
    assert features.choose("c", {"a"}, 2) == "c"
    assert features.choose(None, {"a", "b"}, 2) is None
    book = features.FeatureBook()
    assert book.needs_read("u", "2026-11", "a", 2)  # nothing known yet
    book.learn("u", "2026-11", ["a", "b"])
    assert not book.needs_read("u", "2026-11", "a", 2)  # known name: no read
    assert not book.needs_read("u", "2026-11", "z", 2)  # cap reached: no read can change it
    assert book.choose("u", "2026-11", "z", 2) == "other"
    assert book.needs_read("u", "2026-12", "a", 2)  # a new month starts empty


def test_feature_book_is_bounded():
    book = features.FeatureBook(max_entries=3)
    for i in range(10):
        book.learn(f"u{i}", "2026-11", ["a"])
    assert book.needs_read("u0", "2026-11", "a", 5) and not book.needs_read("u9", "2026-11", "a", 5)


def test_budget_cache_expires_after_its_time_and_forgets_on_put():
    cache = BudgetCache(ttl_s=60)
    budget = rules.Budget(5, ())
    cache.put("u", budget, 1000.0)
    assert cache.get("u", 1059.9) is budget
    assert cache.get("u", 1060.0) is None
    assert cache.get("u", 999.0) is None  # a clock that went back: not trusted
    cache.forget("u")
    assert cache.get("u", 1001.0) is None


class _Record:
    def __init__(self, disabled=False, valid_after_ms=0):
        self.disabled = disabled
        self.tokens_valid_after_timestamp = valid_after_ms


def test_user_standing_is_looked_up_once_per_user_per_ttl():
    answers = {"u": _Record()}
    standing = UserStanding(ttl_s=60, lookup=lambda uid: answers[uid])
    assert standing.get("u", 1000.0).disabled is False
    answers["u"] = _Record(disabled=True)
    assert standing.get("u", 1059.0).disabled is False  # cached: the change shows within the TTL
    assert standing.get("u", 1060.0).disabled is True
    assert standing.lookups == 2


def test_rollup_keys_firestore_refuses_are_kept_in_parentheses():
    assert map_key("__x__") == "(__x__)" and map_key("") == "()" and map_key("summarise") == "summarise"
    assert map_key("__name__") == "(__name__)" and map_key("_x_") == "_x_"


def _transport(exc_type, cause):
    request = httpx.Request("POST", "https://openrouter.ai/api/v1/chat/completions")
    error = exc_type(request=request)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "exc_type, cause, status, maybe_billed",
    [
        (openai.APITimeoutError, httpx.ReadTimeout("read"), 504, True),  # sent, no answer
        (openai.APITimeoutError, httpx.ConnectTimeout("connect"), 504, False),  # never sent
        (openai.APIConnectionError, httpx.RemoteProtocolError("reset"), 502, True),
        (openai.APIConnectionError, httpx.ReadError("reset"), 502, True),
        (openai.APIConnectionError, httpx.ConnectError("refused"), 502, False),
    ],
)
def test_upstream_failures_after_sending_may_have_been_billed(exc_type, cause, status, maybe_billed):
    error = map_transport_error(_transport(exc_type, cause))
    assert (error.status, error.maybe_billed) == (status, maybe_billed)


def test_rules_status_without_a_read_says_unknown_not_zero():
    budget = rules.Budget(None, (Decimal("0.8"),), free_daily_requests=None)
    status = rules.status(budget, "2026-11", None, None)
    assert (status["spent"], status["spent_nanos"], status["remaining"], status["reserved"]) == (None, None, None, None)


def test_app_check_refuses_a_missing_or_unverifiable_token():
    from tokenledger.api.auth import require_app_check
    from tokenledger.api.errors import ApiError

    def verify(token):
        if token != "good":
            raise ValueError("bad signature")
        return {"app_id": "1:123:web:abc"}

    with pytest.raises(ApiError) as missing:
        require_app_check("  ", verify)
    assert (missing.value.status, missing.value.code) == (401, "app_check_required")
    with pytest.raises(ApiError) as invalid:
        require_app_check("forged", verify)
    assert (invalid.value.status, invalid.value.code) == (401, "app_check_invalid")
    require_app_check("good", verify)
