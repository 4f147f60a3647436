"""Settle pending usage rows against OpenRouter and check this month's drift, by hand.

Does what the scheduled `reconcile_usage` function does, with progress and a table:
for each `pending` row (aborted / incomplete streams), GET /generation (with back-off),
settle the row to the charged cost, correct the rollups, release the reservation; rows
unresolved past the configured age are settled at their estimate and flagged. Then compare
the month's ledger total with GET /key usage_monthly and write reconciliation/{YYYY-MM}.

Configuration and Firestore as every tool (tokenledger/tools/common.py). Safe to run any time.

    scripts/stack exec -- functions/venv/bin/python -m tokenledger.tools.reconcile
    python -m tokenledger.tools.reconcile --pending-max-age 3600 --no-drift
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime

from tokenledger import jobs
from tokenledger.openrouter import OpenRouterClient, UpstreamError
from tokenledger.reconcile import settle
from tokenledger.tools import common
from tokenledger.tools.table import print_table, usd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending-max-age", type=int, metavar="SECONDS",
                        help="settle rows unresolved this long at their estimate (default: the configured value)")
    parser.add_argument("--no-drift", action="store_true", help="skip the monthly drift check")
    parser.add_argument("--now", type=datetime.fromisoformat, metavar="ISO8601",
                        help="the run's clock, e.g. 2026-12-01T00:05:00+00:00 (default: now)")
    common.add_project_arg(parser)
    args = parser.parse_args(argv)
    now = args.now or jobs.now()

    overrides = {} if args.pending_max_age is None else {"pending_max_age_s": args.pending_max_age}
    settings = common.settings(**overrides)
    db, client = common.firestore_client(args.project), OpenRouterClient(settings)

    def progress(index: int, total: int, result: settle.Settlement) -> None:
        print(f"[{index}/{total}] {result.generation_id}  {result.outcome}", flush=True)

    print("settling pending rows...", flush=True)
    results = settle.settle_pending(db, client, settings, now, progress=progress)
    if results:
        print_table(
            ["generation", "user", "outcome", "was", "now", "difference"],
            [[r.generation_id, r.user_id, r.outcome, usd(r.old_cost_nanos), usd(r.new_cost_nanos),
              usd(r.difference_nanos)] for r in results],
            title="Pending rows",
        )
    else:
        print("no pending rows")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    if counts:
        print_table(["outcome", "rows"], sorted(counts.items()))

    if not args.no_drift:
        try:
            drift = settle.check_drift(db, client, settings, now)
        except UpstreamError as exc:
            print(f"drift check failed: {exc.message}", file=sys.stderr)
            return 1
        print_table(
            ["month", "ledger", "openrouter", "drift", "tolerance", "alert"],
            [[drift.month, f"${drift.ledger_total:,.6f}", f"${drift.openrouter_total:,.6f}",
              f"${drift.drift:,.6f}", f"${drift.tolerance:,.2f}", "YES" if drift.above_tolerance else "no"]],
            title="Drift against OpenRouter (GET /key usage_monthly)",
        )
    return 1 if counts.get(settle.FAILED) else 0


if __name__ == "__main__":
    sys.exit(main())
