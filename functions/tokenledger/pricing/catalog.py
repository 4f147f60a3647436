"""The price catalog in force: memory -> fresh stored copy -> OpenRouter /models -> stale
stored copy -> the snapshot shipped with the code. Unknown prices are never taken as $0."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud import firestore

from tokenledger import logs, store
from tokenledger.config import Settings
from tokenledger.pricing.prices import Catalog, PriceChange, catalog_to_models_json, parse_catalog, price_changes

SNAPSHOT_PATH = Path(__file__).parent / "data" / "models_snapshot.json"
STORE_FORMAT = 2  # 2: web_search, x_unknown_prices, x_searches and each override tier are kept
MEMORY_TTL_S = 300  # a warm instance re-reads the stored catalog at most every 5 minutes


def load_snapshot() -> Catalog:
    data = json.loads(SNAPSHOT_PATH.read_text())
    fetched = data.get("fetched_at")
    return parse_catalog(
        data, "snapshot", datetime.fromisoformat(fetched) if fetched else None
    )


# Catalog reads and writes are off the critical path: fail fast and fall back, never stall a call.
QUICK = {"retry": None, "timeout": 5.0}


def read_stored(db) -> Catalog | None:
    snap = store.pricing_doc(db).get(**QUICK)
    if not snap.exists:
        return None
    data = snap.to_dict() or {}
    models = json.loads(data.get("models_json") or "{}")
    # A copy stored in an older format lacks what the policy now reads (price fields it cannot
    # bound, models that search by themselves): never fresh, refetched first, used only as a fallback.
    fresh = data.get("fetched_at") if data.get("format") == STORE_FORMAT else None
    return parse_catalog(models, "stored", fresh)


def save(db, catalog: Catalog, source: str) -> None:
    """Store the catalog in force (one document; the JSON keeps model ids out of field paths)."""
    store.pricing_doc(db).set(
        {
            "source": source,
            "format": STORE_FORMAT,
            "fetched_at": catalog.fetched_at,
            "model_count": len(catalog.models),
            "models_json": json.dumps(catalog_to_models_json(catalog), separators=(",", ":")),
            "updated_at": firestore.SERVER_TIMESTAMP,
        },
        **QUICK,
    )


HISTORY = "history"


@dataclass(frozen=True)
class RefreshResult:
    catalog: Catalog
    previous_source: str  # stored | snapshot: what the changes are measured against
    changes: list[PriceChange]


def refresh(db, fetch_models, now: datetime) -> RefreshResult:
    """Fetch /models (every page, every modality), make it the catalog in force, keep a
    history entry when anything changed, and log each changed price."""
    fetched = parse_catalog(fetch_models(), "openrouter", now)
    if not fetched.models:
        raise ValueError("OpenRouter /models answered no usable models; the catalog in force is kept")
    previous = read_stored(db)
    if previous is None or not previous.models:
        previous = load_snapshot()
    changes = price_changes(previous, fetched)
    save(db, fetched, "openrouter")
    if changes or previous.source == "snapshot":
        store.pricing_doc(db).collection(HISTORY).document(now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).set(
            {
                "source": "openrouter",
                "fetched_at": now,
                "model_count": len(fetched.models),
                "models_json": json.dumps(catalog_to_models_json(fetched), separators=(",", ":")),
                "changes": [asdict(c) for c in changes],
                "compared_with": previous.source,
            },
            **QUICK,
        )
    for change in changes:
        logs.price_changed(model=change.model_id, field=change.field, old=change.old, new=change.new)
    return RefreshResult(fetched, previous.source, changes)


class CatalogProvider:
    """Per-process cache of the catalog in force; thread-safe, at most one fetch at a time."""

    def __init__(self, settings: Settings, db_factory, fetch_models):
        self._settings = settings
        self._db_factory = db_factory
        self._fetch_models = fetch_models  # () -> /models JSON; raises on failure
        self._lock = threading.Lock()
        self._cached: Catalog | None = None
        self._cached_at = 0.0
        self._miss_refreshed_at: float | None = None

    def get(self) -> Catalog:
        if self._cached is not None and time.monotonic() - self._cached_at < MEMORY_TTL_S:
            return self._cached
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached_at >= MEMORY_TTL_S:
                self._cached = self._load()
                self._cached_at = time.monotonic()
            return self._cached

    def refresh_for_missing(self, model_ids: tuple[str, ...]) -> Catalog | None:
        """A call named models the catalog does not know (a release newer than the catalog):
        fetch /models now, at most once per `catalog_miss_refresh_s` per instance so unknown ids
        cannot make every call hit OpenRouter. The refreshed catalog (which may still lack them),
        or None when rate-limited or the fetch failed."""
        with self._lock:
            now = time.monotonic()
            if self._miss_refreshed_at is not None and now - self._miss_refreshed_at < self._settings.catalog_miss_refresh_s:
                return None
            self._miss_refreshed_at = now
            try:
                catalog = parse_catalog(self._fetch_models(), "openrouter", datetime.now(timezone.utc))
            except Exception as exc:  # network, HTTP or JSON: the call gets its 400
                logs.catalog_fetch_failed(error=type(exc).__name__, detail=str(exc)[:200])
                return None
            if not catalog.models:
                return None
            self._cached, self._cached_at = catalog, now
        logs.catalog_refreshed_for_missing(models=list(model_ids)[:5], found=[m for m in model_ids if m in catalog])
        try:
            save(self._db_factory(), catalog, "openrouter")
        except gexc.GoogleAPIError as exc:
            logs.catalog_store_failed(error=str(exc))
        return catalog

    def _is_fresh(self, catalog: Catalog) -> bool:
        if catalog.fetched_at is None:
            return False
        age = datetime.now(timezone.utc) - catalog.fetched_at
        return age < timedelta(seconds=self._settings.catalog_max_age_s)

    def _load(self) -> Catalog:
        stored = None
        try:
            stored = read_stored(self._db_factory())
        except gexc.GoogleAPIError as exc:
            logs.catalog_read_failed(error=str(exc))
        if stored is not None and stored.models and self._is_fresh(stored):
            return stored
        try:
            catalog = parse_catalog(self._fetch_models(), "openrouter", datetime.now(timezone.utc))
        except Exception as exc:  # network, HTTP or JSON: any failure falls back
            logs.catalog_fetch_failed(error=type(exc).__name__, detail=str(exc)[:200])
            return stored if stored is not None and stored.models else load_snapshot()
        if not catalog.models:
            return stored if stored is not None and stored.models else load_snapshot()
        try:
            save(self._db_factory(), catalog, "openrouter")
        except gexc.GoogleAPIError as exc:
            logs.catalog_store_failed(error=str(exc))
        return catalog
