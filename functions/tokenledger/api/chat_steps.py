"""The steps every metered chat call shares, plain (chat.py) or streamed (chat_stream.py):
`prepare_call` (who, what, may they), the upstream call, then `meter_call` (record it once,
before answering) or `abandon_call` when the upstream failed and nothing was billed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from tokenledger import logs
from tokenledger.api import validation
from tokenledger.api.auth import Caller, current_caller
from tokenledger.api.context import Services
from tokenledger.api.errors import ApiError
from tokenledger.budgets import admission, rules
from tokenledger.metering import ledger, usage
from tokenledger.openrouter import UpstreamError
from tokenledger.pricing.prices import Catalog, ModelPrice, fallback_price

CHAT_ENDPOINT = "/v1/chat/completions"


@dataclass
class PreparedCall:
    caller: Caller
    body: dict
    chat: validation.ChatRequest
    catalog: Catalog
    price: ModelPrice  # the requested model's catalog entry
    # The budget gate's verdict; holds the reservation of an enforced budget until settled.
    admission: admission.Admission | None = None


def prepare_call(svc: Services) -> PreparedCall:
    """Authenticate, validate and admit against the budget; raises ApiError when the call may not
    go (nothing is written then, and nothing is left reserved)."""
    caller = current_caller()
    body = validation.json_body(svc.settings)
    chat = validation.chat_request(body, svc.settings)
    catalog = svc.catalog.get()
    price = validation.allowed_model(chat.model, catalog, svc.settings)
    call = PreparedCall(caller, body, chat, catalog, price)
    call.admission = admit(svc, call)
    return call


def admit(svc: Services, call: PreparedCall) -> admission.Admission:
    settings = svc.settings
    worst = rules.worst_case_nanos(
        call.price,
        fallback_price(call.chat.model, settings.fallback_prompt_price, settings.fallback_completion_price),
        usage.estimate_prompt_tokens(call.body),
        call.chat.max_tokens or call.chat.max_completion_tokens,
        settings,
    )
    try:
        return admission.admit(svc.db, settings, call.caller.uid, call.price.is_free, worst, svc.now())
    except admission.BudgetExceeded as exc:
        raise ApiError(
            402,
            "budget_exceeded",
            f"This call could cost up to {money_text(exc.estimate_nanos)} and would take you over your monthly "
            f"budget: spent {money_text(exc.spent_nanos)} of {money_text(exc.budget_nanos)}"
            + (f", {money_text(exc.reserved_nanos)} held by calls in progress" if exc.reserved_nanos > 0 else "")
            + ". Free models remain available.",
            extra={
                "spent": usd(exc.spent_nanos),
                "reserved": usd(max(exc.reserved_nanos, 0)),
                "monthly_budget": usd(exc.budget_nanos),
                "estimated_cost": usd(exc.estimate_nanos),
            },
        )
    except admission.BudgetUnavailable:
        raise ApiError(503, "budget_unavailable", "Your budget cannot be checked right now; retry in a moment.",
                       {"Retry-After": "5"})
    except admission.FreeQuotaExceeded as exc:
        raise ApiError(
            429,
            "free_quota_exceeded",
            f"You have used your {exc.limit} free-model requests for today (UTC); try again tomorrow or use a paid model.",
            {"Retry-After": str(exc.retry_after_s)},
        )


def money_text(nanos: int) -> str:
    """Dollars for a sentence: cents when there are dollars, micro-dollars for small amounts."""
    return f"${usd(nanos):,.2f}" if nanos >= 1_000_000_000 or nanos == 0 else f"${usd(nanos):,.6f}"


def usd(nanos: int) -> float:
    return nanos / 1e9


def abandon_call(svc: Services, call: PreparedCall) -> None:
    """The upstream call failed before anything was billed: nothing to record; the budget
    reservation (if any) is given back."""
    admission.abandon(svc.db, call.admission)


def upstream_to_api_error(exc: UpstreamError) -> ApiError:
    if exc.operator_problem:
        # The operator must act (key or credits); never log the key itself.
        logs.openrouter_operator_error(upstream_status=exc.upstream_status, detail=exc.message)
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
    return ApiError(exc.status, exc.code, exc.message, headers)


def build_call_record(
    svc: Services,
    call: PreparedCall,
    response_body: dict,
    latency_ms: int,
    generation_id: str | None,
    status: str | None = None,
) -> usage.UsageRecord:
    served = str(response_body.get("model") or call.chat.model)
    # Price by the model that served (a router's own price is "variable").
    price = call.catalog.get(served) or call.price
    return usage.build_record(
        response_body,
        usage.CallFacts(
            user_id=call.caller.uid,
            requested_model=call.chat.model,
            endpoint=CHAT_ENDPOINT,
            occurred_at=svc.now(),
            latency_ms=latency_ms,
            feature=call.chat.feature,
            metadata=usage.request_metadata(call.body, svc.settings.store_prompts),
        ),
        usage.Pricing(
            price,
            fallback_price(served, svc.settings.fallback_prompt_price, svc.settings.fallback_completion_price),
            svc.settings.byok_fee_rate,
        ),
        generation_id=generation_id,
        status=status,
    )


def meter_call(svc: Services, call: PreparedCall, record: usage.UsageRecord) -> bool:
    """Commit the record before answering; False (and an ERROR log entry holding the whole
    record, for scripts/replay_usage.py) when it could not be committed.

    The call's budget reservation goes into the same commit: a final row releases it, a
    `pending` row (cost not known yet) takes it over until reconcile settles the row (ledger.py).
    Not committed: the reservation stays until it expires and the budget check releases it."""
    reservation = call.admission.reservation if call.admission else None
    if reservation is not None:
        record = replace(record, reserved_nanos=reservation.amount_nanos, reservation_id=reservation.reservation_id)
    if not record.generation_id:
        logs.usage_not_recorded(reason="no generation id", record=record.to_log())
        return False
    if record.flags:
        logs.usage_flagged(generation_id=record.generation_id, flags=list(record.flags))
    try:
        ledger.record_usage(svc.db, record, svc.settings)
    except ledger.RecordingFailed as exc:
        logs.usage_not_recorded(reason=repr(exc.cause)[:500], record=record.to_log())
        return False
    if reservation is not None:
        call.admission.reservation = None  # settled or handed to the row: abandon must not release it
    return True


def budget_status(svc: Services, call: PreparedCall) -> dict | None:
    """The caller's month after the call (the `budget` object of the response), with real-time
    alerts written for thresholds reached. None when it cannot be read right now: the answer
    must not fail over it (the scheduled check writes any alert missed)."""
    if call.admission is None:
        return None
    try:
        return admission.after_call(svc.db, svc.settings, call.caller.uid, call.admission, svc.now())
    except Exception as exc:  # noqa: BLE001 - the call is recorded; its status is a courtesy
        logs.budget_status_failed(error=type(exc).__name__, detail=str(exc)[:300])
        return None
