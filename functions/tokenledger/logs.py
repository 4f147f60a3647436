"""Every structured log event the package writes, each named once.

Cloud Logging shows the event name as `jsonPayload.message`; operators filter on it (e.g. the
replay of unrecorded usage reads USAGE_NOT_RECORDED), so names are part of the interface. Code,
operator tools and tests use these functions and constants, never the strings themselves.
Fields never hold secrets (the OpenRouter key) or prompt text.
"""
from __future__ import annotations

from firebase_functions import logger as _flog

# --- chat calls --------------------------------------------------------------------------
USAGE_NOT_RECORDED = "usage_not_recorded"  # ERROR; `record` is what replay_usage needs
USAGE_FLAGGED = "usage_flagged"
OPENROUTER_OPERATOR_ERROR = "openrouter_operator_error"
BUDGET_STATUS_FAILED = "budget_status_failed"
STREAM_UPSTREAM_BROKEN = "stream_upstream_broken"
STREAM_RECORDED_PENDING = "stream_recorded_pending"
UPSTREAM_ANSWER_LOST = "upstream_answer_lost"  # sent, then no answer: a pending row holds the reservation
UNHANDLED_ERROR = "unhandled_error"
# --- budgets -----------------------------------------------------------------------------
BUDGET_UNAVAILABLE = "budget_unavailable"
RESERVATION_RELEASE_FAILED = "reservation_release_failed"
BUDGET_CHECK_DONE = "budget_check_done"
SHARDS_FOLDED = "shards_folded"
# --- pricing -----------------------------------------------------------------------------
PRICE_CHANGED = "price_changed"
CATALOG_READ_FAILED = "catalog_read_failed"
CATALOG_FETCH_FAILED = "catalog_fetch_failed"
CATALOG_STORE_FAILED = "catalog_store_failed"
CATALOG_REFRESHED_FOR_MISSING = "catalog_refreshed_for_missing_model"
REFRESH_PRICING_DONE = "refresh_pricing_done"
# --- reconciliation ----------------------------------------------------------------------
USAGE_SETTLED_AT_ESTIMATE = "usage_settled_at_estimate"
LEDGER_DRIFT = "ledger_drift"
RECONCILE_USAGE_DONE = "reconcile_usage_done"
# The usage outbox (metering/outbox.py, metering/heal.py).
USAGE_QUEUED = "usage_queued"  # WARNING; the inline commit failed, the record is in the outbox
USAGE_HEALED = "usage_healed"  # INFO; the outbox's record is in the ledger
USAGE_HEAL_RETRY = "usage_heal_retry"  # WARNING; not committed yet: Pub/Sub redelivers it
LEDGER_DEAD_LETTER = "ledger_dead_letter"  # ERROR; `record` is what replay_usage needs
# --- alert delivery (notify/) --------------------------------------------------------------
WEBHOOK_BLOCKED = "webhook_blocked"  # the SSRF guard refused a target; never retried
WEBHOOK_FAILED = "webhook_failed"  # a target answered for good with an error, or the sweep gave up
ALERT_SWEEP_DONE = "alert_sweep_done"


def usage_not_recorded(reason: str, record: dict | None, **context) -> None:
    _flog.error(USAGE_NOT_RECORDED, reason=reason, record=record, **context)


def usage_flagged(generation_id: str, flags: list[str]) -> None:
    _flog.warn(USAGE_FLAGGED, generation_id=generation_id, flags=flags)


def openrouter_operator_error(upstream_status: int | None, detail: str) -> None:
    _flog.error(OPENROUTER_OPERATOR_ERROR, upstream_status=upstream_status, detail=detail)


def budget_status_failed(error: str, detail: str) -> None:
    _flog.warn(BUDGET_STATUS_FAILED, error=error, detail=detail)


def stream_upstream_broken(generation_id: str | None, error: str) -> None:
    _flog.warn(STREAM_UPSTREAM_BROKEN, generation_id=generation_id, error=error)


def stream_recorded_pending(generation_id: str | None, status: str) -> None:
    _flog.warn(STREAM_RECORDED_PENDING, generation_id=generation_id, status=status)


def upstream_answer_lost(generation_id: str, user_id: str, error: str) -> None:
    _flog.warn(UPSTREAM_ANSWER_LOST, generation_id=generation_id, user_id=user_id, error=error)


def unhandled_error(error: str, trace: str) -> None:
    _flog.error(UNHANDLED_ERROR, error=error, trace=trace)


def budget_unavailable(user_id: str, error: str) -> None:
    _flog.error(BUDGET_UNAVAILABLE, user_id=user_id, error=error)


