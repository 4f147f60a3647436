"""A Firestore outage under load, and what the ledger holds afterwards (the soak of issue 20):
mixed plain and streamed calls from many users at a fixed concurrency while the Firestore
emulator is frozen (SIGSTOP) for a while, twice; then, without anyone running a tool, every
call OpenRouter billed (the stand-in's own list) must reach `usage_tracking` once at its charged
cost, every rollup must equal its rows, and no reservation may be left behind.

Used by tests/integration/test_ledger_outage.py (assertions) and `make bench ARGS=outage` (figures).
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import requests

from scripts.devkit import freeze

MODEL = "openai/gpt-4o-mini"
NANOS = Decimal(1_000_000_000)


@dataclass
class Answer:
    uid: str
    stream: bool
    status: int
    recorded: str | None = None  # X-Usage-Recorded, or the stream's `usage_recorded`
    generation_id: str | None = None
    error: str | None = None  # the client's own failure (no HTTP answer)
    budget: bool = False  # the answer has its `budget` field (the usage chunk's, for a stream; null: not known now)


def _body(index: int, stream: bool) -> dict:
    body = {"model": MODEL, "max_tokens": 24, "messages": [{"role": "user", "content": f"Soak call {index}"}]}
    if stream:
        body["stream"] = True
    return body


def plain_call(http: requests.Session, api_url: str, user, index: int) -> Answer:
    response = http.post(f"{api_url}/v1/chat/completions", headers=user.headers, json=_body(index, False), timeout=120)
    answer = Answer(user.uid, False, response.status_code, response.headers.get("X-Usage-Recorded"))
    if response.status_code == 200:
        data = response.json()
        answer.generation_id, answer.budget = data.get("id"), "budget" in data
    return answer


def stream_call(http: requests.Session, api_url: str, user, index: int) -> Answer:
    with http.post(f"{api_url}/v1/chat/completions", headers=user.headers, json=_body(index, True), timeout=120,
                   stream=True) as response:
        answer = Answer(user.uid, True, response.status_code)
        if response.status_code != 200:
            response.content  # noqa: B018 - read the error body to free the connection
            return answer
        answer.generation_id = response.headers.get("X-Generation-Id")
        for raw in response.iter_lines(decode_unicode=True):
            if not raw or not raw.startswith("data:") or raw[5:].strip() == "[DONE]":
                continue
            chunk = json.loads(raw[5:])
            if "usage_recorded" in chunk:
                answer.recorded = chunk["usage_recorded"]
                answer.budget = "budget" in chunk
    return answer


@dataclass
class Outage:
    """Call `calls` times (every other one streamed; users in turn) with `concurrency` at once;
    freeze the process on `firestore_port` for each (after_calls, seconds) of `freezes`."""

    api_url: str
    users: list
    firestore_port: int
    calls: int = 400
    concurrency: int = 10
    freezes: tuple = ((60, 6.0), (200, 30.0))
    answers: list = field(default_factory=list)
    thawed_at: float | None = None  # monotonic time of the last thaw
    frozen_s: list = field(default_factory=list)

    def run(self) -> list[Answer]:
        pid = freeze.pid_listening_on(self.firestore_port)
        done = Counter()
        lock = threading.Condition()
        http = requests.Session()
        http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=self.concurrency * 2))

        def one(index: int) -> Answer:
            user = self.users[index % len(self.users)]
            call = stream_call if index % 2 else plain_call
            try:
                answer = call(http, self.api_url, user, index)
            except requests.RequestException as exc:
                answer = Answer(user.uid, bool(index % 2), 0, error=type(exc).__name__)
            with lock:
                done["calls"] += 1
                lock.notify_all()
            return answer

        def freezer():
            for after, seconds in self.freezes:
                with lock:
                    lock.wait_for(lambda: done["calls"] >= after)
                started = time.monotonic()
                self.thawed_at = freeze.freeze_for(pid, seconds)
                self.frozen_s.append(round(self.thawed_at - started, 1))

        thread = threading.Thread(target=freezer, daemon=True)
        thread.start()
        with ThreadPoolExecutor(self.concurrency) as pool:
            self.answers = list(pool.map(one, range(self.calls)))
        thread.join()
        return self.answers


def billed(standin, uids: list[str]) -> dict[str, tuple[str, int]]:
    """Every generation the stand-in billed for these users: id -> (uid, charged nano-dollars)."""
    out = {}
    for uid in uids:
        for gen in standin.generations(uid):
            out[gen["id"]] = (uid, int(Decimal(str(gen["total_cost"])) * NANOS))
    return out


def ledger_figures(db, uids: list[str], charged: dict[str, tuple[str, int]], month: str) -> dict:
    """What the ledger holds for these users against what was billed."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from tests.integration.budget_helpers import open_reservations
    from tests.integration.ledger_checks import held_beyond_leases, month_doc

    rows = {}
    for uid in uids:
        query = db.collection("usage_tracking").where(filter=FieldFilter("user_id", "==", uid))
        rows.update({snap.id: snap.to_dict() for snap in query.stream()})
    missing = sorted(set(charged) - set(rows))
    wrong_cost = sorted(g for g, (_, cost) in charged.items() if g in rows and rows[g]["cost_nanos"] != cost)
    unbilled_rows = sorted(set(rows) - set(charged))
    rollups_off, left_behind = [], []
    for uid in uids:
        mine = [row for row in rows.values() if row["user_id"] == uid]
        totals = month_doc(db, uid, month) or {}
        if (int(totals.get("calls") or 0), int(totals.get("cost_nanos") or 0)) != (
                len(mine), sum(row["cost_nanos"] for row in mine)):
            rollups_off.append(uid)
        if held_beyond_leases(db, uid, month) != (0, 0) or open_reservations(db, uid):
            left_behind.append(uid)
    return {"billed": len(charged), "rows": len(rows), "missing": missing, "wrong_cost": wrong_cost,
            "unbilled_rows": unbilled_rows, "rollups_off": rollups_off, "reservations_left": left_behind,
            "healed_rows": sum(1 for row in rows.values() if row.get("healed"))}


