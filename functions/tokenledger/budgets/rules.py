"""Budget rules (pure: no I/O): what a user's budget is, what a call may cost at worst, whether
it is admitted, which alert thresholds a month has reached, and the status a user is shown.

All money is integer nano-dollars; thresholds are exact Decimals (0.8 means 80%).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from tokenledger import money
from tokenledger.budgets import plans
from tokenledger.config import Settings
from tokenledger.pricing.prices import ModelPrice, worst_case_cost

MAX_THRESHOLD = Decimal(10)
EXCEEDED = "budget_exceeded"
THRESHOLD = "budget_threshold"


@dataclass(frozen=True)
class Budget:
    """A user's budget in force: their user_budgets document, else the configured defaults."""

    monthly_budget_nanos: int | None
    alert_thresholds: tuple[Decimal, ...]
    enforce: bool = False
    email: str | None = None
    free_daily_requests: int | None = None  # None: no cap; 0: no free calls
    source: str = "none"  # user | default | none
    requests_per_minute: int = 0  # 0: no limit
    max_in_flight: int = 0  # 0: no limit
    # Plans (plans.py): the plan in force, where each field came from (user | plan | default),
    # the plan's model tier, and the budget-aware downgrade.
    plan: str | None = None
    sources: tuple[tuple[str, str], ...] = ()
    allowed_models: tuple[str, ...] = ()
    downgrade_to: str | None = None
    downgrade_at: Decimal = plans.DEFAULT_DOWNGRADE_AT

    @property
    def has_dollar_budget(self) -> bool:
        return self.monthly_budget_nanos is not None

    @property
    def enforced(self) -> bool:
        return self.enforce and self.has_dollar_budget

    def gated(self, is_free: bool) -> bool:
        """Does a call need the shared gate (a write and one read round trip before the call)?
        Yes when there is money to cap or to alert on, or a free quota to count; otherwise the
        call is limited per instance only and costs no read (admission.py)."""
        return self.has_dollar_budget or (is_free and self.free_daily_requests is not None)


def threshold_decimal(value: object) -> Decimal:
    result = money.to_decimal(value)
    if result is None:
        raise ValueError(f"not a number: {value!r}")
    return result


def default_budget(settings: Settings) -> Budget:
    free = settings.default_free_daily_requests or None  # the setting's 0 means no cap
    source = "none" if settings.default_monthly_budget is None and free is None else "default"
    return Budget(
        monthly_budget_nanos=(
            None if settings.default_monthly_budget is None else money.to_nanos(settings.default_monthly_budget)
        ),
        alert_thresholds=settings.default_alert_thresholds,
        enforce=settings.default_enforce,
        free_daily_requests=free,
        source=source,
        requests_per_minute=settings.rate_limit_per_minute,
        max_in_flight=settings.max_in_flight,
        sources=tuple((name, "default") for name in SOURCED_FIELDS),
    )


# Fields of a user_budgets document; a field the document lacks takes the configured default
# (PUT stores only what the admin sent), an explicit null means "none" (no budget, no cap).
BUDGET_FIELDS = ("monthly_budget", "alert_thresholds", "enforce", "email", "free_daily_requests",
                 "requests_per_minute", "max_in_flight", "downgrade_to", "downgrade_at")
# Fields whose source (user | plan | default) the API shows.
SOURCED_FIELDS = (*plans.ALLOWANCE_FIELDS, *plans.DOWNGRADE_FIELDS)


