"""When Firestore is down the user still gets the paid-for answer, the record goes to the
ERROR log, and scripts/replay_usage.py puts it in the ledger exactly once."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tokenledger import logs

from .ledger_checks import month_doc, rows_for
from .served_api import ROOT, free_port, served_api

PYTHON = sys.executable


@pytest.fixture()
def api_without_firestore(stack, tmp_path):
    """The same `api` function served by functions-framework, with Firestore unreachable."""
    log_path = tmp_path / "function.log"
    dead_firestore = f"127.0.0.1:{free_port()}"  # nothing listens there
    with served_api(log_path, FIRESTORE_EMULATOR_HOST=dead_firestore, TOKENLEDGER_RECORD_DEADLINE_S="2") as base:
        yield base, log_path


def test_unrecorded_call_is_answered_logged_and_replayed_once(api_without_firestore, user, db, stack):
    base, log_path = api_without_firestore
    response = requests.post(
        f"{base}/v1/chat/completions",
        headers=user.headers,
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}], "feature": "replay"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Usage-Recorded"] == "false"
    gen_id = response.json()["id"]
    time.sleep(0.5)
    log_text = log_path.read_text()
    assert logs.USAGE_NOT_RECORDED in log_text and gen_id in log_text
    assert '"severity": "ERROR"' in log_text
    assert os.environ.get("OPENROUTER_API_KEY", "no-key") not in log_text  # secrets never logged
    assert rows_for(db, user.uid) == []

    replay = [PYTHON, "-m", "tokenledger.tools.replay", str(log_path)]
    first = subprocess.run(replay, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "recorded" in first.stdout
    second = subprocess.run(replay, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "already_recorded" in second.stdout

    rows = rows_for(db, user.uid)
    assert [r["_id"] for r in rows] == [gen_id]
    assert rows[0]["feature"] == "replay" and rows[0]["cost_nanos"] > 0
    assert month_doc(db, user.uid, rows[0]["month"])["calls"] == 1
