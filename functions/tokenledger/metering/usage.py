"""UsageRecord: one metered call, and how a response becomes one (pure: no I/O).

The cost of record is what OpenRouter charged (`usage.cost`). When the response carries no
cost, the catalog estimate stands in (`cost_source: estimate`); when the model is not in the
catalog either, a conservative fallback price is used and the row is flagged `unpriced` —
never a silent $0. Free vs paid follows what was charged, not the model's name.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from decimal import Decimal

from tokenledger import money
from tokenledger.pricing.prices import ModelPrice, TokenCounts, estimate_cost

FREE_SUFFIX = ":free"

# Flags a row can carry; each marks something a person should look at.
FLAG_FREE_MODEL_BILLED = "free_model_billed"
FLAG_UNPRICED = "unpriced"
FLAG_COST_MISSING = "cost_missing"
FLAG_PENDING = "pending_settlement"  # recorded at an estimate; reconcile settles it
FLAG_SETTLED_AT_ESTIMATE = "settled_at_estimate"  # OpenRouter never answered for it
FLAG_DOWNGRADED = "downgraded"  # served on the budget's downgrade_to instead of requested_model

# A call sent to OpenRouter whose answer never came (read timeout, connection reset): no
# generation id is known, so its pending row is keyed by this prefix and a random id; reconcile
# cannot look it up and settles it at its estimate (the worst case) after pending_max_age_s.
LOST_PREFIX = "lost-"
STATUS_NO_ANSWER = "no_answer"

# cost_source values
COST_OPENROUTER = "openrouter"
COST_ESTIMATE = "estimate"
COST_UNPRICED = "unpriced"
COST_PENDING = "pending"
COST_RECONCILED = "reconciled"


@dataclass(frozen=True)
class UsageRecord:
    generation_id: str
    user_id: str
    requested_model: str
    model: str
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_nanos: int
    estimated_cost_nanos: int
    cost_source: str  # openrouter | estimate | unpriced | pending | reconciled
    is_byok: bool
    upstream_cost_nanos: int | None
    latency_ms: int
    endpoint: str
    feature: str | None
    status: str  # ok | error | aborted | incomplete
    finish_reason: str | None
    occurred_at: datetime
    flags: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    # Reservation (USD nanos) this call holds against the user's budget; released on record.
    reserved_nanos: int = 0
    # The reservation document the ledger deletes when it settles the call (None: nothing held).
    reservation_id: str | None = None
    # The reservation is a lease (budgets/leases.py): the ledger takes the call's cost off its
    # amount and leaves it (and its in-flight slot) to the instance for the next call.
    lease: bool = False
    # Prepaid credits (budgets/ceiling.py): what the wallet paid of cost_nanos (the allowance paid
    # the rest), the wallet's share of the call's worst case (reserved_nanos is the allowance's),
    # and what this commit does to the wallet when the hold closes in it: the hold released and
    # the balance charged (this call's credits, plus what earlier calls of a closing lease spent).
    credits_nanos: int = 0
    credits_reserved_nanos: int = 0
    wallet_release_nanos: int = 0
    wallet_charge_nanos: int = 0

    @property
    def lease_share_nanos(self) -> int:
        """What settling this call takes off its lease: a pending row the call's worst case (the
        row holds it), else the call's cost — never more than the call reserved from the lease
        (`reserved_nanos`, its worst case; $0 for a budget that is not enforced, whose lease holds
        no money). Taking more would leave the lease, and the month's reserved, short by the rest:
        cost beyond what was reserved is the month's cost only, as with a call's own reservation."""
        if self.cost_source == COST_PENDING:
            return self.reserved_nanos
        return min(self.allowance_nanos, self.reserved_nanos)

    @property
    def allowance_nanos(self) -> int:
        """What the month's allowance paid of cost_nanos (all of it but what credits paid)."""
        return self.cost_nanos - self.credits_nanos

    def wallet_effect(self, replay: bool = False) -> tuple[int, int]:
        """(change of the wallet's held, charge to its balance) made by the ledger's commit: a
        call holding nothing (or replayed: its hold was released when it expired) is charged its
        credits; a lease keeps what its calls spent on its document until it closes; a hold that
        closes in this commit is released and charged."""
        if replay or not self.reservation_id:
            return 0, self.credits_nanos
        if self.lease:
            return 0, 0
        return -self.wallet_release_nanos, self.wallet_charge_nanos

    @property
    def is_free(self) -> bool:
        return self.cost_nanos == 0

    @property
    def model_type(self) -> str:
        return "free" if self.is_free else "paid"

    @property
    def month(self) -> str:
        return self.occurred_at.strftime("%Y-%m")

    @property
    def day(self) -> str:
        return self.occurred_at.strftime("%Y-%m-%d")

    def row(self) -> dict:
        """The `usage_tracking` document, without the server timestamp the ledger adds."""
        return {
            "generation_id": self.generation_id,
            "user_id": self.user_id,
            "model": self.model,
            "requested_model": self.requested_model,
            "provider": self.provider,
            "is_free": self.is_free,
            "model_type": self.model_type,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost": money.usd_float(self.cost_nanos),
            "cost_nanos": self.cost_nanos,
            "allowance_nanos": self.allowance_nanos,
            "credits_nanos": self.credits_nanos,
            "estimated_cost": money.usd_float(self.estimated_cost_nanos),
            "estimated_cost_nanos": self.estimated_cost_nanos,
            "cost_source": self.cost_source,
            "is_byok": self.is_byok,
            "upstream_cost": (
                None if self.upstream_cost_nanos is None else money.usd_float(self.upstream_cost_nanos)
            ),
            "upstream_cost_nanos": self.upstream_cost_nanos,
            "latency_ms": self.latency_ms,
            "endpoint": self.endpoint,
            "feature": self.feature,
            "status": self.status,
            "finish_reason": self.finish_reason,
            "flags": list(self.flags),
            "month": self.month,
            "day": self.day,
            "occurred_at": self.occurred_at,
            "metadata": self.metadata,
        }

    def to_log(self) -> dict:
        """JSON-safe form for the structured log; `from_log` reads it back for replay."""
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_log(cls, data: dict) -> "UsageRecord":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        occurred = datetime.fromisoformat(values["occurred_at"])
        values["occurred_at"] = occurred if occurred.tzinfo else occurred.replace(tzinfo=timezone.utc)
        values["flags"] = tuple(values.get("flags") or ())
        return cls(**values)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(int(value), 0)


