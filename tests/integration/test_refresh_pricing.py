"""refresh_pricing (scheduled, run in the emulator): OpenRouter's price change becomes the
catalog in force (source, fetched_at), with a history entry naming the change."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from scripts.trigger_schedule import trigger

MODEL = "openai/gpt-4o-mini"


def refresh():
    status, body = trigger("refresh_pricing", timeout=120)
    assert status == 200, body


def stored_prices(db) -> tuple[dict, dict]:
    current = db.collection("model_pricing").document("current").get().to_dict()
    models = {m["id"]: m["pricing"] for m in json.loads(current["models_json"])["data"]}
    return current, models


def test_price_change_is_picked_up_and_kept_in_history(standin, db):
    refresh()
    _, models = stored_prices(db)
    old_prompt = models[MODEL]["prompt"]
    started = datetime.now(timezone.utc)
    standin.set_pricing(MODEL, prompt="0.0000002")
    try:
        refresh()
        current, models = stored_prices(db)
        assert models[MODEL]["prompt"] == "0.0000002"
        assert current["source"] == "openrouter"
        assert current["fetched_at"] >= started - timedelta(seconds=5)
        # Every modality: the image-output model is in the catalog too.
        assert "google/gemini-2.5-flash-image-preview" in models

        history = [s.to_dict() for s in db.collection("model_pricing").document("current").collection("history").stream()]
        latest = max(history, key=lambda h: h["fetched_at"])
        assert {"model_id": MODEL, "field": "prompt", "old": old_prompt, "new": "0.0000002"} in latest["changes"]
        assert len(latest["changes"]) == 1
    finally:
        standin.reset()  # back to the original price, and the catalog in force with it
        refresh()
    _, models = stored_prices(db)
    assert models[MODEL]["prompt"] == old_prompt
