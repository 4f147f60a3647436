"""Run the budget check by hand: every active user against their budget, missing alerts written,
expired reservations released. The same code as the scheduled `check_budgets` function.

    python -m tokenledger.tools.check_budgets [--now 2026-11-30T23:00:00Z] [--page-size N] [--mail]

Configuration and Firestore as every tool (tokenledger/tools/common.py). Safe to run at any
time and as often as you like: alerts are written once, releases happen once.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime

from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings
from tokenledger.tools import common
from tokenledger.tools.table import print_table


def run(db, settings: Settings, now: datetime, quiet: bool = False):
    def progress(done: int) -> None:  # users checked so far (no count query: it would cost reads too)
        if not quiet:
            print(f"\r  checked {done:,} users", end="", flush=True)

    report = check_budgets(db, settings, now, progress)
    if not quiet:
        print()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--now", help="the run's clock, ISO 8601 (default: now); picks the month")
    parser.add_argument("--page-size", type=int, default=500, help="budgets per page (default 500)")
    parser.add_argument("--mail", action="store_true", help="also write mail documents (Trigger Email)")
    common.add_project_arg(parser)
    args = parser.parse_args(argv)
    settings = common.settings(budget_check_page_size=args.page_size, mail_enabled=args.mail)
    db = common.firestore_client(args.project)
    now = common.parse_now(args.now)
    print(f"Budget check for {now:%Y-%m} (clock {now.isoformat()})")
    report = run(db, settings, now)
    print_table(
        ["budgets", "default budgets", "over budget", "alerts written", "reservations released", "reads",
         "budget reads", "copies written", "seconds"],
        [[report.budgets, report.default_budgets, report.over_budget, report.alerts_written,
          report.reservations_released, report.reads, report.budget_reads, report.copies_written,
          f"{report.seconds:.2f}"]],
        numparse=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
