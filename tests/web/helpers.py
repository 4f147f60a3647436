"""What the browser tests compute on their own, independently of the app's code."""
from __future__ import annotations

from decimal import Decimal

from google.cloud.firestore_v1.base_query import FieldFilter


def usd(nanos: int) -> str:
    """$ with thousands separators, trailing zeros trimmed, at least two decimals."""
    sign = "-" if nanos < 0 else ""
    whole, _, frac = f"{Decimal(abs(nanos)).scaleb(-9):f}".partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{sign}${int(whole):,}.{frac}"


def rows_of(db, uid: str) -> list[dict]:
    query = db.collection("usage_tracking").where(filter=FieldFilter("user_id", "==", uid))
    return [{**snap.to_dict(), "_id": snap.id} for snap in query.stream()]


def month_rollup(db, uid: str, month: str) -> dict:
    """The month's rollup: its base document plus any shards `{month}~{k}` (a user calling faster
    than about once a second), summed (numbers, and the by_* maps key by key)."""
    merged: dict = {}

    def add(into: dict, doc: dict) -> None:
        for key, value in doc.items():
            if isinstance(value, dict):
                add(into.setdefault(key, {}), value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "shard":
                into[key] = into.get(key, 0) + value
            else:
                into.setdefault(key, value)

    for snap in db.collection("user_usage").document(uid).collection("months").stream():
        if snap.id.split("~")[0] == month:
            add(merged, snap.to_dict() or {})
    return merged


def wait_text(page, selector: str, text: str) -> None:
    """Waits until the element's text is exactly `text` (the page updates it live)."""
    page.wait_for_function("([s, t]) => document.querySelector(s)?.textContent === t", arg=[selector, text])
