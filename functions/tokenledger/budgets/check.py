"""The scheduled budget check: every user active this month against their budget, missing
alerts written, expired reservations released.

When the configured default has a dollar budget (out of the box: an enforced $1), every user
active this month has something to check, so the run is ONE paged collection-group query over
this month's documents (`months`, `month == now`; base documents and hot users' shards alike,
summed per user). The base document carries a copy of the user's budget (`budget_copy`,
budgets/copies.py), so in steady state a run costs one read per document of this month (one per
user; a hot user's shards one each) + one read for the expired reservations' query (+ one for
an empty last page). A user whose documents come on two pages is read again whole, in one
query (one read per document): two pages are two moments, and a fold of their shards
(metering/fold.py) landing between them would hide what it moved. A user with no document this month has spent nothing: no read at all. A
base document without a copy (the first run of a month; a user who became active since) costs
one more read, of the budget document, and the copy is then written (in a transaction that
reads the budget document, so a concurrent PUT is never overwritten by an older budget).

Without a default dollar budget only users with a budget document have anything to check; the
run then pages through `user_budgets` (one read per budget) and reads the page's month documents
with one get_all (one read per budget, + the shards of a hot user), as a months scan would read
every active user.

Forecasts and spikes (budgets/trends.py) come from the same month document (`day_costs`): no
read more. The app's own spend (budgets/app_spend.py) costs one read per global counter shard
per run, whatever the number of users (`app_spend_reads`).

Never the usage rows; never the alert documents (the month document says which alerts were
sent, `alerts_sent`). Every write is once-only (alerts by create(), releases by precondition),
so a run that stops halfway, or two runs at the same time, are safe: re-running writes only
what is still missing.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime

from google.cloud import firestore

from tokenledger import logs, periods, store
from tokenledger.budgets import alerts, app_spend, copies, plan_users, reservations, rules, trend_alerts, trends
from tokenledger.config import Settings

MONTH_FIELDS = ["cost_nanos", "reserved_nanos", "alerts_sent", "sharded", trends.FIELD]
SCAN_FIELDS = MONTH_FIELDS + ["shard", copies.FIELD]  # what the months scan reads of each document


@dataclass
class CheckReport:
    month: str
    budgets: int = 0  # users checked against their own budget document
    default_budgets: int = 0  # users checked against the configured default (no budget document)
    reads: int = 0
    budget_reads: int = 0  # of which budget documents (the months scan: users whose copy was missing)
    copies_written: int = 0  # budget copies written into month documents
    alerts_written: int = 0
    over_budget: int = 0
    reservations_released: int = 0
    plan_reads: int = 0  # the plans, one query per run (plans: docs/budgets.md); users' claims come from Auth
    seconds: float = 0.0
    alerts: list[str] = field(default_factory=list)  # ids written, for the logs and the demo
    trend_alerts: int = 0  # of alerts_written: budget_forecast and usage_spike (budgets/trends.py)
    app_spend_reads: int = 0  # the app's month counters and its app_spend alerts (budgets/app_spend.py)


def check_budgets(db, settings: Settings, now: datetime, progress=None) -> CheckReport:
    """One run. `progress(done_users)` is called after each page (for scripts)."""
    started = time.monotonic()
    month = now.strftime("%Y-%m")
    report = CheckReport(month=month)
    released, reads = reservations.release_expired(db, now, settings.budget_check_page_size)
    report.reservations_released += released
    report.reads += reads
    book = plan_users.read_plans(db)
    report.plan_reads = max(len(book), 1)
    if rules.default_budget(settings).has_dollar_budget or plan_users.any_dollar_budget(book):
        _scan_months(db, settings, now, report, progress, book)
    else:
        _scan_budget_documents(db, settings, now, report, progress, book)
    app = app_spend.check(db, settings, now)
    report.app_spend_reads += app.reads
    report.alerts_written += len(app.written)
    report.alerts.extend(app.written)
    report.seconds = time.monotonic() - started
    return report


def _check_user(db, settings: Settings, now: datetime, report: CheckReport, uid: str, budget: rules.Budget,
                docs: list[dict]) -> None:
    totals = reservations.totals_of(docs)
    if budget.has_dollar_budget and totals.cost_nanos >= budget.monthly_budget_nanos > 0:
        report.over_budget += 1
    written = alerts.write_missing(db, uid, report.month, budget, totals.cost_nanos, totals.alerts_sent,
                                   alerts.SCHEDULED, now, settings.mail_enabled)
    report.alerts_written += len(written)
    report.alerts.extend(alerts.alert_id(uid, report.month, t) for t in written)
    trend = trend_alerts.write_trends(db, settings, now, uid, budget, docs, totals.cost_nanos, totals.alerts_sent)
    report.alerts_written += len(trend)
    report.trend_alerts += len(trend)
    report.alerts.extend(trend)


def _pages(query, report: CheckReport, page_size: int):
    """The query's pages, each read counted (an empty result still costs one read)."""
    last = None
    while True:
        page = list((query.start_after(last) if last is not None else query).stream())
        report.reads += max(len(page), 1)
        if page:
            yield page
        if len(page) < page_size:
            return
        last = page[-1]