def budget_from_doc(doc: dict | None, settings: Settings, plan: plans.Plan | None = None) -> Budget:
    """A user_budgets document (as stored by PUT /v1/admin/budgets) and the user's plan -> the
    Budget in force, field by field: the user's own field > the plan's field > the default."""
    default = default_budget(settings)
    if not doc and plan is None:
        return default
    layers = (("user", doc or {}), ("plan", plan.fields if plan is not None else {}))
    sources: dict[str, str] = {}

    def pick(name: str, keys: tuple[str, ...] = (), null_is_default: bool = False) -> dict | None:
        for source, layer in layers:
            if any(k in layer for k in (name, *keys)) and not (null_is_default and layer.get(name) is None):
                sources[name] = source
                return layer
        sources[name] = "default"
        return None

    def whole(name: str, fallback):
        layer = pick(name)
        value = layer.get(name) if layer is not None else fallback
        return None if value is None else int(value)

    layer = pick("monthly_budget", ("monthly_budget_nanos",))
    nanos = default.monthly_budget_nanos
    if layer is not None:
        nanos = layer.get("monthly_budget_nanos")
        if nanos is None and layer.get("monthly_budget") is not None:
            nanos = money.to_nanos(threshold_decimal(layer["monthly_budget"]))
    thresholds = pick("alert_thresholds", null_is_default=True)
    enforce = pick("enforce", null_is_default=True)
    downgrade_to = pick("downgrade_to", null_is_default=True)
    downgrade_at = pick("downgrade_at", null_is_default=True)
    return Budget(
        monthly_budget_nanos=None if nanos is None else int(nanos),
        alert_thresholds=(tuple(threshold_decimal(t) for t in thresholds["alert_thresholds"])
                          if thresholds is not None else default.alert_thresholds),
        enforce=bool(enforce["enforce"]) if enforce is not None else default.enforce,
        email=(doc or {}).get("email") or None,
        free_daily_requests=whole("free_daily_requests", default.free_daily_requests),
        source="user" if doc else "plan",
        requests_per_minute=whole("requests_per_minute", default.requests_per_minute) or 0,
        max_in_flight=whole("max_in_flight", default.max_in_flight) or 0,
        plan=plan.plan_id if plan is not None else None,
        sources=tuple((name, sources[name]) for name in SOURCED_FIELDS),
        allowed_models=plan.allowed_models if plan is not None else (),
        downgrade_to=downgrade_to["downgrade_to"] if downgrade_to is not None else None,
        downgrade_at=(threshold_decimal(downgrade_at["downgrade_at"]) if downgrade_at is not None
                      else plans.DEFAULT_DOWNGRADE_AT),
    )


def downgrade_due(budget: Budget, cost_nanos: int | None) -> bool:
    """Has the month's spend passed the budget's `downgrade_at` (a share of the monthly budget)?"""
    if budget.downgrade_to is None or not budget.has_dollar_budget or cost_nanos is None:
        return False
    return cost_nanos >= budget.downgrade_at * budget.monthly_budget_nanos


def check_thresholds(values: list[Decimal]) -> str | None:
    """Why a list of alert thresholds is not acceptable, or None when it is."""
    for value in values:
        if not (0 < value <= MAX_THRESHOLD):
            return f"every alert threshold must be in (0, {MAX_THRESHOLD}]; got {value}"
    if list(values) != sorted(set(values)):
        return "alert thresholds must be sorted ascending and unique"
    return None


# ---- admission ----------------------------------------------------------------------------------

def worst_case_nanos(price: ModelPrice, fallback: ModelPrice, prompt_tokens: int, max_tokens: int | None,
                     settings: Settings) -> int:
    """What a call can cost at most, before it is made: the prompt estimate at the input price and
    every completion token it may generate at the output price. A router with a variable price
    is bounded by the configured fallback price."""
    priced = fallback if price.variable else price
    completion = max_tokens or price.max_completion_tokens or settings.max_tokens_cap
    # Round up: a reservation must never be below the cost it stands for.
    exact = worst_case_cost(priced, prompt_tokens, completion) * money.NANOS_PER_USD
    return int(math.ceil(exact))


def admits(cost_nanos: int, reserved_nanos: int, budget_nanos: int) -> bool:
    """The check after the blind reservation: `reserved_nanos` already includes this call's own."""
    return cost_nanos + reserved_nanos <= budget_nanos


