"""The per-process services the routes use, built once per warm instance."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone

from .. import config, store
from ..catalog import CatalogProvider
from ..openrouter import OpenRouterClient


@dataclass
class Services:
    settings: config.Settings
    openrouter: OpenRouterClient
    catalog: CatalogProvider

    @property
    def db(self):
        return store.client()

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)


@functools.lru_cache(maxsize=1)
def services() -> Services:
    config.init()
    settings = config.settings()
    client = OpenRouterClient(settings)
    return Services(
        settings=settings,
        openrouter=client,
        catalog=CatalogProvider(settings, store.client, client.list_models),
    )
