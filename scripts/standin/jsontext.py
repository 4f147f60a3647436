"""JSON text with Decimals written as exact JSON numbers.

json.dumps cannot emit a Decimal as a number, and going through float could
change the last digit. Money here is written from the Decimal's own digits, so
a client parsing with parse_float=Decimal gets exactly what was billed, and a
float parser gets the float whose shortest repr is those digits.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"cannot emit {value} as JSON")
    if value.is_zero():
        return "0"  # also avoids "-0" and "0E-10"
    return format(value.normalize(), "f")


def dumps(obj: Any) -> str:
    if isinstance(obj, Decimal):
        return decimal_text(obj)
    if isinstance(obj, dict):
        items = (json.dumps(str(k)) + ":" + dumps(v) for k, v in obj.items())
        return "{" + ",".join(items) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=False)
