"""Cloud Functions entry points. Declarations only: each hands off to the tokenledger package.

Every function is deployed from this one file, so each instance imports it whole: the scheduled
jobs' code is imported inside their bodies, only by the instances that run them (cold start of
`api`, see README's benchmarks).
"""
from firebase_functions import firestore_fn, https_fn, options, scheduler_fn

from tokenledger import config
from tokenledger.api import app as api_app

config.init()
config.serve_threads()


# Serving settings, from `make bench` (README, Benchmarks): one vCPU serves the API's own work for
# ~50-100 calls/s; a call mostly waits on OpenRouter, so 40 at a time keep the vCPU busy without
# queueing; memory peaks near 110 MiB at 32 concurrent calls (512 MiB leaves room for large bodies).
@https_fn.on_request(
    region=config.REGION,
    secrets=[config.OPENROUTER_API_KEY],
    memory=options.MemoryOption.MB_512,
    cpu=1,
    concurrency=config.API_CONCURRENCY,
    min_instances=config.API_MIN_INSTANCES,
    timeout_sec=300,
    cors=options.CorsOptions(cors_origins=config.cors_origins(), cors_methods=config.CORS_METHODS),
)
def api(req: https_fn.Request) -> https_fn.Response:
    return api_app.handle(req)


@scheduler_fn.on_schedule(
    schedule=config.RECONCILE_SCHEDULE, region=config.REGION, secrets=[config.OPENROUTER_API_KEY], timeout_sec=540
)
def reconcile_usage(event: scheduler_fn.ScheduledEvent) -> None:
    from tokenledger import jobs

    if not jobs.emulator_probe(event):
        jobs.reconcile_usage()


@scheduler_fn.on_schedule(
    schedule=config.REFRESH_PRICING_SCHEDULE, region=config.REGION, secrets=[config.OPENROUTER_API_KEY], timeout_sec=300
)
def refresh_pricing(event: scheduler_fn.ScheduledEvent) -> None:
    from tokenledger import jobs

    if not jobs.emulator_probe(event):
        jobs.refresh_pricing()


@scheduler_fn.on_schedule(
    schedule=config.BUDGET_CHECK_SCHEDULE, timezone="Etc/UTC", region=config.REGION, memory=options.MemoryOption.MB_512,
    timeout_sec=540,
)
def check_budgets(event: scheduler_fn.ScheduledEvent) -> None:
    from tokenledger import jobs

    if not jobs.emulator_probe(event):
        jobs.check_budgets(event.schedule_time)


# Alert delivery (tokenledger/notify): every alert document created in an alert collection is
# delivered to TOKENLEDGER_ALERT_WEBHOOKS (at least once); the sweep re-drives what is still open.
@firestore_fn.on_document_created(
    document="budget_alerts/{alert_id}", region=config.REGION, secrets=[config.WEBHOOK_SECRET], timeout_sec=300
)
def deliver_budget_alert(event: firestore_fn.Event) -> None:
    from tokenledger import jobs

    jobs.deliver_alert(event.data)


@firestore_fn.on_document_created(
    document="admin_alerts/{alert_id}", region=config.REGION, secrets=[config.WEBHOOK_SECRET], timeout_sec=300
)
def deliver_admin_alert(event: firestore_fn.Event) -> None:
    from tokenledger import jobs

    jobs.deliver_alert(event.data)


@scheduler_fn.on_schedule(
    schedule=config.ALERT_SWEEP_SCHEDULE, region=config.REGION, secrets=[config.WEBHOOK_SECRET], timeout_sec=540
)
def sweep_alert_deliveries(event: scheduler_fn.ScheduledEvent) -> None:
    from tokenledger import jobs

    if not jobs.emulator_probe(event):
        jobs.sweep_alert_deliveries()
