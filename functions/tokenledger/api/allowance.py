"""The fields of an allowance an admin sets, shared by a user's budget (PUT /v1/admin/budgets/<uid>)
and a plan (PUT /v1/admin/plans/<planId>): one validation and one way to store them, so a field
means the same wherever it is set (precedence: user > plan > default, budgets/rules.py)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator

from tokenledger import money
from tokenledger.budgets import rules

Number = StrictInt | StrictFloat
MODEL_PATTERN = r"^[A-Za-z0-9._:/*?\[\]@~+-]{1,200}$"
# Stored as sent (monthly_budget and alert_thresholds are converted, see stored_fields).
PLAIN_FIELDS = ("enforce", "free_daily_requests", "requests_per_minute", "max_in_flight", "downgrade_to",
                "downgrade_at")


class AllowanceUpdate(BaseModel):
    """An omitted field takes the configured default; `null` means none; `0` means none allowed."""

    model_config = ConfigDict(extra="forbid")
    monthly_budget: Number | None = Field(default=None, ge=0, le=1_000_000)
    alert_thresholds: list[Number] = Field(default_factory=lambda: [0.8, 1.0], max_length=20)
    enforce: StrictBool = False
    free_daily_requests: StrictInt | None = Field(default=None, ge=0, le=1_000_000)
    requests_per_minute: StrictInt | None = Field(default=None, ge=0, le=1_000_000)
    max_in_flight: StrictInt | None = Field(default=None, ge=0, le=10_000)
    downgrade_to: str | None = Field(default=None, pattern=MODEL_PATTERN)

    @field_validator("alert_thresholds")
    @classmethod
    def _thresholds(cls, values: list) -> list:
        problem = rules.check_thresholds([rules.threshold_decimal(v) for v in values])
        if problem:
            raise ValueError(problem)
        return values


def stored_fields(update: AllowanceUpdate, names: tuple[str, ...]) -> dict:
    """The document fields of what the admin sent (only those: the others follow the defaults);
    a budget in USD is stored with its exact nano-dollars beside it."""
    given = update.model_fields_set
    doc: dict = {}
    if "monthly_budget" in given:
        amount = None if update.monthly_budget is None else money.to_decimal(update.monthly_budget)
        doc["monthly_budget"] = None if amount is None else float(amount)
        doc["monthly_budget_nanos"] = None if amount is None else money.to_nanos(amount)
    if "alert_thresholds" in given:
        doc["alert_thresholds"] = [float(t) for t in update.alert_thresholds]
    for name in names:
        if name in given:
            doc[name] = getattr(update, name)
    return doc
