"""The budget-aware downgrade of a chat call (opt-in per plan or per user: `downgrade_to`,
`downgrade_at`, see docs/budgets.md).

A paid call that the enforced budget refuses (402), or whose user's month has passed
`downgrade_at` of the budget, is served on `downgrade_to` instead: the call is planned again on
that model (the request policy bounds it as any call on it) and admitted through the SAME gate
with that model's own worst case — so a downgraded call can never spend past the budget, and when
the downgrade model does not fit either (its worst case, the free quota, a rate limit) the
answer is the one the call would have had without downgrade. The gate is not changed for it:
this module only chooses which plan of the call goes through it.
"""
from __future__ import annotations

from typing import Callable

from tokenledger.api.errors import ApiError
from tokenledger.budgets import admission, rules
from tokenledger.policy import CallPlan

HEADER = "X-Tokenledger-Downgraded"  # "<requested> -> <served>"
# What the gate may answer instead of an admission.
REFUSALS = (admission.BudgetExceeded, admission.RateLimited, admission.FreeQuotaExceeded,
            admission.BudgetUnavailable)


def header_value(requested: str, served: str) -> str:
    return f"{requested} -> {served}"


def downgraded_body(body: dict, model: str) -> dict:
    """The client's body on the downgrade model: its fallbacks go (each would be a paid model the
    budget no longer covers), everything else stays."""
    out = {k: v for k, v in body.items() if k != "models"}
    out["model"] = model
    return out


def target(budget: rules.Budget | None, plan: CallPlan) -> str | None:
    """The model a refused or over-threshold paid call is served on instead, or None."""
    if budget is None or budget.downgrade_to is None or plan.is_free:
        return None
    return None if budget.downgrade_to == plan.requested_model else budget.downgrade_to


def known_due(budget: rules.Budget | None, seen_nanos: int | None, plan: CallPlan) -> bool:
    """Past `downgrade_at` as this instance last saw the month (cost + reservations): the paid
    call is not even tried — its refused attempt would count against the user's rate limit."""
    return budget is not None and target(budget, plan) is not None and rules.downgrade_due(budget, seen_nanos)


def past_threshold(admitted: admission.Admission, plan: CallPlan) -> bool:
    """An admitted paid call whose user's month (as the gate saw it) passed `downgrade_at`."""
    if plan.is_free or admitted.totals is None or not admitted.checked:
        return False
    return rules.downgrade_due(admitted.budget, admitted.totals.cost_nanos)


def try_downgrade(budget: rules.Budget | None, body: dict, plan: CallPlan,
                  replan: Callable[[dict], CallPlan],
                  admit_on: Callable[[CallPlan], admission.Admission]) -> tuple[CallPlan, admission.Admission] | None:
    """(the downgraded plan, its admission), or None: no downgrade applies, the downgrade model
    cannot be planned (not in the catalog, not allowed by the deployment), or the gate refuses it."""
    model = target(budget, plan)
    if model is None:
        return None
    try:
        lower = replan(downgraded_body(body, model))
    except ApiError:
        return None
    try:
        return lower, admit_on(lower)
    except REFUSALS:
        return None
