"""A month of tokenledger usage for people: totals, top users, cost by model, feature and
provider, free vs paid — as aligned tables, CSV or JSON, and a chart.

    python -m tokenledger.tools.report --month 2026-11                 tables in the terminal
    python -m tokenledger.tools.report --month 2026-11 --user UID      one user's month
    python -m tokenledger.tools.report --month 2026-11 --csv | --json  for spreadsheets and scripts
    python -m tokenledger.tools.report --month 2026-11 --plot out.png  daily cost per model and the top users
    make report ARGS="--month 2026-11"

Firestore as every tool (tokenledger/tools/common.py): the emulator when FIRESTORE_EMULATOR_HOST
is set (e.g. inside `scripts/stack exec --`), otherwise production with Application Default
Credentials (`gcloud auth application-default login`) and --project or GOOGLE_CLOUD_PROJECT.
Everything comes from rollups and the sharded totals, never from scanning usage rows.
"""
from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
from datetime import datetime, timezone

from tokenledger.analytics import figures, summaries
from tokenledger.money import from_nanos
from tokenledger.tools import common
from tokenledger.tools.table import print_table, usd

BREAKDOWN_TITLES = {"by_model": "model", "by_feature": "feature", "by_provider": "provider"}


def month_report(db, month: str, top: int) -> dict:
    summed = summaries.totals(db, month)
    return {
        "month": month,
        "totals": summed["totals"],
        "active_users": summed["active_users"],
        "efficiency": summed["efficiency"],
        "top_users": summaries.top_users(db, month, top)["users"],
        **summaries.month_breakdowns(db, month),
        "daily_cost_nanos_by_model": summaries.daily_cost_by_model(db, month),
    }


def user_report(db, month: str, uid: str) -> dict:
    first, last = figures.month_bounds(month)
    summary = summaries.user_usage(db, uid, figures.DateRange(first, last), "day")
    summary.pop("meta", None)
    return {"month": month, **summary, "daily_cost_nanos_by_model": summaries.daily_cost_by_model(db, month, uid)}


def _breakdown_rows(groups: dict, total_nanos: int) -> list[list]:
    return [
        [key, v["calls"], v["tokens"], usd(v["cost_nanos"]), f"{100 * v['cost_nanos'] / total_nanos:.1f}%" if total_nanos else "-"]
        for key, v in groups.items()
    ]


def _free_paid_rows(t: dict) -> list[list]:
    return [
        ["free", t["free_calls"], t["free_tokens"], usd(0)],
        ["paid", t["paid_calls"], t["paid_tokens"], usd(t["cost_nanos"])],
    ]


def _figure(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.startswith(("avg_cost", "cost_per")):
        return f"${value:,.6f}"
    if name.endswith("share") or "share_of" in name:
        return f"{100 * value:.1f}%"
    return f"{value:,.0f} ms" if "latency" in name else f"{value:,}"


def print_tables(report: dict) -> None:
    t = report["totals"]
    who = f"user {report['user_id']}" if "user_id" in report else "all users"
    print(f"tokenledger usage, {report['month']} ({who}); amounts in USD, exact to the nano-dollar")
    rows = [
        ["calls", f"{t['calls']:,}"],
        ["tokens (prompt / completion)", f"{t['total_tokens']:,} ({t['prompt_tokens']:,} / {t['completion_tokens']:,})"],
        ["cost", usd(t["cost_nanos"])],
    ]
    if "active_users" in report:
        rows.append(["active users", f"{report['active_users']:,}"])
    for name, value in report["efficiency"].items():
        rows.append([name.removesuffix("_ms").replace("_", " "), _figure(name, value)])
    print_table(["measure", "value"], rows, title="Totals")
    if "top_users" in report:
        print_table(
            ["#", "user", "calls", "free", "paid", "tokens", "cost"],
            [[u["rank"], u["user_id"], u["calls"], u["free_calls"], u["paid_calls"], u["total_tokens"], usd(u["cost_nanos"])]
             for u in report["top_users"]],
            title="Top users (by cost, then calls)",
        )
    for name, label in BREAKDOWN_TITLES.items():
        print_table([label, "calls", "tokens", "cost", "share"], _breakdown_rows(report[name], t["cost_nanos"]),
                    title=f"Cost by {label}")
    print_table(["tier", "calls", "tokens", "cost"], _free_paid_rows(t), title="Free vs paid")


def write_csv(report: dict, out) -> None:
    """One long table: section, key and the same counters for every line."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "calls", "tokens", "cost", "cost_nanos"])

    def line(section, key, calls, tokens, nanos):
        writer.writerow([section, key, calls, tokens, format(from_nanos(nanos), "f"), nanos])

    t = report["totals"]
    line("totals", report.get("user_id", "all"), t["calls"], t["total_tokens"], t["cost_nanos"])
    for u in report.get("top_users", []):
        line("user", u["user_id"], u["calls"], u["total_tokens"], u["cost_nanos"])
    for name, label in BREAKDOWN_TITLES.items():
        for key, v in report[name].items():
            line(label, key, v["calls"], v["tokens"], v["cost_nanos"])
    line("tier", "free", t["free_calls"], t["free_tokens"], 0)
    line("tier", "paid", t["paid_calls"], t["paid_tokens"], t["cost_nanos"])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--month", default=datetime.now(timezone.utc).strftime("%Y-%m"), help="YYYY-MM (default: this month, UTC)")
    parser.add_argument("--user", help="one user's month instead of the whole app's")
    parser.add_argument("--top", type=int, default=10, help="how many top users (default 10)")
    common.add_project_arg(parser)
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout instead of tables")
    fmt.add_argument("--json", action="store_true", help="JSON on stdout instead of tables")
    parser.add_argument("--plot", metavar="PNG", help="also draw the chart into this PNG file")
    args = parser.parse_args(argv)
    try:
        figures.parse_month(args.month)
    except figures.RangeError as exc:
        parser.error(exc.message)
    if not 1 <= args.top <= 1000:
        parser.error("--top must be between 1 and 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `report --csv | head` ends quietly
    args = parse_args(argv)
    db = common.firestore_client(args.project)
    report = user_report(db, args.month, args.user) if args.user else month_report(db, args.month, args.top)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    elif args.csv:
        write_csv(report, sys.stdout)
    else:
        print_tables(report)
    if args.plot:
        from tokenledger.tools.report_chart import draw  # matplotlib is only needed for the chart

        draw(report, args.plot)
        print(f"chart written to {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
