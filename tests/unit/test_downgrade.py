"""The downgrade's choices (api/downgrade.py), with the policy test catalog."""
from __future__ import annotations

from policy_catalog import CATALOG, HI

from tokenledger.api import downgrade
from tokenledger.budgets import plans, rules
from tokenledger.config import Settings
from tokenledger.policy import plan_call

SETTINGS = Settings()
PLAN = plans.plan_from_doc("dg", {"monthly_budget_nanos": 1_000_000_000, "monthly_budget": 1.0, "enforce": True,
                                  "downgrade_to": "acme/small:free", "downgrade_at": 0.75})
BUDGET = rules.budget_from_doc(None, SETTINGS, PLAN)
PAID = plan_call({"model": "acme/big", "models": ["acme/small"], "messages": HI}, CATALOG, SETTINGS)
FREE = plan_call({"model": "acme/small:free", "messages": HI}, CATALOG, SETTINGS)


def test_only_a_paid_call_with_a_downgrade_model_is_downgraded():
    assert downgrade.target(BUDGET, PAID) == "acme/small:free"
    assert downgrade.target(BUDGET, FREE) is None  # free already
    assert downgrade.target(rules.default_budget(SETTINGS), PAID) is None  # no downgrade_to
    assert downgrade.target(None, PAID) is None


def test_the_body_moves_to_the_downgrade_model_without_its_paid_fallbacks():
    body = {"model": "acme/big", "models": ["acme/small"], "messages": HI, "max_tokens": 5}
    assert downgrade.downgraded_body(body, "acme/small:free") == {"model": "acme/small:free", "messages": HI,
                                                                   "max_tokens": 5}
    assert body["model"] == "acme/big"  # the client's body is left as it was


def test_known_due_from_what_the_instance_last_saw():
    assert not downgrade.known_due(BUDGET, None, PAID)  # not seen: the gate decides
    assert not downgrade.known_due(BUDGET, 749_999_999, PAID)
    assert downgrade.known_due(BUDGET, 750_000_000, PAID)  # 75% of $1
    assert not downgrade.known_due(BUDGET, 750_000_000, FREE)


def test_try_downgrade_gives_back_none_when_the_gate_refuses():
    from tokenledger.budgets import admission

    def refuse(plan):
        raise admission.FreeQuotaExceeded(0, 60)

    assert downgrade.try_downgrade(BUDGET, {"model": "acme/big", "messages": HI}, PAID,
                                   lambda body: plan_call(body, CATALOG, SETTINGS), refuse) is None
    admitted = object()
    lower, got = downgrade.try_downgrade(BUDGET, {"model": "acme/big", "messages": HI}, PAID,
                                         lambda body: plan_call(body, CATALOG, SETTINGS), lambda plan: admitted)
    assert (lower.requested_model, lower.is_free, got) == ("acme/small:free", True, admitted)
    assert downgrade.header_value("acme/big", "acme/small:free") == "acme/big -> acme/small:free"
