"""Aligned tables for people reading a terminal."""
from __future__ import annotations

from tabulate import tabulate


def print_table(headers: list[str], rows: list[list], title: str | None = None, floatfmt: str = ",.6f",
                numparse: bool = True) -> None:
    """numparse=False prints pre-formatted number strings as they are."""
    if title:
        print(f"\n{title}")
    print(tabulate(rows, headers=headers, tablefmt="simple", floatfmt=floatfmt, intfmt=",", disable_numparse=not numparse))


def usd(nanos: int, places: int = 6) -> str:
    return f"${nanos / 1e9:,.{places}f}"