def seconds_to_next_day(now: datetime) -> int:
    """Retry-After for the daily free quota: seconds until the next UTC midnight (at least 1)."""
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


# ---- thresholds and alerts -----------------------------------------------------------------------

def threshold_key(threshold: Decimal) -> str:
    """The threshold as written in alert ids: 0.8 -> "0.8", 1 -> "1.0"."""
    text = format(threshold.normalize(), "f")
    return text if "." in text else f"{text}.0"


def threshold_flag(threshold: Decimal) -> str:
    """Field-path-safe key for the month document's `alerts_sent` map: per mille (0.8 -> "800"),
    exact past it (0.8004 -> "800_4"): two thresholds in one per mille must not share a flag,
    or the second counts as sent once the first is."""
    per_mille = format((threshold * 1000).normalize(), "f")
    return per_mille.replace(".", "_")


def reached(budget: Budget, cost_nanos: int) -> list[Decimal]:
    """Thresholds the month's cost has reached (none without a dollar budget or any cost)."""
    if not budget.has_dollar_budget or cost_nanos <= 0:
        return []
    return [t for t in budget.alert_thresholds if cost_nanos >= t * budget.monthly_budget_nanos]


def missing_alerts(budget: Budget, cost_nanos: int, sent_flags: dict | None) -> list[Decimal]:
    """Reached thresholds whose alert the month document does not mark as sent."""
    sent = sent_flags or {}
    return [t for t in reached(budget, cost_nanos) if not sent.get(threshold_flag(t))]


def presumed_sent(budget: Budget, cost_before_nanos: int) -> dict:
    """Alert flags as a call that did not read them presumes them: every threshold reached before
    the call is sent (by the call that crossed it, or else by the scheduled check)."""
    return {threshold_flag(t): True for t in reached(budget, cost_before_nanos)}


def alert_type(threshold: Decimal) -> str:
    return EXCEEDED if threshold >= 1 else THRESHOLD


def percentage(cost_nanos: int, budget_nanos: int | None) -> float | None:
    if budget_nanos is None:
        return None
    if budget_nanos == 0:
        return 0.0 if cost_nanos == 0 else math.inf
    return round(cost_nanos * 100 / budget_nanos, 2)


def status(budget: Budget, month: str, cost_nanos: int | None, reserved_nanos: int | None,
           free_requests_today: int | None = None) -> dict:
    """The user's month as the API shows it (USD floats for people; exact nanos beside them).
    cost_nanos None: not known (a call that read nothing: no budget to check)."""
    limit = budget.monthly_budget_nanos
    known = cost_nanos is not None
    reserved_nanos = max(reserved_nanos or 0, 0)
    pct = percentage(cost_nanos, limit) if known else None
    return {
        "month": month,
        "spent": money.usd_float(cost_nanos) if known else None,
        "spent_nanos": cost_nanos,
        "reserved": money.usd_float(reserved_nanos) if known else None,
        "reserved_nanos": reserved_nanos if known else None,
        "monthly_budget": None if limit is None else money.usd_float(limit),
        "remaining": None if limit is None or not known else money.usd_float(max(limit - cost_nanos - reserved_nanos, 0)),
        "percentage_used": None if pct is None or math.isinf(pct) else pct,
        "alert_thresholds": [float(t) for t in budget.alert_thresholds],
        "enforce": budget.enforced,
        "free_daily_requests": budget.free_daily_requests,
        "free_requests_today": free_requests_today,
        "requests_per_minute": budget.requests_per_minute or None,
        "max_in_flight": budget.max_in_flight or None,
        "source": budget.source,
        "plan": budget.plan,
        "sources": dict(budget.sources),
        "downgrade_to": budget.downgrade_to,
        "downgrade_at": float(budget.downgrade_at) if budget.downgrade_to else None,
        "downgrading": downgrade_due(budget, cost_nanos),  # paid calls now go to downgrade_to
    }
