"""Attack on the auto router's pin: `plugins: [{"id": "auto-router", "allowed_models": [...]}]`
takes up to 100 globs of up to 200 characters, compiled into one pattern per distinct list. A
list of globs made mostly of wildcards (`*a*a*a...`), different on every request so the compiled
pattern is never reused, cost about 0.4 s of CPU per request (against about 4 ms for the same
list of plain globs): one client could keep the function's cores busy with a few requests a
second. A model id is a vendor and a name; a glob needs a handful of wildcards to select models
(`openai/*`, `anthropic/claude-*`, `*/gpt-4o*`), so more are refused (400 naming the glob), and so
are character classes (`[...]`), which no model id needs."""
from __future__ import annotations

import pytest
from policy_catalog import HI, MODELS

from tokenledger.config import Settings
from tokenledger.policy import PolicyError, plan_call
from tokenledger.pricing.prices import parse_catalog

CATALOG = parse_catalog(MODELS, "openrouter")


def pinned(globs: list) -> dict:
    return {"model": "openrouter/auto", "messages": HI, "max_tokens": 10,
            "plugins": [{"id": "auto-router", "allowed_models": globs}]}


@pytest.mark.parametrize("glob", ["*a" * 99 + "b", "acme/*?*?*", "acme/[!x]*", "[a-z]cme/small"])
def test_a_pin_glob_with_many_wildcards_or_a_character_class_is_refused(glob):
    with pytest.raises(PolicyError) as caught:
        plan_call(pinned(["acme/small", glob]), CATALOG, Settings())
    err = caught.value
    assert (err.status, err.code, err.field) == (400, "invalid_parameter", "plugins.auto-router.allowed_models[1]")


@pytest.mark.parametrize("glob", ["acme/*", "acme/sm*", "*/small", "acme/small*:free", "*/sm?ll*"])
def test_the_globs_a_pin_needs_still_pin(glob):
    p = plan_call(pinned([glob]), CATALOG, Settings())
    assert "acme/small" in p.candidates or "acme/small:free" in p.candidates
    assert p.upstream_body["plugins"][0]["id"] == "auto-router"


def test_pin_globs_longer_than_2000_characters_in_all_are_refused():
    globs = [f"acme/{'x' * 90}{i:03d}" for i in range(21)]  # 98 characters each: 2,058 in all
    assert sum(map(len, globs)) == 2058
    with pytest.raises(PolicyError) as caught:
        plan_call(pinned(globs + ["acme/*"]), CATALOG, Settings())
    assert (caught.value.status, caught.value.field) == (400, "plugins.auto-router.allowed_models")
    assert plan_call(pinned(globs[:20] + ["acme/*"]), CATALOG, Settings()).candidates  # 1,966 characters: fine
