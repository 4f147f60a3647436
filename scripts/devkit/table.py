"""Aligned tables for people reading a terminal (the operator tools' own, tokenledger.tools.table)."""
from tokenledger.tools.table import print_table, usd

__all__ = ["print_table", "usd"]
