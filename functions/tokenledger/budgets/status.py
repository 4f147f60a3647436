"""The user's month after a call, as the response shows it, and the alerts the call crossed."""
from __future__ import annotations

from datetime import datetime

from tokenledger.budgets import alerts, rules
from tokenledger.config import Settings


def after_call(db, settings: Settings, admission: Admission, cost_nanos: int | None, held: bool,
               now: datetime, month_cost_nanos: int | None = None, month_reserved_nanos: int | None = None,
               lease_nanos: int | None = None, credits_nanos: int = 0,
               month_credits_nanos: int | None = None) -> dict | None:
    """The user's month after the call, with no read: from what the gate's commit read back plus
    this call's own cost (cost_nanos None: the call was not recorded) — or, better, the month's
    exact cost just after this call when the ledger's commit read it back (`month_cost_nanos`:
    a user without shards). Alerts are written for the thresholds this call crossed, and for
    reached ones whose flag the gate found missing when it read the flags (each alert at most
    once, see alerts.py; the scheduled check writes any other).

    A call admitted from a lease (`lease_nanos`: what the lease holds after it) shows the month's
    reserved without that lease's amount — what other calls and instances hold — taken from the
    ledger's read-back when it told (`month_reserved_nanos`), else as the lease last saw it.

    Money is the allowance's: what prepaid credits paid (`credits_nanos` of this call's cost,
    `month_credits_nanos` of the month's) is left out of what the budget shows spent."""
    if not admission.checked:
        return None
    budget, totals = admission.budget, admission.totals
    if totals is None:  # the call skipped the gate: nothing was read, the month is not known here
        return rules.status(budget, admission.month, None, None, admission.free_requests_today)
    cost, reserved = totals.allowance_spent_nanos, totals.reserved_nanos
    before = cost
    if cost_nanos is not None:
        cost_nanos -= credits_nanos
        if month_cost_nanos is not None:
            month_cost_nanos -= month_credits_nanos or 0
        cost = month_cost_nanos if month_cost_nanos is not None else cost + cost_nanos
        before = cost - cost_nanos
        if lease_nanos is not None:  # totals hold other calls' reservations only
            if month_cost_nanos is not None and month_reserved_nanos is not None:
                reserved = month_reserved_nanos - lease_nanos
            elif held:
                reserved += admission.reserved_nanos
        elif not held:
            reserved -= admission.reserved_nanos
    if budget.has_dollar_budget:
        sent = totals.alerts_sent if totals.alerts_sent is not None else rules.presumed_sent(budget, before)
        if rules.missing_alerts(budget, cost, sent):
            alerts.write_missing(db, admission.uid, admission.month, budget, cost, sent, alerts.REALTIME, now,
                                 settings.mail_enabled)
    return rules.status(budget, admission.month, cost, reserved, admission.free_requests_today)
