"""When Firestore is down the user still gets the paid-for answer and the record goes to the usage
outbox, which commits it without anyone (`X-Usage-Recorded: queued`); when publishing fails too,
the record goes to the ERROR log and `python -m tokenledger.tools.replay` puts it in the ledger
exactly once (`false`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tokenledger import logs, money

from .ledger_checks import month_doc, rows_for
from .served_api import free_port, served_api

PYTHON = sys.executable


@pytest.fixture()
def api_without_firestore(stack, tmp_path):
    """The same `api` function served by functions-framework, with Firestore unreachable."""
    log_path = tmp_path / "function.log"
    dead_firestore = f"127.0.0.1:{free_port()}"  # nothing listens there
    # Fail-open: the operator's choice to answer through an outage (the default refuses with 503,
    # see test_hardening), so the call reaches the ledger's own outage path. Pub/Sub is down too.
    with served_api(log_path, FIRESTORE_EMULATOR_HOST=dead_firestore, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{free_port()}",
                    TOKENLEDGER_RECORD_DEADLINE_S="2", TOKENLEDGER_OUTBOX_PUBLISH_TIMEOUT_S="2",
                    TOKENLEDGER_BUDGET_FAIL_OPEN="true") as base:
        yield base, log_path


@pytest.fixture()
def api_with_firestore_down(stack, tmp_path):
    """As above, with the stack's Pub/Sub emulator reachable: the outbox takes the record."""
    log_path = tmp_path / "function.log"
    with served_api(log_path, FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{free_port()}", TOKENLEDGER_RECORD_DEADLINE_S="2",
                    TOKENLEDGER_BUDGET_FAIL_OPEN="true") as base:
        yield base, log_path


def test_unrecorded_calls_are_queued_and_healed_without_anyone(api_with_firestore_down, user, db):
    base, log_path = api_with_firestore_down
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}], "feature": "heal"}
    plain = requests.post(f"{base}/v1/chat/completions", headers=user.headers, json=body, timeout=60)
    assert plain.status_code == 200, plain.text
    assert plain.headers["X-Usage-Recorded"] == "queued"
    with requests.post(f"{base}/v1/chat/completions", headers=user.headers, json={**body, "stream": True},
                       timeout=60, stream=True) as streamed:
        chunks = [json.loads(line[5:]) for line in streamed.iter_lines(decode_unicode=True)
                  if line.startswith("data:") and line[5:].strip() != "[DONE]"]
    [usage_chunk] = [c for c in chunks if c.get("usage")]
    assert (usage_chunk["usage_recorded"], usage_chunk["budget"]) == ("queued", None)  # fail-open: not known
    charged = {plain.json()["id"]: plain.json()["usage"]["cost"], usage_chunk["id"]: usage_chunk["usage"]["cost"]}

    from .outbox_helpers import healed, wait_for

    for gen_id in charged:
        wait_for(lambda: healed(db, gen_id))
    rows = {row["_id"]: row for row in rows_for(db, user.uid)}
    assert {g: rows[g]["cost_nanos"] for g in rows} == {g: money.to_nanos(money.to_decimal(c)) for g, c in charged.items()}
    assert all(row["healed"] and row["feature"] == "heal" for row in rows.values())
    month = month_doc(db, user.uid, next(iter(rows.values()))["month"])
    assert (month["calls"], month["cost_nanos"]) == (2, sum(row["cost_nanos"] for row in rows.values()))
    log_text = log_path.read_text()
    assert log_text.count(logs.USAGE_QUEUED) == 2 and logs.USAGE_NOT_RECORDED not in log_text


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

    # The ERROR entry holds the whole record: parse it back and check it is this call.
    [entry] = [json.loads(line[line.index("{"):]) for line in log_text.splitlines()
               if logs.USAGE_NOT_RECORDED in line and line.lstrip().startswith("{")]
    logged = entry["record"]
    usage = response.json()["usage"]
    assert (logged["generation_id"], logged["user_id"], logged["feature"]) == (gen_id, user.uid, "replay")
    assert (logged["prompt_tokens"], logged["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert logged["cost_nanos"] == money.to_nanos(money.to_decimal(usage["cost"]))

    replay = [PYTHON, "-m", "tokenledger.tools.replay", str(log_path)]
    first = subprocess.run(replay, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert _lines(first.stdout) == [f"[1/1] {gen_id}  user {user.uid}  recorded", "",
                                    "recorded               1", "already recorded       0",
                                    "invalid                0", "failed                 0"]
    second = subprocess.run(replay, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert _lines(second.stdout)[0] == f"[1/1] {gen_id}  user {user.uid}  already_recorded"
    assert _lines(second.stdout)[2:4] == ["recorded               0", "already recorded       1"]

    # The row is the logged record, written once, with its rollup.
    [row] = rows_for(db, user.uid)
    assert row["_id"] == gen_id
    for name in ("user_id", "feature", "prompt_tokens", "completion_tokens", "total_tokens", "cost_nanos", "model"):
        assert row[name] == logged[name], name
    month = month_doc(db, user.uid, row["month"])
    assert (month["calls"], month["cost_nanos"]) == (1, logged["cost_nanos"])


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]