def token_counts(usage: dict, images: int = 0) -> TokenCounts:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return TokenCounts(
        prompt=_int(usage.get("prompt_tokens")),
        completion=_int(usage.get("completion_tokens")),
        cached=_int(prompt_details.get("cached_tokens")),
        cache_write=_int(prompt_details.get("cache_write_tokens")),
        reasoning=_int(completion_details.get("reasoning_tokens")),
        images=images,
    )


def request_metadata(body: dict, store_prompts: bool = False) -> dict:
    """What is kept about the request: sizes and parameters, no prompt text by default."""
    messages = body.get("messages") or []
    chars = 0
    images = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "image_url":
                    images += 1
                chars += len(part.get("text") or "") if isinstance(part.get("text"), str) else 0
    meta = {
        "message_count": len(messages),
        "prompt_chars": chars,
        "images": images,
        "stream": bool(body.get("stream")),
    }
    for name in ("max_tokens", "temperature", "top_p"):
        if body.get(name) is not None:
            meta[name] = body[name]
    if store_prompts:
        meta["messages"] = messages
    return meta


def estimate_prompt_tokens(body: dict) -> int:
    """A deliberately generous prompt size guess (about 3 characters a token) for estimates."""
    meta = request_metadata(body)
    return math.ceil(meta["prompt_chars"] / 3) + 8 * meta["message_count"] + 1


@dataclass(frozen=True)
class CallFacts:
    """What the API knows about a call apart from OpenRouter's answer."""

    user_id: str
    requested_model: str
    endpoint: str
    occurred_at: datetime
    latency_ms: int = 0
    feature: str | None = None
    metadata: dict = field(default_factory=dict)  # request_metadata(): sizes, parameters


@dataclass(frozen=True)
class Pricing:
    """How a call is priced when OpenRouter's answer carries no cost."""

    price: ModelPrice | None  # catalog price of the model that served (None: not in the catalog)
    fallback: ModelPrice  # conservative price when there is neither a charged cost nor a price
    byok_fee_rate: Decimal | None = None  # OpenRouter's fee share on a BYOK call


@dataclass(frozen=True)
class Charge:
    cost_nanos: int
    estimated_cost_nanos: int
    cost_source: str
    flags: tuple[str, ...]


