"""A page reading its own month sees all of it: a user whose month and day are spread over a base
document and shards (calls faster than about once a second) gets, on the usage page (the typed
client's rollup readers, web/src/rollups.ts), the totals of their usage rows — before the fold
and after it moved the shards into the base. Expected values come from the rows."""
from __future__ import annotations

import subprocess
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from scripts.devkit import browser
from tokenledger import store
from tokenledger.config import Settings
from tokenledger.metering import fold, hot_users, ledger
from tokenledger.metering.hot_users import HotUsers
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price

from .helpers import rows_of, usd, wait_text

CALLS = 14
ROOT = Path(__file__).resolve().parents[2]


class SteppedClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.05  # 20 calls a second
        return self.now


def record_hot_calls(db, uid: str, when: datetime) -> None:
    for i in range(CALLS):
        response = {"id": f"gen-web-hot-{uuid.uuid4().hex}", "model": "openai/gpt-4o-mini", "provider": "OpenAI",
                    "choices": [{"finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 40 + i, "completion_tokens": 9, "total_tokens": 49 + i,
                              "cost": float(Decimal(21_000 + 7 * i) / Decimal(10**9))}}
        facts = CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", when, latency_ms=2, feature="web-hot")
        ledger.record_usage(db, build_record(response, facts, Pricing(
            None, fallback_price("x", Decimal("0.00001"), Decimal("0.00003")))), Settings(record_deadline_s=5))


def test_a_hot_users_usage_page_shows_the_whole_month_before_and_after_the_fold(page, app_url, auth, db, monkeypatch):
    user = auth.create_user("hot-web")
    when = datetime.now(timezone.utc)
    month = when.strftime("%Y-%m")
    monkeypatch.setattr(hot_users, "PLACEMENT", HotUsers(store.USER_SHARDS, clock=SteppedClock()))
    record_hot_calls(db, user.uid, when)
    rows = rows_of(db, user.uid)
    nanos = sum(r["cost_nanos"] for r in rows)
    assert len(rows) == CALLS and nanos == sum(21_000 + 7 * i for i in range(CALLS))
    months = db.collection("user_usage").document(user.uid).collection("months")
    base = months.document(month).get().to_dict()
    assert len(list(months.stream())) > 1 and base["calls"] < CALLS  # a plain getDoc sees part of it

    browser.sign_in(page, app_url, user)
    wait_text(page, "#total-calls", str(CALLS))
    assert page.text_content("#total-cost") == usd(nanos)
    assert int(page.get_attribute("#total-cost", "data-nanos")) == nanos

    # The fold moves the shards into the base while the page listens: it keeps showing the month.
    report = fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=[month])
    assert f"{user.uid}/months/{month}" in report.folded
    assert months.document(month).get().to_dict()["calls"] == CALLS and len(list(months.stream())) == 1
    page.reload()
    wait_text(page, "#total-calls", str(CALLS))
    assert int(page.get_attribute("#total-cost", "data-nanos")) == nanos


HARNESS = """
import { signInWithEmailAndPassword } from "firebase/auth";
import { readDay, readMonth } from "./client";
import { startFirebase } from "./firebase";

(window as any).__readPeriods = async (email: string, password: string, month: string, day: string) => {
  const { auth, db } = await startFirebase();
  const { user } = await signInWithEmailAndPassword(auth, email, password);
  return { month: await readMonth(db, user.uid, month), day: await readDay(db, user.uid, day) };
};
(window as any).__harnessReady = true;
"""
COMPARED = ("calls", "free_calls", "paid_calls", "free_tokens", "paid_tokens", "cost_nanos")


def typed_client_readers() -> str:
    """The typed client's readMonth / readDay (web/src/client.ts, as an app copies it), bundled
    with the Firebase SDK for a page: esbuild from the app's own pinned packages."""
    web = ROOT / "web"
    built = subprocess.run(
        [str(web / "node_modules/.bin/esbuild"), "--bundle", "--format=esm", "--loader=ts", "--target=es2022",
         "--sourcefile=harness.ts", "--log-level=warning"],
        input=HARNESS, cwd=web / "src", capture_output=True, text=True, check=True)
    return built.stdout


def test_the_typed_clients_read_month_and_day_sum_the_shards_before_and_after_the_fold(page, app_url, auth, db,
                                                                                       monkeypatch):
    user = auth.create_user("hot-helper")
    when = datetime.now(timezone.utc)
    month, day = when.strftime("%Y-%m"), when.strftime("%Y-%m-%d")
    monkeypatch.setattr(hot_users, "PLACEMENT", HotUsers(store.USER_SHARDS, clock=SteppedClock()))
    record_hot_calls(db, user.uid, when)
    rows = rows_of(db, user.uid)
    want = {name: 0 for name in COMPARED}
    for row in rows:
        kind = "free" if row["is_free"] else "paid"
        want["calls"] += 1
        want[f"{kind}_calls"] += 1
        want[f"{kind}_tokens"] += row["total_tokens"]
        want["cost_nanos"] += row["cost_nanos"]
    base = db.collection("user_usage").document(user.uid).collection("months").document(month).get().to_dict()
    assert base["calls"] < want["calls"] == CALLS  # the base alone is part of the month

    page.goto(app_url)
    page.add_script_tag(content=typed_client_readers(), type="module")
    page.wait_for_function("window.__harnessReady === true")
    for state in ("sharded", "folded"):
        if state == "folded":
            assert f"{user.uid}/days/{day}" in fold.fold_shards(db, datetime.now(timezone.utc), 0, [month]).folded
        read = page.evaluate("([e, p, m, d]) => window.__readPeriods(e, p, m, d)",
                             [user.email, user.password, month, day])
        assert {name: read["month"][name] for name in COMPARED} == want, state
        assert {name: read["day"][name] for name in COMPARED} == want, state
