"""The scheduled budget check against the Firestore emulator: alerts once (repeated and
concurrent runs), mail documents, month rollover by its clock, expired reservations released;
and the deployed `check_budgets` function run through the Functions emulator."""
from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from google.cloud.firestore_v1.base_query import FieldFilter

from scripts.trigger_schedule import trigger
from tokenledger import jobs, store
from tokenledger.budgets import reservations
from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

from .budget_helpers import alert_ids, open_reservations

NOW = datetime(2032, 5, 20, 12, 0, tzinfo=timezone.utc)
MONTH = "2032-05"
# Budgets documents only (no default budget): the reads bound below is that of the budgets pass;
# the pass over users on the default budget is tested in test_hardening.
SETTINGS = Settings(mail_enabled=True, budget_check_page_size=7, default_monthly_budget=None)

def seed(db, spent: dict[str, int], budget_nanos: int = 1_000_000_000, **fields) -> dict[str, str]:
    """Users with a budget and a month rollup (cost in nanos), as the API and ledger write them."""
    uids = {}
    batch = db.batch()
    for name, cost in spent.items():
        uid = f"chk-{name}-{uuid.uuid4().hex[:8]}"
        uids[name] = uid
        batch.set(store.budget_doc(db, uid), {"monthly_budget_nanos": budget_nanos, "monthly_budget": budget_nanos / 1e9,
                                             "alert_thresholds": [0.8, 1.0], "enforce": False, **fields})
        batch.set(store.user_month_doc(db, uid, MONTH), {"cost_nanos": cost, "user_id": uid, "month": MONTH})
    batch.commit()
    return uids

def test_check_writes_each_missing_alert_once_with_mail(db):
    uids = seed(db, {"low": 500_000_000, "warn": 850_000_000, "over": 1_300_000_000}, email="team@example.com")
    budgets = db.collection("user_budgets").count().get()[0][0].value  # other tests' budgets too
    first = check_budgets(db, SETTINGS, NOW)
    assert alert_ids(db, uids["low"]) == set()
    assert alert_ids(db, uids["warn"]) == {f"{uids['warn']}_{MONTH}_0.8"}
    assert alert_ids(db, uids["over"]) == {f"{uids['over']}_{MONTH}_0.8", f"{uids['over']}_{MONTH}_1.0"}
    over = db.collection("budget_alerts").document(f"{uids['over']}_{MONTH}_1.0").get().to_dict()
    assert (over["alert_type"], over["source"], over["current_cost"], over["percentage_used"]) == (
        "budget_exceeded", "scheduled", 1.3, 130.0)
    mail = db.collection("mail").document(f"{uids['over']}_{MONTH}_1.0").get().to_dict()
    assert mail["to"] == "team@example.com" and set(mail["message"]) == {"subject", "text", "html"}
    assert first.budgets == budgets
    # One read per budget and per month document (+ an empty last page), plus the expired
    # reservations' query: never the usage rows.
    assert first.reads <= 2 * budgets + budgets // SETTINGS.budget_check_page_size + 3

    again = check_budgets(db, SETTINGS, NOW)
    assert not {a for a in again.alerts if a.split("_")[0] in uids.values()}
    assert len(alert_ids(db, uids["over"])) == 2

def test_concurrent_checks_write_each_alert_once(db):
    uids = seed(db, {f"u{i}": 1_000_000_000 + i for i in range(12)})
    # The month documents say nothing was sent, so every run tries every alert at once.
    with ThreadPoolExecutor(6) as pool:
        reports = list(pool.map(lambda _: check_budgets(db, SETTINGS, NOW), range(6)))
    mine = [a for r in reports for a in r.alerts if a.rsplit("_", 2)[0] in uids.values()]
    assert sorted(mine) == sorted(f"{uid}_{MONTH}_{t}" for uid in uids.values() for t in ("0.8", "1.0"))
    assert all(len(alert_ids(db, uid)) == 2 for uid in uids.values())

def test_a_new_month_starts_without_alerts(db):
    uids = seed(db, {"jan": 2_000_000_000})
    check_budgets(db, SETTINGS, NOW)
    june = check_budgets(db, SETTINGS, NOW + timedelta(days=15))  # 2032-06: no spend yet
    assert not [a for a in june.alerts if uids["jan"] in a]
    assert alert_ids(db, uids["jan"]) == {f"{uids['jan']}_{MONTH}_0.8", f"{uids['jan']}_{MONTH}_1.0"}

def test_expired_reservations_of_crashed_calls_are_released_once(db):
    uid = f"crash-{uuid.uuid4().hex[:8]}"
    # A call reserved its worst case and crashed before settling; another is still in flight.
    crashed = reservations.reserve(db, uid, MONTH, 700, NOW - timedelta(hours=2), ttl_s=900)
    live = reservations.reserve(db, uid, MONTH, 50, NOW - timedelta(seconds=5), ttl_s=900)
    # Other tests' reservations (made at today's clock) have expired too by this 2032 clock.
    expired = (db.collection("reservations").where(filter=FieldFilter("expires_at", "<=", NOW))
               .count().get()[0][0].value)
    report = check_budgets(db, SETTINGS, NOW)
    assert report.reservations_released == expired
    assert reservations.read_month(db, uid, MONTH).reserved_nanos == 50
    assert [r["amount_nanos"] for r in open_reservations(db, uid)] == [50]
    check_budgets(db, SETTINGS, NOW)  # a re-run releases nothing twice
    assert reservations.read_month(db, uid, MONTH).reserved_nanos == 50
    assert reservations.release(db, crashed) is False  # a late abandon changes nothing either
    assert reservations.release(db, live) is True
    assert reservations.read_month(db, uid, MONTH).reserved_nanos == 0

def test_scheduled_function_runs_in_the_emulator(db):
    uids = seed(db, {"sched": 900_000_000})
    status, body = trigger("check_budgets", schedule_time="2032-05-31T23:00:00Z")
    assert status == 200, body
    alert = db.collection("budget_alerts").document(f"{uids['sched']}_{MONTH}_0.8").get()
    assert alert.exists and alert.to_dict()["source"] == "scheduled"



def test_the_job_runs_at_the_schedule_time_it_is_given(db):
    """jobs.check_budgets as the scheduled function calls it: the scheduler's time (naive = UTC)
    picks the month, not the machine's clock."""
    uids = seed(db, {"job": 1_000_000_000})
    report = jobs.check_budgets(datetime(2032, 5, 31, 23, 0), SETTINGS)
    assert report.month == MONTH
    assert alert_ids(db, uids["job"]) == {f"{uids['job']}_{MONTH}_0.8", f"{uids['job']}_{MONTH}_1.0"}


def test_the_operator_tool_runs_the_same_check(db):
    uids = seed(db, {"tool": 1_000_000_000})
    done = subprocess.run([sys.executable, "-m", "tokenledger.tools.check_budgets", "--now", "2032-05-20T12:00:00Z",
                           "--page-size", "7"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[0] == "Budget check for 2032-05 (clock 2032-05-20T12:00:00+00:00)"
    assert lines[-3].split() == ["budgets", "over", "budget", "alerts", "written", "reservations", "released", "reads",
                                 "seconds"]
    assert alert_ids(db, uids["tool"]) == {f"{uids['tool']}_{MONTH}_0.8", f"{uids['tool']}_{MONTH}_1.0"}
