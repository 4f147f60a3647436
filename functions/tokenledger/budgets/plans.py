"""Plans (pure: no I/O): what a `plans/{planId}` document holds, which plan a user is on, and the
model tier a plan allows.

A plan carries the fields a budget has (rules.BUDGET_FIELDS but `email`) plus `allowed_models`
(ids or globs; empty = all the deployment allows) and the downgrade fields `downgrade_to`,
`downgrade_at`. The user's allowance is resolved field by field (rules.budget_from_doc):
their own `user_budgets/{uid}` field > the plan's field > the configured default.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

PLAN_ID_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
# The allowance fields a plan may set (a budget's, without the email that belongs to a person).
ALLOWANCE_FIELDS = ("monthly_budget", "alert_thresholds", "enforce", "free_daily_requests",
                    "requests_per_minute", "max_in_flight")
DOWNGRADE_FIELDS = ("downgrade_to", "downgrade_at")
PLAN_FIELDS = (*ALLOWANCE_FIELDS, "allowed_models", *DOWNGRADE_FIELDS)
DEFAULT_DOWNGRADE_AT = Decimal(1)


@dataclass(frozen=True)
class Plan:
    """One plan document as stored (`fields`: only what the admin set; a field absent takes the
    configured default)."""

    plan_id: str
    fields: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def allowed_models(self) -> tuple[str, ...]:
        return tuple(self.fields.get("allowed_models") or ())


def plan_from_doc(plan_id: str, doc: dict | None) -> Plan:
    return Plan(plan_id, {k: v for k, v in (doc or {}).items() if k in (*PLAN_FIELDS, "monthly_budget_nanos")})


def claimed_plan(claims: dict, claim_name: str) -> str | None:
    """The plan a verified token names in the custom claim `claim_name`, if it names one that can
    be a plan id at all (anything else — a number, a map, a forged 10 kB string — names none)."""
    value = claims.get(claim_name) if claim_name else None
    return value if isinstance(value, str) and PLAN_ID_RE.fullmatch(value) else None


def choose(plans: dict[str, Plan], claimed: str | None, default_plan: str) -> tuple[Plan | None, bool]:
    """(the plan in force, whether the claim named a plan that does not exist). A claim of an
    unknown plan falls back to the default plan; no default plan document: no plan (defaults)."""
    if claimed is not None and claimed in plans:
        return plans[claimed], False
    unknown = claimed is not None and claimed != default_plan
    return plans.get(default_plan), unknown

