"""Budget alerts: the `budget_alerts` document, the `mail` document that goes with it, and the
once-only write of both.

Once per user, month and threshold: the alert id is deterministic ({uid}_{YYYY-MM}_{threshold})
and written with `create()`, together with its mail document (same id) and the month document's
`alerts_sent` flag, in one batch. A second writer (another check, a concurrent chat call) gets
AlreadyExists for the whole batch and writes nothing. The flag lets readers of the month
document (every chat call, the scheduled check) skip thresholds already alerted without reading
the alert documents.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from google.api_core import exceptions as gexc
from google.cloud import firestore

from tokenledger import money, store
from tokenledger.budgets import rules

SCHEDULED = "scheduled"
REALTIME = "realtime"


@dataclass(frozen=True)
class AlertFacts:
    user_id: str
    month: str
    threshold: Decimal
    current_cost_nanos: int
    budget: rules.Budget


def alert_id(user_id: str, month: str, threshold: Decimal) -> str:
    return f"{user_id}_{month}_{rules.threshold_key(threshold)}"


def alert_doc(facts: AlertFacts, source: str, now: datetime) -> dict:
    limit = facts.budget.monthly_budget_nanos or 0
    pct = rules.percentage(facts.current_cost_nanos, limit)
    return {
        "user_id": facts.user_id,
        "month": facts.month,
        "threshold": float(facts.threshold),
        "alert_type": rules.alert_type(facts.threshold),
        "current_cost": money.usd_float(facts.current_cost_nanos),
        "current_cost_nanos": facts.current_cost_nanos,
        "monthly_budget": money.usd_float(limit),
        "monthly_budget_nanos": limit,
        "percentage_used": pct if pct is not None and pct != float("inf") else None,
        "created_at": now,
        "source": source,
    }


def mail_doc(facts: AlertFacts, to: str) -> dict:
    """A document for the Trigger Email extension (collection `mail`): to + message."""
    # Cents for budgets of a dollar or more; micro-dollars below (a $0.01 budget is not "$0.00").
    places = 2 if (facts.budget.monthly_budget_nanos or 0) >= 1_000_000_000 else 6
    spent = f"${money.usd_float(facts.current_cost_nanos):,.{places}f}"
    limit = f"${money.usd_float(facts.budget.monthly_budget_nanos or 0):,.{places}f}"
    pct = int(facts.threshold * 100)
    if rules.alert_type(facts.threshold) == rules.EXCEEDED:
        subject = f"Your AI budget for {facts.month} is used up" if pct == 100 else (
            f"Your AI spending for {facts.month} is at {pct}% of your budget")
    else:
        subject = f"You have used {pct}% of your AI budget for {facts.month}"
    text = (
        f"You have spent {spent} of your {limit} monthly budget for {facts.month}.\n"
        + ("Calls may be refused until next month.\n" if facts.budget.enforced and pct >= 100 else "")
    )
    body = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())
    return {"to": to, "message": {"subject": subject, "text": text, "html": body}}


def write_alert(db, facts: AlertFacts, source: str, now: datetime, mail_enabled: bool) -> bool:
    """Create the alert (and its mail) once; False when it already existed."""
    aid = alert_id(facts.user_id, facts.month, facts.threshold)
    batch = db.batch()
    batch.create(store.alert_doc(db, aid), alert_doc(facts, source, now))
    if mail_enabled and facts.budget.email:
        batch.create(store.mail_doc(db, aid), mail_doc(facts, facts.budget.email))
    batch.set(
        store.user_month_doc(db, facts.user_id, facts.month),
        {"alerts_sent": {rules.threshold_flag(facts.threshold): True}, "user_id": facts.user_id, "month": facts.month},
        merge=True,
    )
    try:
        batch.commit(timeout=10.0)
    except gexc.AlreadyExists:
        return False
    return True


def write_missing(db, user_id: str, month: str, budget: rules.Budget, cost_nanos: int, alerts_sent: dict,
                  source: str, now: datetime, mail_enabled: bool) -> list[Decimal]:
    """Write the alert of every reached threshold not yet marked sent; returns those written."""
    written = []
    for threshold in rules.missing_alerts(budget, cost_nanos, alerts_sent):
        facts = AlertFacts(user_id, month, threshold, cost_nanos, budget)
        if write_alert(db, facts, source, now, mail_enabled):
            written.append(threshold)
    return written


# ---- reading ------------------------------------------------------------------------------------

def _names_a_document(token: str) -> bool:
    """Whether a client's page token can be a Firestore document id at all (else the client
    library raises, a 500): no '/', not '.' or '..', not __name__, at most 1,500 bytes."""
    return ("/" not in token and token not in (".", "..") and not (token.startswith("__") and token.endswith("__"))
            and len(token.encode("utf-8", "surrogatepass")) <= 1500)


def _page(query, db, limit: int, page_token: str | None, field: str, value: str) -> tuple[list[dict], str | None]:
    if page_token:
        if not _names_a_document(page_token):
            raise LookupError("page_token")
        cursor = store.alert_doc(db, page_token).get()
        # Another user's alert is refused exactly like one that does not exist, so a page token
        # never tells whether someone else's alert is there.
        if not cursor.exists or (cursor.to_dict() or {}).get(field) != value:
            raise LookupError("page_token")
        query = query.start_after(cursor)
    snaps = list(query.limit(limit + 1).stream())
    items = [public(s.id, s.to_dict()) for s in snaps[:limit]]
    return items, (snaps[limit - 1].id if len(snaps) > limit else None)


def _newest_first(db, field: str, value: str, limit: int, page_token: str | None):
    query = (
        db.collection(store.ALERTS)
        .where(filter=firestore.FieldFilter(field, "==", value))
        .order_by("created_at", direction=firestore.Query.DESCENDING)
    )
    return _page(query, db, limit, page_token, field, value)


def list_for_user(db, user_id: str, limit: int, page_token: str | None = None):
    return _newest_first(db, "user_id", user_id, limit, page_token)


def list_for_month(db, month: str, limit: int, page_token: str | None = None):
    return _newest_first(db, "month", month, limit, page_token)


TREND_FIELDS = ("projected", "projected_day", "rate_per_day", "method", "day", "day_cost", "median_day_cost",
                "factor", "min_usd")


def public(doc_id: str, doc: dict) -> dict:
    created = doc.get("created_at")
    return {
        "id": doc_id,
        **{k: doc.get(k) for k in ("user_id", "month", "threshold", "alert_type", "current_cost",
                                   "monthly_budget", "percentage_used", "source")},
        **({"balance": doc.get("balance")} if doc.get("alert_type") == LOW_CREDITS else {}),
        # budget_forecast and usage_spike (budgets/trend_alerts.py): only the fields the kind has
        **{k: doc[k] for k in TREND_FIELDS if k in doc},
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
    }


# ---- prepaid credits: the low-balance alert ------------------------------------------------------
LOW_CREDITS = "credits_low"


def low_credits_id(user_id: str, epoch: int) -> str:
    """Once per crossing: `epoch` is the wallet's `low_alert_epoch`, which a grant lifting the
    balance back over the threshold moves on (credits/wallet.py)."""
    return f"{user_id}_credits_low_{epoch}"


def write_low_credits(db, user_id: str, epoch: int, available_nanos: int, threshold_nanos: int, email: str | None,
                      now: datetime, mail_enabled: bool) -> bool:
    """The low-balance alert, through the same collection and mail as budget alerts, created once
    per crossing (False: it was there)."""
    aid = low_credits_id(user_id, epoch)
    balance, limit = f"${money.usd_float(available_nanos):,.2f}", f"${money.usd_float(threshold_nanos):,.2f}"
    batch = db.batch()
    batch.create(store.alert_doc(db, aid), {
        "user_id": user_id, "month": now.strftime("%Y-%m"), "alert_type": LOW_CREDITS,
        "threshold": money.usd_float(threshold_nanos), "balance": money.usd_float(available_nanos),
        "balance_nanos": available_nanos, "created_at": now, "source": REALTIME})
    if mail_enabled and email:
        text = f"Your prepaid AI credit is down to {balance} (alert below {limit}).\nPaid calls stop when it runs out.\n"
        batch.create(store.mail_doc(db, aid), {"to": email, "message": {
            "subject": f"Your AI credit balance is low ({balance})", "text": text,
            "html": "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())}})
    try:
        batch.commit(timeout=10.0)
    except gexc.AlreadyExists:
        return False
    return True
