"""Aligned tables for people reading a terminal."""
from __future__ import annotations

from tabulate import tabulate


def print_table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    if title:
        print(f"\n{title}")
    print(tabulate(rows, headers=headers, tablefmt="simple", floatfmt=",.6f", intfmt=","))


def usd(nanos: int, places: int = 6) -> str:
    return f"${nanos / 1e9:,.{places}f}"
