"""The per-process services the routes use, built once per warm instance."""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import has_request_context, request

from tokenledger import config, store
from tokenledger.api.errors import ApiError
from tokenledger.budgets.admission import Gate
from tokenledger.metering.outbox import Publisher
from tokenledger.budgets.plan_book import PlanBook
from tokenledger.openrouter import OpenRouterClient
from tokenledger.pricing.catalog import CatalogProvider


@dataclass
class Services:
    settings: config.Settings
    openrouter: OpenRouterClient
    catalog: CatalogProvider
    gate: Gate  # per-instance budget cache, rate counters, feature names
    outbox: Publisher | None = None  # where a call the ledger could not commit goes (None: off)
    plans: PlanBook | None = None  # per-instance copy of the plans (built from settings when None)

    def __post_init__(self):
        if self.plans is None:
            self.plans = PlanBook(self.settings.plan_cache_s, self.settings.default_plan)

    @property
    def db(self):
        return store.client()

    @staticmethod
    def now() -> datetime:
        return request_clock() or datetime.now(timezone.utc)


# Tests set the clock of one request (month rollover, daily quotas) with this header. It is
# honoured ONLY inside the Functions emulator: in production the clock is the server's.
CLOCK_HEADER = "X-Tokenledger-Now"


def request_clock() -> datetime | None:
    if not config.is_emulator() or not has_request_context():
        return None
    value = request.headers.get(CLOCK_HEADER)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_clock", f"{CLOCK_HEADER} must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z.")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_build_lock = threading.Lock()


def services() -> Services:
    """The instance's services, built once: the first requests of a fresh instance arrive
    together (several threads), and each must get the same budget cache and lease book (a lease
    taken in a copy thrown away would hold its amount and a slot for nobody until it expired)."""
    if _build.cache_info().currsize:
        return _build()
    with _build_lock:
        return _build()


@functools.lru_cache(maxsize=1)
def _build() -> Services:
    config.init()
    settings = config.settings()
    client = OpenRouterClient(settings)
    return Services(
        settings=settings,
        openrouter=client,
        catalog=CatalogProvider(settings, store.client, client.list_models),
        gate=Gate(settings),
        outbox=Publisher(config.project_id(), settings.outbox_publish_timeout_s) if settings.outbox_enabled else None,
    )
