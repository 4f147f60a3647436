"""Fold cooled-down hot users' shards into their base month and day documents by hand: the same
code as the scheduled `fold_shards` function (metering/fold.py).

    python -m tokenledger.tools.fold_shards [--now 2026-11-30T23:00:00Z] [--cool-s 120] [--month 2026-11 ...]

Configuration and Firestore as every tool (tokenledger/tools/common.py). Safe to run at any time
and as often as you like: a period's money moves once, in one commit, or not at all.
"""
from __future__ import annotations

import argparse
import sys

from tokenledger.metering import fold
from tokenledger.tools import common
from tokenledger.tools.table import print_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--now", help="the run's clock, ISO 8601 (default: now)")
    parser.add_argument("--cool-s", type=int, help="fold periods no shard of which was written for this long "
                                                   "(default: TOKENLEDGER_FOLD_COOL_S)")
    parser.add_argument("--month", action="append", help="a month to fold (YYYY-MM; default: now's and the one before)")
    common.add_project_arg(parser)
    args = parser.parse_args(argv)
    settings = common.settings()
    db = common.firestore_client(args.project)
    now = common.parse_now(args.now)
    cool_s = settings.fold_cool_s if args.cool_s is None else args.cool_s
    report = fold.fold_shards(db, now, cool_s, args.month)
    print_table(["periods folded", "shards folded", "still hot", "raced (next run)", "reads", "writes"],
                [[report.periods_folded, report.shards_folded, report.periods_still_hot, report.periods_raced,
                  report.reads, report.writes]], numparse=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
