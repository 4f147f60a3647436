#!/usr/bin/env python3
"""Run the budget check by hand: every budget against its month, missing alerts written,
expired reservations released. The same code as the scheduled `check_budgets` function.

    functions/venv/bin/python scripts/check_budgets.py [--now 2026-11-30T23:00:00Z] [--page-size N] [--mail]

Uses the Firestore the environment points at: the emulator when FIRESTORE_EMULATOR_HOST is set
(scripts/stack exec -- ...), else the project in GCLOUD_PROJECT with your credentials. Safe to
run at any time and as often as you like: alerts are written once, releases happen once.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "functions", ROOT):
    sys.path.insert(0, str(path))

from google.cloud import firestore  # noqa: E402

from scripts.devkit.table import print_table  # noqa: E402
from tokenledger import config  # noqa: E402
from tokenledger.budgets.check import check_budgets  # noqa: E402
from tokenledger.config import Settings  # noqa: E402


def parse_now(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run(db, settings: Settings, now: datetime, quiet: bool = False):
    total = db.collection("user_budgets").count().get()[0][0].value

    def progress(done: int) -> None:
        if not quiet:
            print(f"\r  checked {done:,} of {total:,} budgets", end="", flush=True)

    report = check_budgets(db, settings, now, progress)
    if not quiet:
        print()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--now", help="the run's clock, ISO 8601 (default: now); picks the month")
    parser.add_argument("--page-size", type=int, default=500, help="budgets per page (default 500)")
    parser.add_argument("--mail", action="store_true", help="also write mail documents (Trigger Email)")
    args = parser.parse_args()
    settings = replace(Settings(), budget_check_page_size=args.page_size, mail_enabled=args.mail)
    db = firestore.Client(project=config.project_id())
    now = parse_now(args.now)
    print(f"Budget check for {now:%Y-%m} (clock {now.isoformat()})")
    report = run(db, settings, now)
    print_table(
        ["budgets", "over budget", "alerts written", "reservations released", "reads", "seconds"],
        [[report.budgets, report.over_budget, report.alerts_written, report.reservations_released, report.reads,
          f"{report.seconds:.2f}"]],
        numparse=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
