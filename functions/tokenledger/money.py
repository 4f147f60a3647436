"""Units of money. Amounts are exact Decimals in USD; Firestore stores integer nano-dollars
beside a float USD value so sums never drift (a small call can cost less than a micro-dollar)."""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = Decimal(1_000_000_000)
ZERO = Decimal(0)


def to_decimal(value: object) -> Decimal | None:
    """A JSON number or decimal string as an exact Decimal; None when absent or not a number.

    Floats go through repr(), the shortest string that round-trips, so 0.00014 stays 0.00014
    instead of becoming 0.000140000000000000007...
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, float):
            result = Decimal(repr(value))
        else:
            result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def to_nanos(usd: Decimal) -> int:
    """USD -> integer nano-dollars, rounding half to even (at most half a nano-dollar off)."""
    return int((usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_nanos(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS_PER_USD


def usd_float(nanos: int) -> float:
    """The float USD value stored for people and dashboards; never used for sums."""
    return float(from_nanos(nanos))