def _scan_months(db, settings: Settings, now: datetime, report: CheckReport, progress, book: dict) -> None:
    """Every document of this month, in path order: a user's base document and shards are
    contiguous (they share the parent path), so a user is checked once the scan has passed them,
    with the base document's budget copy; users without one get it filled per page."""
    query = (
        db.collection_group(store.MONTHS)
        .where(filter=firestore.FieldFilter("month", "==", report.month))
        .select(SCAN_FIELDS)
        .order_by("__name__")
        .limit(settings.budget_check_page_size)
    )
    pending: dict[str, list] = {}  # uid -> snapshots (base and shards), in scan order

    def base_copy(snaps: list) -> dict | None:
        base = next((s for s in snaps if s.id == report.month), None)  # shards are `{month}~{k}`
        return None if base is None else (base.to_dict() or {}).get(copies.FIELD)

    def check(users: dict[str, list]) -> None:
        copy = {uid: base_copy(snaps) for uid, snaps in users.items()}
        missing = [uid for uid, found in copy.items() if found is None]
        if missing:
            filled, reads, written = copies.fill(db, missing, report.month)
            copy.update(filled)
            report.reads += reads
            report.budget_reads += reads
            report.copies_written += len(missing) if written else 0
        plan_of = plan_users.plans_of(book, list(users), settings)
        for uid, snaps in users.items():
            if copy[uid].get("exists"):
                report.budgets += 1
            else:
                report.default_budgets += 1
            budget = copies.budget_of(copy[uid], settings, plan_of[uid])
            _check_user(db, settings, now, report, uid, budget, [s.to_dict() or {} for s in snaps])

    straddling: set[str] = set()  # users whose documents came on more than one page
    for page in _pages(query, report, settings.budget_check_page_size):
        straddling |= {snap.reference.parent.parent.id for snap in page[:1]} & set(pending)
        for snap in page:
            pending.setdefault(snap.reference.parent.parent.id, []).append(snap)
        last_uid = page[-1].reference.parent.parent.id
        done = {uid: snaps for uid, snaps in pending.items() if uid != last_uid}
        pending = {last_uid: pending[last_uid]}  # its shards may be on the next page
        check(_whole(db, done, straddling, report))
        if progress:
            progress(report.budgets + report.default_budgets)
    if pending:
        check(_whole(db, pending, straddling, report))
        if progress:
            progress(report.budgets + report.default_budgets)


def _whole(db, users: dict[str, list], straddling: set[str], report: CheckReport) -> dict[str, list]:
    """Users whose documents two pages brought (read at two moments: a fold between them could
    hide what it moved) read again whole, in one snapshot (periods.period_query)."""
    for uid in straddling & set(users):
        users[uid] = periods.snapshots(db, uid, periods.MONTHS, report.month, SCAN_FIELDS)
        report.reads += max(len(users[uid]), 1)
    return users


def _scan_budget_documents(db, settings: Settings, now: datetime, report: CheckReport, progress, book: dict) -> None:
    """No default dollar budget: only users with a budget document, page by page."""
    query = db.collection(store.BUDGETS).order_by("__name__").limit(settings.budget_check_page_size)
    for page in _pages(query, report, settings.budget_check_page_size):
        months, reads = read_months(db, [snap.id for snap in page], report.month)
        report.reads += reads
        plan_of = plan_users.plans_of(book, [snap.id for snap in page], settings)
        for snap in page:
            budget = rules.budget_from_doc(snap.to_dict(), settings, plan_of[snap.id])
            _check_user(db, settings, now, report, snap.id, budget, months.get(snap.id, []))
        report.budgets += len(page)
        if progress:
            progress(report.budgets)


def read_months(db, uids: list[str], month: str) -> tuple[dict[str, list[dict]], int]:
    """{uid: [the month's documents]} for these users, and the reads it cost: every base
    document in one get_all, then the month of each user whose base document says `sharded`
    read whole (periods.read_docs: one query, one read per document it returns)."""
    bases = {snap.reference.parent.parent.id: snap
             for snap in db.get_all([store.user_month_doc(db, uid, month) for uid in uids], field_paths=MONTH_FIELDS)}
    found = {uid: [snap.to_dict() or {}] for uid, snap in bases.items() if snap.exists}
    reads = len(uids)
    for uid in [uid for uid, docs in found.items() if docs[0].get("sharded")]:
        found[uid] = periods.read_docs(db, uid, periods.MONTHS, month, MONTH_FIELDS)
        reads += max(len(found[uid]), 1)
    return found, reads


def log_report(report: CheckReport) -> None:
    fields = {k: v for k, v in dataclasses.asdict(report).items() if k != "alerts"}
    logs.budget_check_done(**{**fields, "seconds": round(report.seconds, 2)})
