"""The report's chart: daily cost per model (stacked bars) beside the top users (or, for one
user, their cost by feature), readable at a glance."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from tokenledger.analytics import figures  # noqa: E402

MAX_MODELS = 6  # more stacked colours than this cannot be told apart; the rest is "other"
MAX_BARS = 10


def _dollars(value, _pos=None) -> str:
    # Cents are enough from a dime up; below that, show where the money is.
    return f"${value:,.2f}" if value >= 0.1 or value == 0 else f"${value:,.4f}"


def _short(label: str, width: int = 22) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _daily_series(report: dict) -> tuple[list[str], dict[str, list[float]]]:
    first, last = figures.month_bounds(report["month"])
    days = figures.DateRange(first, last).each_day()
    daily = report["daily_cost_nanos_by_model"]
    totals: dict[str, int] = {}
    for models in daily.values():
        for model, nanos in models.items():
            totals[model] = totals.get(model, 0) + nanos
    ranked = [m for m, n in sorted(totals.items(), key=lambda kv: -kv[1]) if n > 0]
    shown, rest = ranked[:MAX_MODELS], set(ranked[MAX_MODELS:])
    series = {model: [daily.get(day, {}).get(model, 0) / 1e9 for day in days] for model in shown}
    if rest:
        series["other"] = [sum(n for m, n in daily.get(day, {}).items() if m in rest) / 1e9 for day in days]
    return days, series


def draw(report: dict, path: str) -> None:
    days, series = _daily_series(report)
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [3, 2]})
    who = f"user {report['user_id']}" if "user_id" in report else "all users"
    fig.suptitle(f"tokenledger — {report['month']} ({who}): total {_dollars(report['totals']['cost_nanos'] / 1e9)}, "
                 f"{report['totals']['calls']:,} calls", fontsize=14, fontweight="bold")

    x = range(len(days))
    bottom = [0.0] * len(days)
    colours = plt.get_cmap("tab10").colors
    for i, (model, values) in enumerate(series.items()):
        left.bar(x, values, bottom=bottom, label=_short(model, 40), color=colours[i % len(colours)], width=0.8)
        bottom = [b + v for b, v in zip(bottom, values)]
    left.set_title("Daily cost per model (paid calls; free calls cost $0)")
    left.set_xticks(list(x)[::2], [d[8:] for d in days][::2])
    left.set_xlabel(f"day of {report['month']} (UTC)")
    left.yaxis.set_major_formatter(FuncFormatter(_dollars))
    left.grid(axis="y", alpha=0.3)
    if series:
        left.legend(loc="upper left", fontsize=9, frameon=False)
    else:
        left.text(0.5, 0.5, "no paid usage this month", ha="center", va="center", transform=left.transAxes)

    if "top_users" in report:
        entries = report["top_users"][:MAX_BARS]
        labels = [_short(u["user_id"], 16) for u in entries]
        values = [u["cost_nanos"] / 1e9 for u in entries]
        notes = [f"{u['calls']:,} calls" for u in entries]
        right.set_title(f"Top {len(entries)} users by cost")
    else:
        groups = list(report["by_feature"].items())[:MAX_BARS]
        labels = [_short(k) for k, _ in groups]
        values = [v["cost_nanos"] / 1e9 for _, v in groups]
        notes = [f"{v['calls']:,} calls" for _, v in groups]
        right.set_title("Cost by feature")
    bars = right.barh(range(len(values)), values, color="#4c72b0", height=0.7)
    right.set_yticks(range(len(values)), labels, fontsize=9)
    right.set_ylim(max(len(values), 5) - 0.5, -0.5)  # the largest on top; a lone bar stays a bar
    right.xaxis.set_major_formatter(FuncFormatter(_dollars))
    right.grid(axis="x", alpha=0.3)
    for bar, value, note in zip(bars, values, notes):
        right.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {_dollars(value)} · {note}",
                   va="center", fontsize=8)
    right.margins(x=0.35)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
