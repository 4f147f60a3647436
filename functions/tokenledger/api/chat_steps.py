"""The steps every metered chat call shares, plain (chat.py) or streamed (chat_stream.py):
`prepare_call` (who, what, may they), the upstream call, then `meter_call` (record it once,
before answering) or `abandon_call` when the upstream failed and nothing was billed.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from tokenledger import logs
from tokenledger.api import downgrade, validation
from tokenledger.api.auth import Caller, caller_standing_pending
from tokenledger.api.context import Services
from tokenledger.api.errors import ApiError
from tokenledger.api.refusals import admission_error
from tokenledger.budgets import admission, renewal, settling
from tokenledger.api.plans import caller_plan, tier_of
from tokenledger.budgets.plans import Plan
from tokenledger.metering import ledger, usage
from tokenledger.openrouter import UpstreamError
from tokenledger.policy import CallPlan, PolicyError, plan_call
from tokenledger.policy.candidates import Tier
from tokenledger.pricing.prices import Catalog, ModelPrice, fallback_price

CHAT_ENDPOINT = "/v1/chat/completions"
OVERHEAD_HEADER = "X-Tokenledger-Overhead-Ms"


@dataclass
class PreparedCall:
    caller: Caller
    body: dict
    chat: validation.ChatRequest
    catalog: Catalog
    price: ModelPrice  # the requested model's catalog entry (its base model's for a variant)
    plan: CallPlan  # the request policy's verdict: upstream body, worst case, free or not
    # The budget gate's verdict; holds the reservation of an enforced budget until settled.
    admission: admission.Admission | None = None
    # The call's one clock reading: its month and day for the reservation, the row and the
    # rollups (a call at 23:59:59 stays in its month whenever it is settled).
    now: datetime | None = None
    started: float = field(default_factory=time.perf_counter)  # for X-Tokenledger-Overhead-Ms
    upstream_ms: int = 0  # time spent waiting for OpenRouter
    worst_nanos: int = 0  # what the call can cost at most (admit)
    month_cost_nanos: int | None = None  # the user's month cost just after the ledger's commit, if it told
    month_reserved_nanos: int | None = None  # and its reserved, likewise
    month_credits_nanos: int | None = None  # and what credits paid of its cost, likewise
    credits_nanos: int = 0  # what the user's credits paid of this call (budgets/ceiling.py)
    lease_nanos: int | None = None  # what the call's lease holds after it settled (admitted from a lease)
    queued: bool = False  # not committed inline, but in the outbox: recorded without anyone (X-Usage-Recorded)
    account_plan: Plan | None = None  # the caller's plan (plans/{planId}) in force
    downgraded_from: str | None = None  # the model the client asked for, when served on downgrade_to

    @property
    def upstream_body(self) -> dict:
        return self.plan.upstream_body


def prepare_call(svc: Services) -> PreparedCall:
    """Authenticate, validate and admit against the budget; raises ApiError when the call may not
    go (nothing is written then, and nothing is left reserved). The caller's Auth lookup (for
    revocation) runs beside the gate's round trip and is waited for before returning: a refused
    caller hears that (not a budget or validation answer), and their hold goes back."""
    started = time.perf_counter()
    now = svc.now()
    caller, confirm_standing = caller_standing_pending()
    try:
        call = _admitted_call(svc, caller, now, started)
    except Exception:
        confirm_standing()
        raise
    try:
        confirm_standing()
    except ApiError:
        settling.give_up(svc.db, svc.gate, call.admission, now)  # their lease too: they may not call
        raise
    return call


def _admitted_call(svc: Services, caller: Caller, now: datetime, started: float) -> PreparedCall:
    account_plan = caller_plan(svc, caller, now)
    body = validation.json_body(svc.settings)
    catalog, plan = plan_with_catalog(svc, body, tier_of(account_plan))
    chat = validation.chat_request(body, svc.settings)
    call = PreparedCall(caller, body, chat, catalog, plan.record_price, plan, now=now, started=started,
                        account_plan=account_plan)
    call.admission = admit(svc, call)
    return call


def plan_with_catalog(svc: Services, body: dict, tier: Tier | None = None) -> tuple[Catalog, CallPlan]:
    """The request policy (tokenledger/policy) against the catalog in force. A model the catalog
    does not know triggers one rate-limited /models refresh first, so new releases work the day
    they appear."""
    catalog = svc.catalog.get()
    try:
        return catalog, plan_call(body, catalog, svc.settings, tier)
    except PolicyError as exc:
        fresh = svc.catalog.refresh_for_missing(exc.missing_models) if exc.missing_models else None
        if fresh is None:
            raise policy_error(exc)
    try:
        return fresh, plan_call(body, fresh, svc.settings, tier)
    except PolicyError as exc:
        raise policy_error(exc)


def policy_error(exc: PolicyError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, extra={"field": exc.field} if exc.field else None)


def overhead_ms(call: PreparedCall) -> str:
    """X-Tokenledger-Overhead-Ms: time this request spent outside the upstream call, so far."""
    return str(max(0, round((time.perf_counter() - call.started) * 1000) - call.upstream_ms))


def admit(svc: Services, call: PreparedCall) -> admission.Admission:
    """The gate's admission of the call — or of its downgrade (downgrade.py): served on the
    budget's `downgrade_to` when the budget refuses a paid call, or its month passed
    `downgrade_at`; the call then carries the downgraded plan."""
    call.worst_nanos = call.plan.worst_case_nanos

    def admit_on(plan: CallPlan) -> admission.Admission:
        return admission.admit(svc.db, svc.settings, svc.gate, call.caller.uid, plan.is_free,
                               plan.worst_case_nanos, call.now, call.chat.feature, call.account_plan)

    def lower(budget) -> tuple[CallPlan, admission.Admission] | None:
        return downgrade.try_downgrade(budget, call.body, call.plan,
                                       lambda body: plan_with_catalog(svc, body)[1], admit_on)

    known = admission.budget_in_force(svc.gate, svc.settings, call.caller.uid, call.now, call.account_plan)
    if downgrade.known_due(known, svc.gate.leases.seen_spent(call.caller.uid, call.now.strftime("%Y-%m")), call.plan):
        found = lower(known)
        if found is not None:
            return downgraded(call, *found)
    try:
        admitted = admit_on(call.plan)
    except admission.BudgetExceeded as exc:
        found = lower(admission.budget_in_force(svc.gate, svc.settings, call.caller.uid, call.now, call.account_plan))
        if found is None:
            raise admission_error(exc)
        return downgraded(call, *found)
    except downgrade.REFUSALS as exc:
        raise admission_error(exc)
    if downgrade.past_threshold(admitted, call.plan):
        found = lower(admitted.budget)
        if found is not None:
            admission.abandon(svc.db, svc.gate, admitted)  # the paid call's hold goes back
            return downgraded(call, *found)
    return admitted


def downgraded(call: PreparedCall, plan: CallPlan, admitted: admission.Admission) -> admission.Admission:
    call.downgraded_from = call.plan.requested_model
    call.plan, call.price, call.worst_nanos = plan, plan.record_price, plan.worst_case_nanos
    return admitted


def abandon_call(svc: Services, call: PreparedCall) -> None:
    """The upstream call failed before anything was billed: nothing to record; the budget
    reservation (if any) is given back."""
    admission.abandon(svc.db, svc.gate, call.admission)


def record_lost_answer(svc: Services, call: PreparedCall, exc: UpstreamError) -> None:
    """The request reached OpenRouter but no answer came back: it may have been billed. Record a
    `pending` row at the call's worst case, holding its reservation, for reconcile.py to settle
    (keyed by usage.LOST_PREFIX: no generation id is known)."""
    call.upstream_ms = max(0, round((time.perf_counter() - call.started) * 1000))
    generation_id = f"{usage.LOST_PREFIX}{uuid.uuid4().hex}"

    def make() -> usage.UsageRecord:
        record = build_call_record(svc, call, {"model": call.plan.requested_model}, call.upstream_ms, generation_id,
                                   status=usage.STATUS_NO_ANSWER)
        worst = max(call.worst_nanos, call.admission.reserved_nanos if call.admission else 0)
        return replace(record, cost_nanos=worst, estimated_cost_nanos=worst, cost_source=usage.COST_PENDING,
                       flags=(usage.FLAG_PENDING,))

    record, recorded = settle_call(svc, call, make)
    logs.upstream_answer_lost(generation_id=generation_id, user_id=call.caller.uid, error=exc.code)


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
    feature = call.chat.feature
    metadata = usage.request_metadata(call.body, svc.settings.store_prompts)
    if call.admission is not None and call.admission.checked and call.admission.feature != feature:
        metadata = {**metadata, "feature_requested": feature}  # over the cap: counted under `other`
        feature = call.admission.feature
    record = usage.build_record(
        response_body,
        usage.CallFacts(
            user_id=call.caller.uid,
            requested_model=call.chat.model,
            endpoint=CHAT_ENDPOINT,
            occurred_at=call.now,
            latency_ms=latency_ms,
            feature=feature,
            metadata=metadata,
        ),
        usage.Pricing(
            price,
            fallback_price(served, svc.settings.fallback_prompt_price, svc.settings.fallback_completion_price),
            svc.settings.byok_fee_rate,
        ),
        generation_id=generation_id,
        status=status,
    )
    if call.downgraded_from is not None:  # requested_model keeps what the client asked for
        record = replace(record, flags=(*record.flags, usage.FLAG_DOWNGRADED))
    return record


def downgrade_headers(call: PreparedCall) -> dict:
    """X-Tokenledger-Downgraded: <requested> -> <served>, on a downgraded call only."""
    if call.downgraded_from is None:
        return {}
    return {downgrade.HEADER: downgrade.header_value(call.downgraded_from, call.plan.requested_model)}


def meter_call(svc: Services, call: PreparedCall, record: usage.UsageRecord) -> bool:
    """Commit the record before answering; False (and an ERROR log entry holding the whole
    record, for `python -m tokenledger.tools.replay`) when it could not be committed.

    The call's budget reservation goes into the same commit: a final row releases it, a
    `pending` row (cost not known yet) takes it over until reconcile settles the row (ledger.py).
    Not committed: the reservation stays until it expires and the budget check releases it."""
    reservation = lease = None
    if call.admission is not None:
        record, reservation, lease = admission.holding(svc.gate, call.admission, record)
    if record.reservation_id and reservation is None and lease is None:
        call.lease_nanos = 0  # its lease closes with it: nothing of it left to leave out of the status
    if not record.generation_id:
        logs.usage_not_recorded(reason="no generation id", record=record.to_log())
        return False
    if record.flags:
        logs.usage_flagged(generation_id=record.generation_id, flags=list(record.flags))
    try:
        outcome = ledger.record_usage(svc.db, record, svc.settings)
    except ledger.RecordingFailed as exc:
        call.queued = queue_record(svc, exc.record, repr(exc.cause)[:500])
        return False
    call.month_cost_nanos = outcome.month_cost_nanos
    call.month_reserved_nanos = outcome.month_reserved_nanos
    call.month_credits_nanos = outcome.month_credits_nanos
    call.credits_nanos = record.credits_nanos
    if reservation is not None:
        call.admission.reservation = None  # settled or handed to the row: abandon must not release it
    if lease is not None:
        admission.settled(svc.gate, call.admission, outcome, record)
        call.lease_nanos = 0 if outcome.reservation_gone else lease.nanos
        if svc.gate.leases.holds(lease):  # idle again: its successor is taken ahead when it runs out
            renewal.after_settle(svc.db, svc.settings, svc.gate, lease, call.admission.reserved_nanos
                                 + call.admission.credits_reserved_nanos, call.account_plan, call_clock(call))
    return True


def call_clock(call: PreparedCall) -> datetime:
    """Now by the call's clock (its start plus the time since): a stream settles after its
    request, when a clock set for the request (tests) is gone."""
    return call.now + timedelta(seconds=time.perf_counter() - call.started)


def queue_record(svc: Services, record: usage.UsageRecord, reason: str) -> bool:
    """The ledger could not commit: hand the record to the outbox (metering/outbox.py), which
    commits it without anyone; True when Pub/Sub has it. Otherwise (outbox off or unreachable)
    the ERROR log line holds it for `python -m tokenledger.tools.replay`."""
    now = datetime.now(timezone.utc)  # when it was queued: the wall clock, not the call's (test) clock
    message_id = svc.outbox.queue(record, reason, now) if svc.outbox is not None else None
    if message_id is None:
        logs.usage_not_recorded(reason=reason, record=record.to_log())
        return False
    logs.usage_queued(generation_id=record.generation_id, user_id=record.user_id, message_id=message_id,
                      reason=reason)
    return True


def recorded_header(call: PreparedCall, recorded: bool) -> str:
    """X-Usage-Recorded (and a stream's `usage_recorded`): true, queued or false (README)."""
    return "true" if recorded else "queued" if call.queued else "false"


def settle_call(svc: Services, call: PreparedCall, make_record,
                answer: dict | None = None) -> tuple[usage.UsageRecord | None, bool]:
    """Build and commit the record of a call OpenRouter answered (and so may have billed), never
    raising: whatever fails here — a value Firestore cannot encode, Firestore down, a bug — the
    caller is still answered (X-Usage-Recorded: false) and the ERROR log holds what
    the replay tool needs (the whole record; when even the record could not be built, the
    answer's id, model, provider and `usage` — never its text — for an operator to rebuild it).
    Returns (record, recorded)."""
    record = None
    try:
        record = make_record()
        return record, meter_call(svc, call, record)
    except Exception as exc:  # noqa: BLE001 - a billed call must never become a 500
        logged = record.to_log() if record is not None else None
        billed = {k: (answer or {}).get(k) for k in ("id", "model", "provider", "usage")} if logged is None else None
        try:
            logs.usage_not_recorded(reason=f"{type(exc).__name__}: {str(exc)[:400]}", record=logged,
                                    user_id=call.caller.uid, model=call.chat.model, answer=billed)
        except Exception:  # noqa: BLE001 - an unloggable record: log its absence at least
            logs.usage_not_recorded(reason=f"{type(exc).__name__} (record not loggable)", record=None,
                                    user_id=call.caller.uid, model=call.chat.model)
        return record, False
    finally:
        if call.admission is not None:
            admission.finish(svc.gate, call.admission)
            admission.settled(svc.gate, call.admission, None, None)  # not recorded: its lease is forgotten


def budget_status(svc: Services, call: PreparedCall, record: usage.UsageRecord | None = None,
                  recorded: bool = False) -> dict | None:
    """The caller's month after the call (the `budget` object of the response), computed from
    what the gate's and the ledger's commits read back and this call's own cost, with real-time
    alerts for thresholds this call crossed. None when it cannot be told right now: the answer must not fail over it (the
    scheduled check writes any alert missed)."""
    if call.admission is None:
        return None
    try:
        cost = record.cost_nanos if (recorded and record is not None) else None
        held = bool(record is not None and record.cost_source == usage.COST_PENDING)
        status = admission.after_call(svc.db, svc.settings, call.admission, cost, held, call.now,
                                      call.month_cost_nanos, call.month_reserved_nanos,  # set by meter_call
                                      call.lease_nanos, call.credits_nanos, call.month_credits_nanos)
        return None if status is None else {**status, "downgraded": call.downgraded_from is not None}
    except Exception as exc:  # noqa: BLE001 - the call is recorded; its status is a courtesy
        logs.budget_status_failed(error=type(exc).__name__, detail=str(exc)[:300])
        return None
