"""Generated usage for tests and benchmarks: UsageRecords as the API would build them, and a
fast seeder that writes them with the ledger's own writes, many calls per batch."""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal

from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, UsageRecord, build_record
from tokenledger.pricing.prices import fallback_price, parse_model

# (model, provider, prompt price, completion price): a few paid models and a free one.
MODELS = {
    "openai/gpt-4o-mini": ("OpenAI", "0.00000015", "0.0000006"),
    "anthropic/claude-sonnet-4": ("Anthropic", "0.000003", "0.000015"),
    "google/gemini-2.5-flash": ("Google", "0.0000003", "0.0000025"),
    "meta-llama/llama-3.3-70b-instruct:free": ("Meta", "0", "0"),
}
FALLBACK = fallback_price("unknown", Decimal("0.00001"), Decimal("0.00003"))
# Writes per call in a ledger batch (row, month, day, totals shard); Firestore allows 500.
WRITES_PER_CALL = 4


def record(
    uid: str,
    model: str,
    occurred_at: datetime,
    prompt: int = 1200,
    completion: int = 300,
    cached: int = 0,
    reasoning: int = 0,
    feature: str | None = None,
    latency_ms: int = 800,
    generation_id: str | None = None,
) -> UsageRecord:
    """A call as build_record makes it from an OpenRouter response charging the list price."""
    provider, prompt_price, completion_price = MODELS[model]
    price = parse_model({"id": model, "pricing": {"prompt": prompt_price, "completion": completion_price}})
    cost = Decimal(prompt) * Decimal(prompt_price) + Decimal(completion) * Decimal(completion_price)
    gen = generation_id or f"gen-wl-{uuid.uuid4().hex}"
    response = {
        "id": gen,
        "model": model,
        "provider": provider,
        "choices": [{"finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
            "cost": float(cost),
        },
    }
    return build_record(
        response,
        CallFacts(uid, model, "/v1/chat/completions", occurred_at, latency_ms, feature,
                  {"message_count": 1, "prompt_chars": prompt * 3, "images": 0}),
        Pricing(price, FALLBACK),
    )


def seed(db, records: list[UsageRecord], settings: Settings | None = None, calls_per_batch: int = 100, label: str = "") -> float:
    """Write records with the ledger's writes (row create + rollup and shard Increments),
    `calls_per_batch` calls per commit; prints progress; returns the seconds taken."""
    settings = settings or Settings()
    calls_per_batch = min(calls_per_batch, 500 // WRITES_PER_CALL)
    started = time.perf_counter()
    step = max(len(records) // 10, calls_per_batch)
    for offset in range(0, len(records), calls_per_batch):
        batch = db.batch()
        for rec in records[offset : offset + calls_per_batch]:
            ledger.add_call_writes(batch, db, rec, settings, replay=True)
        batch.commit()
        done = min(offset + calls_per_batch, len(records))
        if label and (done % step < calls_per_batch or done == len(records)):
            print(f"    {label}: {done:,}/{len(records):,} calls seeded", flush=True)
    return time.perf_counter() - started
