"""Cloud Functions entry points. Declarations only: each hands off to the tokenledger package.

Every function is deployed from this one file, so each instance imports it whole: the scheduled
jobs' code is imported inside their bodies, only by the instances that run them (cold start of
`api`, see README's benchmarks).
"""
import os

from firebase_functions import firestore_fn, https_fn, options, pubsub_fn, scheduler_fn

from tokenledger import config

# An instance serves one function (FUNCTION_TARGET, set by Cloud Run and the Functions emulator;
# unset when the CLI loads this file to list the functions): only `api`'s import the API, so the
# Pub/Sub and scheduled functions start in a fraction of the time — heal_usage instances start
# many at once right after an outage.
if os.environ.get("FUNCTION_TARGET", "api") == "api":
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


@scheduler_fn.on_schedule(schedule=config.FOLD_SCHEDULE, timezone="Etc/UTC", region=config.REGION, timeout_sec=300)
def fold_shards(event: scheduler_fn.ScheduledEvent) -> None:
    from tokenledger import jobs

    if not jobs.emulator_probe(event):
        jobs.fold_shards(event.schedule_time)


# The usage outbox (metering/outbox.py): a call the ledger could not commit inline is committed
# here, once, whatever the redeliveries; raising makes Pub/Sub redeliver it with back-off.
@pubsub_fn.on_message_published(
    topic="usage-outbox", region=config.REGION, retry=True, timeout_sec=300, memory=options.MemoryOption.MB_256,
)
def heal_usage(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from tokenledger.metering import heal

    heal.on_outbox_message(event.data.message)


# Records the outbox gave up on: the `ledger_dead_letter` admin alert, with the record to replay.
@pubsub_fn.on_message_published(topic="usage-outbox-dead-letter", region=config.REGION, retry=True, timeout_sec=60)
def ledger_dead_letter(event: pubsub_fn.CloudEvent[pubsub_fn.MessagePublishedData]) -> None:
    from tokenledger.metering import heal

    heal.on_dead_letter_message(event.data.message)


# Prepaid credits bought through the Stripe extension: it writes each PaymentIntent here; a
# succeeded one grants its credits once (tokenledger/credits/payments.py, docs/credits.md).
@firestore_fn.on_document_written(document="customers/{uid}/payments/{payment_id}", region=config.REGION)
def grant_paid_credits(event: firestore_fn.Event) -> None:
    from tokenledger import jobs

    jobs.grant_paid_credits(event.params["uid"], event.params["payment_id"],
                            event.data.after.to_dict() if event.data and event.data.after else None)


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
