"""The ledger through a Firestore outage (issue 20): the emulator frozen (SIGSTOP) for 6 s and for
30 s under 400 mixed plain and streamed calls from 20 users at concurrency 10, through one served
`api` instance; then, with nobody running a tool, how many billed calls the ledger holds and how
long after the thaw it held them all (scripts/devkit/outage.py; the test asserts the same run:
tests/integration/test_ledger_outage.py).

Two runs: the outbox off (TOKENLEDGER_OUTBOX_ENABLED=false: what main did, the record only in the
ERROR log) and on. BENCH_BASELINE_DIR=<a checkout's functions/> runs that code as the first
instead (e.g. main's). About 3 minutes a run on 2 cores."""
from __future__ import annotations

import os
from pathlib import Path

from google.cloud import firestore

from scripts.bench.served import served_api
from scripts.devkit import outage
from scripts.devkit.api_client import ApiClient
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.standin import StandinControl
from scripts.devkit.table import print_table

BASELINE = os.environ.get("BENCH_BASELINE_DIR")
WINDOW_S = 120


def _row(label: str, run: outage.Outage, figures: dict, healed_s: float | None) -> list:
    answered = [a for a in run.answers if a.status == 200]
    said = {value: sum(1 for a in answered if a.recorded == value) for value in ("true", "queued", "false", None)}
    return [label, len(run.answers), len(answered), sum(1 for a in run.answers if a.status == 503),
            f"{said['true']}/{said['queued']}/{said['false']}/{said[None]}", figures["billed"], len(figures["missing"]),
            figures["healed_rows"], len(figures["rollups_off"]), len(figures["reservations_left"]),
            "-" if healed_s is None else f"{healed_s:.0f}"]


def run(stack) -> None:
    print("\n== The ledger through a Firestore outage: frozen 6 s and 30 s under 400 calls (issue 20) ==")
    auth = AuthEmulator(stack.auth_host, stack.project)
    api = ApiClient(stack.api_url)
    admin = auth.create_user("bench-outage-admin", admin=True)
    standin = StandinControl(stack.standin_url)
    db = firestore.Client(project=stack.project)
    port = int(stack.firestore_host.rsplit(":", 1)[1])
    first = ("baseline (BENCH_BASELINE_DIR)", {"functions_dir": Path(BASELINE), "PYTHONDONTWRITEBYTECODE": "1"}) \
        if BASELINE else ("outbox off", {"TOKENLEDGER_OUTBOX_ENABLED": "false"})
    rows = []
    for label, env in (first, ("outbox on", {"TOKENLEDGER_OUTBOX_ENABLED": "true"})):
        with served_api(name=f"outage-{label.split()[0]}", **env) as base:
            soak_run, figures, healed_s = outage.soak(base, api, admin, auth, standin, db, port, window_s=WINDOW_S)
        rows.append(_row(label, soak_run, figures, healed_s))
        print(f"  {label}: {outage.answer_counts(soak_run.answers)}", flush=True)
    print_table(["run", "calls", "200", "503", "recorded true/queued/false/none", "billed",
                 f"missing {WINDOW_S} s after thaw", "healed rows", "rollups off", "reservations left",
                 "all in, s after thaw"], rows)