def reservation_release_failed(reservation_id: str, error: str) -> None:
    _flog.warn(RESERVATION_RELEASE_FAILED, reservation_id=reservation_id, error=error)


def budget_check_done(**report) -> None:
    _flog.info(BUDGET_CHECK_DONE, **report)


def shards_folded(**report) -> None:
    _flog.info(SHARDS_FOLDED, **report)


def price_changed(model: str, field: str, old, new) -> None:
    _flog.info(PRICE_CHANGED, model=model, field=field, old=old, new=new)


def catalog_refreshed_for_missing(models: list[str], found: list[str]) -> None:
    _flog.info(CATALOG_REFRESHED_FOR_MISSING, models=models, found=found)


def catalog_read_failed(error: str) -> None:
    _flog.warn(CATALOG_READ_FAILED, error=error)


def catalog_fetch_failed(error: str, detail: str) -> None:
    _flog.warn(CATALOG_FETCH_FAILED, error=error, detail=detail)


def catalog_store_failed(error: str) -> None:
    _flog.warn(CATALOG_STORE_FAILED, error=error)


def refresh_pricing_done(models: int, changes: int) -> None:
    _flog.info(REFRESH_PRICING_DONE, models=models, changes=changes)


def usage_settled_at_estimate(generation_id: str, user_id: str) -> None:
    _flog.warn(USAGE_SETTLED_AT_ESTIMATE, generation_id=generation_id, user_id=user_id)


def ledger_drift(month: str, drift: str, tolerance: str) -> None:
    _flog.error(LEDGER_DRIFT, month=month, drift=drift, tolerance=tolerance)


def reconcile_usage_done(**counts) -> None:
    _flog.info(RECONCILE_USAGE_DONE, **counts)


def usage_queued(generation_id: str, user_id: str, message_id: str, reason: str) -> None:
    _flog.warn(USAGE_QUEUED, generation_id=generation_id, user_id=user_id, message_id=message_id, reason=reason)


def usage_healed(generation_id: str, user_id: str, status: str, queued_s: float) -> None:
    _flog.info(USAGE_HEALED, generation_id=generation_id, user_id=user_id, status=status, queued_s=queued_s)


def usage_heal_retry(generation_id: str, error: str, queued_s: float) -> None:
    _flog.warn(USAGE_HEAL_RETRY, generation_id=generation_id, error=error, queued_s=queued_s)


def ledger_dead_letter(reason: str, record: dict | None, **context) -> None:
    _flog.error(LEDGER_DEAD_LETTER, reason=reason, record=record, **context)


# --- prepaid credits (credits/) ----------------------------------------------------------
CREDITS_GRANTED = "credits_granted"
CREDITS_PAYMENT_SKIPPED = "credits_payment_skipped"  # WARNING: a payment left for an admin (currency, amount)
CREDITS_LOW_BALANCE = "credits_low_balance"


def credits_granted(user_id: str, amount_nanos: int, source: str, entry_id: str) -> None:
    _flog.info(CREDITS_GRANTED, user_id=user_id, amount_nanos=amount_nanos, source=source, entry_id=entry_id)


def credits_payment_skipped(user_id: str, payment_id: str, reason: str, currency: str) -> None:
    _flog.warn(CREDITS_PAYMENT_SKIPPED, user_id=user_id, payment_id=payment_id, reason=reason, currency=currency)


def credits_low_balance(user_id: str, balance_nanos: int, threshold_nanos: int) -> None:
    _flog.warn(CREDITS_LOW_BALANCE, user_id=user_id, balance_nanos=balance_nanos, threshold_nanos=threshold_nanos)


# --- plans -------------------------------------------------------------------------------
PLAN_UNKNOWN = "plan_unknown"  # a token's claim names a plan that does not exist (once per instance and plan)
PLANS_READ_FAILED = "plans_read_failed"


def plan_unknown(plan_id: str, fallback: str | None) -> None:
    _flog.warn(PLAN_UNKNOWN, plan_id=plan_id, fallback=fallback)


def plans_read_failed(error: str) -> None:
    _flog.warn(PLANS_READ_FAILED, error=error)


def webhook_blocked(alert: str, target: str, reason: str) -> None:
    _flog.warn(WEBHOOK_BLOCKED, alert=alert, target=target, reason=reason)


def webhook_failed(alert: str, target: str, error: str) -> None:
    _flog.warn(WEBHOOK_FAILED, alert=alert, target=target, error=error)


def alert_sweep_done(**counts) -> None:
    _flog.info(ALERT_SWEEP_DONE, **counts)