def charge(usage: dict, tokens: TokenCounts, pricing: Pricing, models: tuple[str, ...]) -> Charge:
    """The cost of record: OpenRouter's `usage.cost` when present, else the catalog estimate,
    else the fallback price (flagged `unpriced`). `models` are the requested and served ids."""
    price = pricing.price
    priced = price is not None and not price.variable
    estimate = estimate_cost(price if priced else pricing.fallback, tokens)
    if usage.get("is_byok") and pricing.byok_fee_rate is not None:
        # BYOK: the provider bills the tokens; OpenRouter charges (`cost`) its fee on them.
        estimate *= pricing.byok_fee_rate
    charged = money.to_decimal(usage.get("cost"))
    flags: list[str] = []
    if charged is not None and charged >= 0:
        cost, source = charged, COST_OPENROUTER
    elif priced:
        cost, source = estimate, COST_ESTIMATE
        flags.append(FLAG_COST_MISSING)
    else:
        cost, source = estimate, COST_UNPRICED
        flags.extend([FLAG_COST_MISSING, FLAG_UNPRICED])
    cost_nanos = money.to_nanos(cost)
    if cost_nanos > 0 and any(m.endswith(FREE_SUFFIX) for m in models):
        flags.append(FLAG_FREE_MODEL_BILLED)
    return Charge(cost_nanos, money.to_nanos(estimate), source, tuple(flags))


def build_record(
    response: dict,
    call: CallFacts,
    pricing: Pricing,
    *,
    generation_id: str | None = None,
    status: str | None = None,
) -> UsageRecord:
    """An OpenRouter chat completion (dict) -> UsageRecord. `generation_id` overrides the
    response's `id`; `status` overrides the one read from its finish reason."""
    usage = response.get("usage") or {}
    tokens = token_counts(usage, images=int(call.metadata.get("images") or 0))
    served_model = str(response.get("model") or call.requested_model)
    cost = charge(usage, tokens, pricing, (call.requested_model, served_model))
    upstream = money.to_decimal((usage.get("cost_details") or {}).get("upstream_inference_cost"))
    choices = response.get("choices") or []
    finish_reason = choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None
    return UsageRecord(
        generation_id=str(generation_id or response.get("id") or ""),
        user_id=call.user_id,
        requested_model=call.requested_model,
        model=served_model,
        provider=response.get("provider") if isinstance(response.get("provider"), str) else None,
        prompt_tokens=tokens.prompt,
        completion_tokens=tokens.completion,
        total_tokens=_int(usage.get("total_tokens")) or tokens.prompt + tokens.completion,
        cached_tokens=tokens.cached,
        cache_write_tokens=tokens.cache_write,
        reasoning_tokens=tokens.reasoning,
        cost_nanos=cost.cost_nanos,
        estimated_cost_nanos=cost.estimated_cost_nanos,
        cost_source=cost.cost_source,
        is_byok=bool(usage.get("is_byok")),
        upstream_cost_nanos=None if upstream is None else money.to_nanos(upstream),
        latency_ms=call.latency_ms,
        endpoint=call.endpoint,
        feature=call.feature,
        status=status or ("error" if finish_reason == "error" else "ok"),
        finish_reason=finish_reason,
        occurred_at=call.occurred_at,
        flags=cost.flags,
        metadata=call.metadata,
    )


def record_from_row(row: dict) -> UsageRecord:
    """A stored `usage_tracking` row -> UsageRecord (for corrections computed from the row)."""
    occurred = row.get("occurred_at") or row.get("timestamp")
    if isinstance(occurred, str):
        occurred = datetime.fromisoformat(occurred)
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=timezone.utc)
    return UsageRecord(
        generation_id=row["generation_id"],
        user_id=row["user_id"],
        requested_model=row.get("requested_model") or row["model"],
        model=row["model"],
        provider=row.get("provider"),
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
        total_tokens=int(row.get("total_tokens") or 0),
        cached_tokens=int(row.get("cached_tokens") or 0),
        cache_write_tokens=int(row.get("cache_write_tokens") or 0),
        reasoning_tokens=int(row.get("reasoning_tokens") or 0),
        cost_nanos=int(row.get("cost_nanos") or 0),
        estimated_cost_nanos=int(row.get("estimated_cost_nanos") or 0),
        cost_source=str(row.get("cost_source") or COST_ESTIMATE),
        is_byok=bool(row.get("is_byok")),
        upstream_cost_nanos=row.get("upstream_cost_nanos"),
        latency_ms=int(row.get("latency_ms") or 0),
        endpoint=str(row.get("endpoint") or ""),
        feature=row.get("feature"),
        status=str(row.get("status") or "ok"),
        finish_reason=row.get("finish_reason"),
        occurred_at=occurred,
        flags=tuple(row.get("flags") or ()),
        metadata=dict(row.get("metadata") or {}),
        reserved_nanos=int(row.get("reserved_nanos") or 0),
        credits_nanos=int(row.get("credits_nanos") or 0),
    )
