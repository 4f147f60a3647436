"""A budget gate's refusal as the client reads it: 429 for a rate or a free quota, 402 with the
month (or the wallet) in a sentence and in fields, 503 when the budget cannot be checked."""
from __future__ import annotations

from tokenledger import money
from tokenledger.api.errors import ApiError
from tokenledger.budgets import admission


def admission_error(exc: Exception) -> ApiError:
    """A refusal of the gate as the client sees it."""
    if isinstance(exc, admission.RateLimited):
        return ApiError(
            429,
            "user_rate_limited",
            f"Too many calls: the limit is {exc.limit} "
            + ("requests per minute" if exc.limit_name == "requests_per_minute" else "calls in progress at once")
            + f"; retry in {exc.retry_after_s} s.",
            {"Retry-After": str(exc.retry_after_s)},
            extra={"limit": exc.limit_name, "limit_value": exc.limit},
        )
    if isinstance(exc, admission.BudgetExceeded):
        if exc.wallet is not None:
            return credits_exhausted(exc)
        return ApiError(
            402,
            "budget_exceeded",
            f"This call could cost up to {money_text(exc.estimate_nanos)} and would take you over your monthly "
            f"budget: spent {money_text(exc.spent_nanos)} of {money_text(exc.budget_nanos)}"
            + (f", {money_text(exc.reserved_nanos)} held by calls in progress" if exc.reserved_nanos > 0 else "")
            + ". Free models remain available.",
            extra={
                "spent": money.usd_float(exc.spent_nanos),
                "reserved": money.usd_float(max(exc.reserved_nanos, 0)),
                "monthly_budget": money.usd_float(exc.budget_nanos),
                "estimated_cost": money.usd_float(exc.estimate_nanos),
            },
        )
    if isinstance(exc, admission.FreeQuotaExceeded):
        return ApiError(
            429,
            "free_quota_exceeded",
            f"You have used your {exc.limit} free-model requests for today (UTC); try again tomorrow or use a paid model.",
            {"Retry-After": str(exc.retry_after_s)},
        )
    return ApiError(503, "budget_unavailable", "Your budget cannot be checked right now; retry in a moment.",
                    {"Retry-After": "5"})


def credits_exhausted(exc) -> ApiError:
    """402 for a user with a wallet whose allowance and credits together cannot hold the call."""
    balance, held = exc.wallet.balance_nanos, max(exc.wallet.held_nanos, 0)
    room = max(exc.budget_nanos - exc.spent_nanos - max(exc.reserved_nanos, 0), 0)
    return ApiError(
        402,
        "credits_exhausted",
        f"This call could cost up to {money_text(exc.estimate_nanos)}; your credit balance is {money_text(balance)}"
        + (f" ({money_text(held)} of it held by calls in progress)" if held else "")
        + (f" and {money_text(room)} of this month's allowance is left" if room else "")
        + ". Add credits to continue; free models remain available.",
        extra={
            "balance": money.usd_float(balance),
            "balance_nanos": balance,
            "held": money.usd_float(held),
            "allowance_left": money.usd_float(room),
            "estimated_cost": money.usd_float(exc.estimate_nanos),
            "estimated_cost_nanos": exc.estimate_nanos,
        },
    )


def money_text(nanos: int) -> str:
    """Dollars for a sentence: cents when there are dollars, micro-dollars for small amounts."""
    usd = money.usd_float(nanos)
    return f"${usd:,.2f}" if nanos >= 1_000_000_000 or nanos == 0 else f"${usd:,.6f}"
