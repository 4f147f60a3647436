"""Attack, end to end on an enforced budget: a price that rises after the app fetched its catalog
(kept up to TOKENLEDGER_CATALOG_MAX_AGE_S, a day by default). Numbers worked by hand from
scripts/standin_models.json: deepseek/deepseek-r1 lists $0.40 / $2 per million (prompt /
completion and internal_reasoning).

Reservation of `HI` with max_tokens 1,000: prompt bound 53 JSON bytes + 8 = 61 tokens x 400 nanos +
1,000 x 2,000 nanos = 2,024,400 nanos. The stand-in bills 4 + ceil(25 / 4) = 11 prompt tokens."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from .budget_helpers import put_budget
from .ledger_checks import month_doc

R1 = "deepseek/deepseek-r1"
HI = [{"role": "user", "content": "Hello, how are you today?"}]


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def spent(db, uid: str) -> int:
    return (month_doc(db, uid, datetime.now(timezone.utc).strftime("%Y-%m")) or {}).get("cost_nanos", 0)


def test_a_prompt_price_rise_is_refused_upstream_and_costs_nothing(api, admin, user, db, standin):
    put_budget(api, admin, user.uid, monthly_budget=0.01, enforce=True)
    assert api.chat(user, model=R1, messages=HI, max_tokens=1000).status_code == 200  # the catalog is fetched
    before = spent(db, user.uid)
    standin.set_pricing(R1, prompt="0.000004")  # 10x, after the app fetched its prices
    refused = api.chat(user, model=R1, messages=HI, max_tokens=1000)
    # OpenRouter finds no endpoint within provider.max_price (404 upstream): a 502 to the client
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "upstream_error"
    assert spent(db, user.uid) == before