def settled(figures: dict) -> bool:
    return not (figures["missing"] or figures["wrong_cost"] or figures["unbilled_rows"] or figures["rollups_off"]
                or figures["reservations_left"])


def settle_within(run: Outage, standin, db, uids: list[str], month: str, window_s: float) -> tuple[dict, float | None]:
    """Poll the ledger until it holds every billed call (settled) or `window_s` after the last thaw
    passed: (the last figures, seconds after the thaw it settled, or None)."""
    while True:
        figures = ledger_figures(db, uids, billed(standin, uids), month)
        after_thaw = time.monotonic() - run.thawed_at
        if settled(figures):
            return figures, round(after_thaw, 1)
        if after_thaw > window_s:
            return figures, None
        time.sleep(2)


def soak(api_url: str, api, admin, auth, standin, db, firestore_port: int, users: int = 20,
         window_s: float = 120, **outage_args) -> tuple[Outage, dict, float | None]:
    """The whole soak: users with enforced budgets, the outage, the wait. `api` (an admin-capable
    client of the stack's api: put_budget) sets the budgets; the calls go to `api_url`."""
    from tests.integration.budget_helpers import put_budget

    people = [auth.create_user(f"soak{i}") for i in range(users)]
    for person in people:  # enforced budgets: every call holds a reservation or a lease's share
        put_budget(api, admin, person.uid, monthly_budget=50, enforce=True)
    month = time.strftime("%Y-%m", time.gmtime())
    run = Outage(api_url, people, firestore_port, **outage_args)
    run.run()
    figures, healed_s = settle_within(run, standin, db, [p.uid for p in people], month, window_s)
    return run, figures, healed_s


def answer_counts(answers: list[Answer]) -> dict:
    counts = Counter()
    for a in answers:
        kind = "stream" if a.stream else "plain"
        counts[f"{kind} {a.status}" + (f" {a.error}" if a.error else "")] += 1
        if a.status == 200:
            counts[f"{kind} recorded={a.recorded}"] += 1
            counts[f"{kind} with budget"] += a.budget
    return dict(sorted(counts.items()))
