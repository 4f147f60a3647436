"""The fold's cost (issue 22): hot users' calls recorded through the ledger in this process at a
few rates (the placement table's clock stepped, so the rate is exact whatever the machine), then
one fold run; Firestore operations counted as billed (opcount). Prints, per rate: the calls, the
documents their month and day were spread over, what the calls themselves wrote, what the fold
read and wrote, and what a reader of the month pays before and after the fold."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

from google.cloud import firestore

from scripts.bench import opcount
from scripts.devkit.table import print_table
from tokenledger import periods, store
from tokenledger.config import Settings
from tokenledger.metering import fold, hot_users, ledger
from tokenledger.metering.hot_users import HotUsers
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

WHEN = datetime(2045, 3, 14, 9, 0, tzinfo=timezone.utc)  # a month nothing else writes
MONTH = WHEN.strftime("%Y-%m")
CASES = ((2, 60), (5, 150), (20, 400))  # (calls a second, calls)
SETTINGS = Settings(record_deadline_s=10)


class _Clock:
    def __init__(self, step: float):
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _record(db, uid: str, i: int) -> None:
    response = {"id": f"gen-bench-fold-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
                "choices": [{"finish_reason": "stop"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60, "cost": 0.000013 + i * 1e-9}}
    facts = CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", WHEN, latency_ms=1)
    ledger.record_usage(db, build_record(response, facts, Pricing(None, fallback_price(
        "x", Decimal("0.00001"), Decimal("0.00003")))), SETTINGS)


def run(stack) -> None:
    print("\n== The fold: a hot user's shards moved back into the base documents (issue 22) ==")
    db = firestore.Client(project=stack.project)
    opcount.install()
    rows = []
    for rate, calls in CASES:
        uid = f"bench-fold-{uuid.uuid4().hex[:8]}"
        hot_users.PLACEMENT = HotUsers(store.USER_SHARDS, clock=_Clock(1.0 / rate))
        opcount.OPS.reset()
        for i in range(calls):
            _record(db, uid, i)
        call_ops = opcount.OPS.snapshot()
        docs = len(periods.read_docs(db, uid, periods.MONTHS, MONTH, ["month"]))
        days = len(periods.read_docs(db, uid, periods.DAYS, WHEN.strftime("%Y-%m-%d"), ["month"]))
        opcount.OPS.reset()
        before = periods.read(db, uid, periods.MONTHS, MONTH)
        read_before = opcount.OPS.snapshot()["reads"]
        opcount.OPS.reset()
        report = fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[MONTH])
        fold_ops = opcount.OPS.snapshot()
        opcount.OPS.reset()
        after = periods.read(db, uid, periods.MONTHS, MONTH)
        read_after = opcount.OPS.snapshot()["reads"]
        base = store.user_month_doc(db, uid, MONTH).get().to_dict()
        exact = before["cost_nanos"] == after["cost_nanos"] == base["cost_nanos"] and base["calls"] == calls
        rows.append([f"{rate}/s x {calls}", f"{docs} + {days}", call_ops["writes"] + call_ops["deletes"],
                     fold_ops["reads"], fold_ops["writes"] + fold_ops["deletes"],
                     f"{(fold_ops['writes'] + fold_ops['deletes']) / calls:.3f}",
                     f"{read_before} -> {read_after}", "yes" if exact else "NO"])
        hot_users.PLACEMENT = HotUsers(store.USER_SHARDS)
        del report
    print_table(["hot user", "month + day documents", "writes of the calls", "fold reads", "fold writes",
                 "fold writes per call", "reads of the month before -> after", "base alone exact after"],
                rows, title="One fold run after the burst (cool-down 0 here; scheduled: TOKENLEDGER_FOLD_COOL_S "
                            "after the last spread write)", numparse=False)
