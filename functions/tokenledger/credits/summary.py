"""A past month's spending in each wallet's history: one `spending` entry per wallet and month
(`user_credits/{uid}/entries/spending-{YYYY-MM}`, amount = − what credits paid that month), not
one entry per call — the usage rows are the per-call record. Written by the scheduled check on
the first day of the next month (jobs.check_budgets), set again on each of that day's runs so a
late settlement (reconcile) is reflected; the same id each time, so never twice."""
from __future__ import annotations

from datetime import datetime, timezone

from tokenledger import money, store
from tokenledger.budgets import reservations
from tokenledger.credits import wallet


def previous_month(moment: datetime) -> str:
    first = moment.replace(day=1)
    return (first.replace(year=first.year - 1, month=12) if first.month == 1
            else first.replace(month=first.month - 1)).strftime("%Y-%m")


def month_end(month: str) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=timezone.utc)


def summarise_month(db, month: str, page_size: int = 300) -> tuple[int, int]:
    """Write the month's `spending` entry of every wallet that spent in it. Returns (wallets read,
    entries written): one read per wallet and one per month document."""
    query = db.collection(store.CREDITS).order_by("__name__").limit(page_size)
    seen = written = 0
    last = None
    while True:
        page = list((query.start_after(last) if last is not None else query).select([]).stream())
        for snap in page:
            seen += 1
            spent = reservations.read_month(db, snap.id, month).credits_nanos
            if spent:
                store.wallet_entry_doc(db, snap.id, f"{wallet.SPENDING}-{month}").set({
                    "type": wallet.SPENDING, "month": month, "user_id": snap.id, "amount_nanos": -spent,
                    "amount": money.usd_float(-spent), "reason": f"calls paid by credits in {month}",
                    "created_at": month_end(month)})
                written += 1
        if len(page) < page_size:
            return seen, written
        last = page[-1]
