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
    return db.collection("user_usage").document(uid).collection("months").document(month).get().to_dict() or {}


def wait_text(page, selector: str, text: str) -> None:
    """Waits until the element's text is exactly `text` (the page updates it live)."""
    page.wait_for_function("([s, t]) => document.querySelector(s)?.textContent === t", arg=[selector, text])
