"""When Firestore is down the user still gets the paid-for answer, the record goes to the
ERROR log, and scripts/replay_usage.py puts it in the ledger exactly once."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .ledger_checks import month_doc, rows_for

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def api_without_firestore(stack, tmp_path):
    """The same `api` function served by functions-framework, with Firestore unreachable."""
    port = free_port()
    env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}",  # nothing listens there
        "TOKENLEDGER_RECORD_DEADLINE_S": "2",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "function.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [PYTHON, "-m", "functions_framework", "--target", "api", "--source", "main.py", "--port", str(port)],
            cwd=ROOT / "functions",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield base, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
    assert "usage_not_recorded" in log_text and gen_id in log_text
    assert '"severity": "ERROR"' in log_text
    assert os.environ.get("OPENROUTER_API_KEY", "no-key") not in log_text  # secrets never logged
    assert rows_for(db, user.uid) == []

    replay = [PYTHON, str(ROOT / "scripts" / "replay_usage.py"), str(log_path)]
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
