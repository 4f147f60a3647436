"""Issue 2 numbers: commits per tracked call, CPU to build a record (added latency: latency.py)."""
from __future__ import annotations

import timeit
import uuid
from datetime import datetime, timezone
from decimal import Decimal

from google.cloud import firestore

from scripts.bench.common import summary, timed_calls
from scripts.devkit.table import print_table
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price, parse_model

RESPONSE = {
    "id": "gen-bench",
    "model": "anthropic/claude-sonnet-4",
    "provider": "Anthropic",
    "choices": [{"finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 2000,
        "completion_tokens": 300,
        "total_tokens": 2300,
        "prompt_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 120},
        "cost": 0.0123,
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": 0.0123},
    },
}
PRICE = parse_model(
    {"id": "anthropic/claude-sonnet-4", "pricing": {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003"}}
)
FALLBACK = fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))


def _record(generation_id: str = "gen-bench", uid: str = "bench-user"):
    return build_record(
        {**RESPONSE, "id": generation_id},
        CallFacts(uid, "anthropic/claude-sonnet-4", "/v1/chat/completions", datetime.now(timezone.utc),
                  100, "bench", {"images": 0, "message_count": 2}),
        Pricing(PRICE, FALLBACK),
    )


class CountingDb:
    """Counts the commits and transactions the ledger asks Firestore for."""

    def __init__(self, db):
        self._db = db
        self.commits = 0
        self.transactions = 0

    def __getattr__(self, name):
        return getattr(self._db, name)

    def transaction(self, *args, **kwargs):
        self.transactions += 1
        return self._db.transaction(*args, **kwargs)

    def batch(self):
        batch = self._db.batch()
        original = batch.commit

        def commit(*args, **kwargs):
            self.commits += 1
            return original(*args, **kwargs)

        batch.commit = commit
        return batch


def bench_commits(db, calls: int = 200) -> list:
    counting = CountingDb(db)
    uid = f"bench-{uuid.uuid4().hex[:8]}"
    latencies = timed_calls(
        lambda i: ledger.record_usage(counting, _record(f"gen-bench-{uuid.uuid4().hex}", uid), Settings()),
        calls,
        8,
        "ledger commits",
    )
    p50, p95, _ = summary(latencies)
    return [
        ["Firestore commits per tracked call", f"{counting.commits / calls:.2f}", "target 1"],
        ["transactions per tracked call", f"{counting.transactions / calls:.2f}", "target 0"],
        ["ledger commit latency p50 / p95 (emulator)", f"{p50:.1f} / {p95:.1f} ms", f"{calls} calls, 8 threads"],
    ]


def bench_record_cpu() -> list:
    number = 20_000
    seconds = min(timeit.repeat(lambda: _record(), number=number, repeat=5))
    per_call_us = seconds / number * 1e6
    row_us = min(timeit.repeat(lambda r=_record(): r.row(), number=number, repeat=5)) / number * 1e6
    return [
        ["CPU to build a UsageRecord from a response", f"{per_call_us:.1f} µs", "target < 50 µs"],
        ["CPU to render its Firestore row", f"{row_us:.1f} µs", ""],
    ]


def run(stack) -> None:
    db = firestore.Client(project=stack.project)
    print("\n== Metering (issue 2) ==")
    print_table(["measure", "value", "note"], bench_record_cpu() + bench_commits(db))
