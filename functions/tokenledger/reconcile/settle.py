"""Settling pending rows against OpenRouter, and the monthly drift check.

Pending rows (streams the client aborted, or that ended without a usage chunk) were
recorded at an estimate. Settlement asks GET /generation for what was really charged
(it 404s for a while after a call, hence the back-off), then in ONE batch: updates the row
to `total_cost` (`cost_source: reconciled`), adds the difference to the month/day rollups
and the totals shard (rollups.difference of the old and new row, so the rollups keep
equalling the rows), and releases the reservation the row held. Rows still unresolved past
`pending_max_age_s` are settled at their estimate and flagged.

Idempotent: only `pending` rows are read, and each update carries a precondition on the
row's update time, so a row settled by a concurrent run fails the batch and nothing of it
applies (no double correction).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger import logs, money, store
from tokenledger.budgets import ceiling
from tokenledger.config import Settings
from tokenledger.metering import rollups
from tokenledger.metering.ledger import increments
from tokenledger.metering.usage import (
    COST_ESTIMATE,
    COST_PENDING,
    COST_RECONCILED,
    FLAG_PENDING,
    FLAG_SETTLED_AT_ESTIMATE,
    LOST_PREFIX,
    UsageRecord,
    record_from_row,
)
from tokenledger.openrouter import UpstreamError

SETTLED = "settled"  # to the charged cost
SETTLED_AT_ESTIMATE = "settled_at_estimate"  # unresolved past the configured age
STILL_PENDING = "still_pending"  # not found yet; next run tries again
ALREADY_SETTLED = "already_settled"  # another run got there first
FAILED = "failed"

ADMIN_ALERTS = "admin_alerts"
YOUNG_ROW_S = 300


@dataclass(frozen=True)
class Settlement:
    generation_id: str
    user_id: str
    outcome: str
    old_cost_nanos: int
    new_cost_nanos: int
    detail: str = ""

    @property
    def difference_nanos(self) -> int:
        return self.new_cost_nanos - self.old_cost_nanos


def pending_rows(db, limit: int = 500) -> list:
    query = db.collection(store.USAGE).where(filter=FieldFilter("cost_source", "==", COST_PENDING))
    return list(query.limit(limit).stream())


def backoff_delays(attempts: int, first_delay_s: float = 0.5) -> list[float]:
    """Pauses between lookup rounds: 0.5 s, 1 s, 2 s, ... (attempts - 1 of them)."""
    return [first_delay_s * 2**i for i in range(max(attempts, 1) - 1)]


def settled_record(record: UsageRecord, generation: dict) -> UsageRecord:
    """The row as OpenRouter billed it: total_cost and, where given, the real token counts."""
    charged = money.to_decimal(generation.get("total_cost"))
    if charged is None:
        charged = money.to_decimal(generation.get("usage")) or money.ZERO

    def tokens(name: str, current: int) -> int:
        value = generation.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else current

    prompt = tokens("tokens_prompt", record.prompt_tokens)
    completion = tokens("tokens_completion", record.completion_tokens)
    upstream = money.to_decimal(generation.get("upstream_inference_cost"))
    flags = tuple(f for f in record.flags if f != FLAG_PENDING)
    return dataclasses.replace(
        record,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=tokens("native_tokens_cached", record.cached_tokens),
        reasoning_tokens=tokens("native_tokens_reasoning", record.reasoning_tokens),
        cost_nanos=money.to_nanos(charged),
        cost_source=COST_RECONCILED,
        is_byok=bool(generation.get("is_byok", record.is_byok)),
        upstream_cost_nanos=None if upstream is None else money.to_nanos(upstream),
        provider=record.provider or generation.get("provider_name"),
        finish_reason=record.finish_reason or generation.get("finish_reason"),
        flags=flags,
        reserved_nanos=0,
        credits_nanos=resplit_credits(record, money.to_nanos(charged)),
    )


def resplit_credits(record: UsageRecord, cost_nanos: int) -> int:
    """What credits pay of a pending row's real charge: split again over what the row charged each
    account at its worst case (budgets/ceiling.py), the allowance first."""
    return ceiling.split_charge(cost_nanos, [record.allowance_nanos, record.credits_nanos])[ceiling.CREDITS]


def at_estimate(record: UsageRecord) -> UsageRecord:
    flags = tuple(f for f in record.flags if f != FLAG_PENDING) + (FLAG_SETTLED_AT_ESTIMATE,)
    return dataclasses.replace(record, cost_source=COST_ESTIMATE, flags=flags, reserved_nanos=0)


def _row_update(new: UsageRecord) -> dict:
    row = new.row()
    fields = {
        name: row[name]
        for name in (
            "provider", "is_free", "model_type", "prompt_tokens", "completion_tokens", "total_tokens",
            "cached_tokens", "reasoning_tokens", "cost", "cost_nanos", "cost_source", "is_byok",
            "upstream_cost", "upstream_cost_nanos", "finish_reason", "flags", "allowance_nanos", "credits_nanos",
        )
    }
    fields["reserved_nanos"] = 0
    fields["settled_at"] = firestore.SERVER_TIMESTAMP
    return fields


def apply_settlement(db, snapshot, old: UsageRecord, new: UsageRecord, settings: Settings) -> None:
    """One batch: the row (only if unchanged since read), the rollup corrections, the release."""
    batch = db.batch()
    batch.update(snapshot.reference, _row_update(new),
                 option=db.write_option(last_update_time=snapshot.update_time))
    user = rollups.difference(rollups.user_delta(new), rollups.user_delta(old))
    # The plain fields too: a document the fold (metering/fold.py) emptied is found by its month.
    plain = {"user_id": old.user_id, "month": old.month}
    month = {**increments(rollups.difference(rollups.month_delta(new), rollups.month_delta(old))), **plain,
             "updated_at": firestore.SERVER_TIMESTAMP}
    if old.reserved_nanos:
        month["reserved_nanos"] = firestore.Increment(-old.reserved_nanos)
        month["reserved"] = firestore.Increment(-money.usd_float(old.reserved_nanos))  # the USD twin (budgets)
    batch.set(store.user_month_doc(db, old.user_id, old.month), month, merge=True)
    if user:
        day = {**increments(user), **plain, "day": old.day, "updated_at": firestore.SERVER_TIMESTAMP}
        batch.set(store.user_day_doc(db, old.user_id, old.day), day, merge=True)
    refund = old.credits_nanos - new.credits_nanos  # charged at the worst case, given back now
    if refund:
        store.add_merge_increments(batch, store.wallet_doc(db, old.user_id), {"user_id": old.user_id},
                                   {"balance_nanos": refund})
    totals = rollups.difference(rollups.totals_delta(new), rollups.totals_delta(old))
    if totals:
        shard = store.shard_index(old.generation_id, settings.total_shards)
        batch.set(store.totals_shard_doc(db, old.month, shard), increments(totals), merge=True)
    batch.commit()


def settle_row(db, snapshot, old: UsageRecord, generation: dict | None, settings: Settings,
               now: datetime) -> Settlement:
    """Settle one row from its generation record (or at its estimate once too old)."""
    base = dict(generation_id=old.generation_id, user_id=old.user_id, old_cost_nanos=old.cost_nanos)
    if generation is not None:
        new, outcome = settled_record(old, generation), SETTLED
    elif now - old.occurred_at > timedelta(seconds=settings.pending_max_age_s):
        new, outcome = at_estimate(old), SETTLED_AT_ESTIMATE
    else:
        return Settlement(**base, outcome=STILL_PENDING, new_cost_nanos=old.cost_nanos)
    try:
        apply_settlement(db, snapshot, old, new, settings)
    except (gexc.FailedPrecondition, gexc.NotFound):
        return Settlement(**base, outcome=ALREADY_SETTLED, new_cost_nanos=old.cost_nanos)
    except gexc.GoogleAPIError as exc:
        return Settlement(**base, outcome=FAILED, new_cost_nanos=old.cost_nanos, detail=str(exc)[:200])
    if outcome == SETTLED_AT_ESTIMATE:
        logs.usage_settled_at_estimate(generation_id=old.generation_id, user_id=old.user_id)
    return Settlement(**base, outcome=outcome, new_cost_nanos=new.cost_nanos)


def settle_pending(db, client, settings: Settings, now: datetime,
                   progress: Callable[[int, int, Settlement], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> list[Settlement]:
    """Settle every pending row it can; returns what happened to each.

    Lookups go in rounds with back-off between them (GET /generation 404s for a while after
    a call), so one run waits at most the sum of the back-off pauses however many rows are
    pending. Only young rows are retried within a run: an older one was already looked up
    by earlier runs and gets one lookup per run.
    """
    waiting = [(snap, record_from_row(snap.to_dict())) for snap in pending_rows(db)]
    total, done = len(waiting), 0
    results: list[Settlement] = []

    def finish(result: Settlement) -> None:
        nonlocal done
        done += 1
        results.append(result)
        if progress:
            progress(done, total, result)

    delays = backoff_delays(settings.generation_lookups)
    for round_index in range(len(delays) + 1):
        last_round = round_index == len(delays)
        retry = []
        for snap, old in waiting:
            try:
                # A lost answer has no generation id to look up: only its age settles it.
                generation = None if old.generation_id.startswith(LOST_PREFIX) else client.generation(old.generation_id)
            except UpstreamError as exc:
                finish(Settlement(old.generation_id, old.user_id, FAILED, old.cost_nanos, old.cost_nanos, exc.message))
                continue
            young = now - old.occurred_at < timedelta(seconds=YOUNG_ROW_S)
            if generation is None and young and not last_round:
                retry.append((snap, old))
                continue
            finish(settle_row(db, snap, old, generation, settings, now))
        if not retry:
            break
        sleep(delays[round_index])
        waiting = retry
    return results


# -- monthly drift ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Drift:
    month: str
    ledger_total: Decimal
    openrouter_total: Decimal
    tolerance: Decimal

    @property
    def drift(self) -> Decimal:
        return self.openrouter_total - self.ledger_total

    @property
    def above_tolerance(self) -> bool:
        return abs(self.drift) > self.tolerance


def drift_tolerance(openrouter_total: Decimal, settings: Settings) -> Decimal:
    """The larger of the relative and the absolute tolerance (default 1% or $1)."""
    return max(abs(openrouter_total) * settings.drift_tolerance_pct, settings.drift_tolerance_usd)


def ledger_month_nanos(db, month: str) -> int:
    shards = db.collection(store.TOTALS).document(month).collection(store.SHARDS).stream()
    return sum(int((s.to_dict() or {}).get("cost_nanos") or 0) for s in shards)


def check_drift(db, client, settings: Settings, now: datetime) -> Drift:
    """Compare this month's ledger with GET /key usage_monthly; write reconciliation/{month}
    and, above tolerance, an admin alert."""
    month = now.strftime("%Y-%m")
    key = client.key_info()
    openrouter_total = money.to_decimal(key.get("usage_monthly")) or money.ZERO
    ledger_total = money.from_nanos(ledger_month_nanos(db, month))
    result = Drift(month, ledger_total, openrouter_total, drift_tolerance(openrouter_total, settings))
    doc = {
        "month": month,
        "ledger_total": float(result.ledger_total),
        "ledger_total_nanos": money.to_nanos(result.ledger_total),
        "openrouter_total": float(result.openrouter_total),
        "openrouter_total_nanos": money.to_nanos(result.openrouter_total),
        "drift": float(result.drift),
        "drift_nanos": money.to_nanos(result.drift),
        "tolerance": float(result.tolerance),
        "above_tolerance": result.above_tolerance,
        "checked_at": now,
    }
    db.collection(store.RECONCILIATION).document(month).set(doc)
    if result.above_tolerance:
        logs.ledger_drift(month=month, drift=str(result.drift), tolerance=str(result.tolerance))
        db.collection(ADMIN_ALERTS).document(f"ledger_drift_{month}").set(
            {
                "alert_type": "ledger_drift",
                "month": month,
                "ledger_total": doc["ledger_total"],
                "openrouter_total": doc["openrouter_total"],
                "drift": doc["drift"],
                "tolerance": doc["tolerance"],
                "message": (
                    f"The ledger for {month} differs from OpenRouter's account by "
                    f"${result.drift:.6f} (tolerance ${result.tolerance:.2f})."
                ),
                "updated_at": firestore.SERVER_TIMESTAMP,
                "created_at": now,
            }
        )
    return result
