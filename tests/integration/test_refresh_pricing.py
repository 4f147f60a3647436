"""refresh_pricing (scheduled, run in the emulator): OpenRouter's price change becomes the
catalog in force (source, fetched_at), with a history entry naming the change."""
from __future__ import annotations

import json
import subprocess
import sys
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


def tool(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "tokenledger.tools.refresh_pricing", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The structured log lines (JSON, as the functions write them) go to stdout too: set apart.
    return [line.rstrip() for line in done.stdout.splitlines() if not line.startswith("{")]


def test_the_operator_tool_refreshes_and_prints_the_changes(standin, db):
    refresh()  # the catalog in force is the stand-in's
    standin.set_pricing(MODEL, completion="0.0000007")
    try:
        out = tool()
        current, models = stored_prices(db)
        assert out[0] == "fetching /models (all pages, all modalities)..."
        assert out[1].startswith(f"{len(models)} models stored as the catalog in force (fetched_at ")
        assert models[MODEL]["completion"] == "0.0000007"
        assert out[3] == "Changes against the stored catalog"  # the one in model_pricing/current
        assert out[6].split() == [MODEL, "completion", "0.0000006", "0.0000007"] and len(out) == 7
        assert tool()[2] == "no price changes against the stored catalog"
    finally:
        standin.reset()
        refresh()
