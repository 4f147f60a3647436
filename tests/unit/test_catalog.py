"""The catalog in force: fresh stored copy, else a fetch, else a stale copy, else the snapshot."""
from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as gexc

from tokenledger.config import Settings
from tokenledger.pricing import catalog
from tokenledger.pricing.catalog import CatalogProvider, load_snapshot
from tokenledger.pricing.prices import parse_catalog

MODELS = {"data": [{"id": "a/model", "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]}


class Down:
    def __call__(self):
        raise gexc.ServiceUnavailable("no firestore")


def unreachable():
    raise ConnectionError("openrouter unreachable")


def test_snapshot_ships_prices_for_free_and_paid_models():
    snapshot = load_snapshot()
    assert snapshot.source == "snapshot" and len(snapshot.models) >= 10
    assert any(p.is_free for p in snapshot.models.values())
    assert any(not p.is_free and not p.variable for p in snapshot.models.values())


def test_unreachable_openrouter_and_store_fall_back_to_snapshot(monkeypatch):
    monkeypatch.setattr(catalog, "read_stored", lambda db: (_ for _ in ()).throw(gexc.ServiceUnavailable("x")))
    provider = CatalogProvider(Settings(), Down(), unreachable)
    assert provider.get().source == "snapshot"


def test_fresh_stored_catalog_is_used_without_fetching(monkeypatch):
    stored = parse_catalog(MODELS, "stored", datetime.now(timezone.utc) - timedelta(minutes=5))
    monkeypatch.setattr(catalog, "read_stored", lambda db: stored)
    provider = CatalogProvider(Settings(), lambda: object(), unreachable)
    assert provider.get() is stored


def test_stale_stored_catalog_is_refetched_and_saved(monkeypatch):
    stale = parse_catalog(MODELS, "stored", datetime.now(timezone.utc) - timedelta(days=3))
    saved = []
    monkeypatch.setattr(catalog, "read_stored", lambda db: stale)
    monkeypatch.setattr(catalog, "save", lambda db, cat, source: saved.append(cat))
    provider = CatalogProvider(Settings(), lambda: object(), lambda: MODELS)
    fresh = provider.get()
    assert fresh.source == "openrouter" and saved == [fresh]


def test_stale_stored_catalog_beats_the_snapshot_when_fetch_fails(monkeypatch):
    stale = parse_catalog(MODELS, "stored", datetime.now(timezone.utc) - timedelta(days=3))
    monkeypatch.setattr(catalog, "read_stored", lambda db: stale)
    provider = CatalogProvider(Settings(), lambda: object(), unreachable)
    assert provider.get() is stale


def test_a_catalog_stored_in_an_older_format_is_never_fresh():
    """Issue 16: a copy stored before the store kept unknown price fields and searching models must
    be refetched first (it is only a fallback), however recent its fetched_at."""
    from datetime import datetime, timezone

    class Snap:
        exists = True

        def __init__(self, data):
            self._data = data

        def to_dict(self):
            return self._data

    class Doc:
        def __init__(self, data):
            self.data = data

        def get(self, **_):
            return Snap(self.data)

    now = datetime.now(timezone.utc)
    models = '{"data": [{"id": "a/b", "pricing": {"prompt": "0.000001", "completion": "0.000001"}}]}'
    for data, fresh in (({"models_json": models, "fetched_at": now}, None),
                        ({"models_json": models, "fetched_at": now, "format": catalog.STORE_FORMAT}, now)):
        doc = Doc(data)
        original = catalog.store.pricing_doc
        catalog.store.pricing_doc = lambda db, doc=doc: doc
        try:
            stored = catalog.read_stored(None)
        finally:
            catalog.store.pricing_doc = original
        assert stored.fetched_at == fresh and "a/b" in stored
