"""The scheduled jobs behind main.py's scheduled functions (and the scripts that run them by hand).

Both are idempotent: the emulator (and a retrying scheduler) may run them more than once.
"""
from __future__ import annotations

from datetime import datetime, timezone

from tokenledger import config, logs, store
from tokenledger.budgets import check
from tokenledger.openrouter import OpenRouterClient
from tokenledger.pricing import catalog
from tokenledger.reconcile import settle


def now() -> datetime:
    return datetime.now(timezone.utc)


def emulator_probe(event) -> bool:
    """The Functions emulator runs a scheduled handler once more, with no job name, when it
    starts a worker (its health probe); Cloud Scheduler always sends one. Skip that run."""
    return config.is_emulator() and not getattr(event, "job_name", None)


def reconcile_usage(settings: config.Settings | None = None, progress=None) -> tuple[list, settle.Drift]:
    """Settle pending rows, then check this month's drift against OpenRouter's account."""
    settings = settings or config.settings()
    db, client = store.client(), OpenRouterClient(settings)
    results = settle.settle_pending(db, client, settings, now(), progress=progress)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    drift = settle.check_drift(db, client, settings, now())
    logs.reconcile_usage_done(**counts, drift=str(drift.drift), above_tolerance=drift.above_tolerance)
    return results, drift


def check_budgets(schedule_time: datetime | None = None, settings: config.Settings | None = None):
    """The budget check; its clock is the time Cloud Scheduler scheduled the run (so a run
    triggered by hand in the emulator can pick one, e.g. a month boundary)."""
    settings = settings or config.settings()
    moment = schedule_time or now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    report = check.check_budgets(store.client(), settings, moment)
    check.log_report(report)
    if moment.day == 1:  # last month's spending by credits, into each wallet's history (credits/summary.py)
        from tokenledger.credits import summary

        summary.summarise_month(store.client(), summary.previous_month(moment))
    return report


def refresh_pricing(settings: config.Settings | None = None) -> catalog.RefreshResult:
    settings = settings or config.settings()
    client = OpenRouterClient(settings)
    result = catalog.refresh(store.client(), client.list_models, now())
    logs.refresh_pricing_done(models=len(result.catalog.models), changes=len(result.changes))
    return result


def fold_shards(schedule_time: datetime | None = None, settings: config.Settings | None = None):
    """Fold cooled-down hot users' shards into their base documents (metering/fold.py)."""
    from tokenledger.metering import fold

    settings = settings or config.settings()
    moment = schedule_time or now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    report = fold.fold_shards(store.client(), moment, settings.fold_cool_s)
    logs.shards_folded(**fold.log_fields(report))
    return report


def grant_paid_credits(uid: str, payment_id: str, doc: dict | None, settings: config.Settings | None = None):
    """A Stripe payment document was written: grant its credits once (credits/payments.py).
    Retried deliveries and rewrites of the document are harmless: the grant is keyed by the id."""
    from tokenledger.credits import payments

    return payments.on_payment_written(store.client(), uid, payment_id, doc, settings or config.settings())


def deliver_alert(snapshot, settings: config.Settings | None = None):
    """The alert-created trigger: deliver the new alert document to every target (notify/)."""
    from tokenledger.notify import deliver

    if snapshot is None or not snapshot.exists:
        return None
    settings = settings or config.settings()
    return deliver.on_alert_created(store.client(), settings, settings.webhook_secret, snapshot.reference.path)


def sweep_alert_deliveries(settings: config.Settings | None = None):
    from tokenledger.notify import deliver, sweep

    settings = settings or config.settings()
    # The sweep's function has 540 s; it stops starting deliveries after 400.
    return sweep.sweep(deliver.Worker(store.client(), settings, settings.webhook_secret, run_s=400.0))
