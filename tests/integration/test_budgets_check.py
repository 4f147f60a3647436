"""The scheduled budget check against the Firestore emulator: alerts once (repeated and
concurrent runs), mail documents, month rollover by its clock, expired reservations released,
the budget copy on the month document (one read per active user, a concurrent PUT never
overwritten by an older budget); and the deployed `check_budgets` function run through the
Functions emulator."""
from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from scripts.trigger_schedule import trigger
from tokenledger import jobs, store
from tokenledger.budgets import reservations
from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

from .budget_helpers import alert_ids, at, open_reservations

NOW = datetime(2032, 5, 20, 12, 0, tzinfo=timezone.utc)
MONTH = "2032-05"
PAGE = 7
# The configured default as out of the box ($1, alerts at 80% and 100%) for users without a
# budget document; mail on. Every test that counts reads has a month of its own.
SETTINGS = Settings(mail_enabled=True, budget_check_page_size=PAGE)
USD = 1_000_000_000  # nano-dollars


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def seed(db, spent: dict[str, int], budget_nanos: int = USD, month: str = MONTH, tag: str | None = None,
         no_budget: tuple = (), **fields) -> dict[str, str]:
    """Users with a budget and a month rollup (cost in nanos), as the API and ledger write them;
    those named in `no_budget` have no budget document (the configured default applies)."""
    tag = tag or uuid.uuid4().hex[:8]
    uids = {}
    batch = db.batch()
    for name, cost in spent.items():
        uid = f"chk-{tag}-{name}"
        uids[name] = uid
        if name not in no_budget:
            batch.set(store.budget_doc(db, uid), budget_fields(budget_nanos, **fields))
        if cost is not None:
            batch.set(store.user_month_doc(db, uid, month), {"cost_nanos": cost, "user_id": uid, "month": month})
    batch.commit()
    return uids


def budget_fields(budget_nanos: int, **fields) -> dict:
    return {"monthly_budget_nanos": budget_nanos, "monthly_budget": budget_nanos / 1e9,
            "alert_thresholds": [0.8, 1.0], "enforce": False, **fields}


def paged(documents: int) -> int:
    """Reads of a paged query returning `documents` (PAGE a page): one each, and one for an
    empty last page (a page shorter than PAGE ends the query)."""
    return documents + (1 if documents % PAGE == 0 else 0)


def reservation_reads(db, now: datetime) -> int:
    """Reads of the run's expired-reservations query: every reservation expired by `now`."""
    expired = (db.collection("reservations").where(filter=FieldFilter("expires_at", "<=", now))
               .count().get()[0][0].value)
    return paged(expired)


def month_fields(db, uid: str, month: str) -> dict | None:
    snap = store.user_month_doc(db, uid, month).get()
    return snap.to_dict() if snap.exists else None


def test_check_writes_each_missing_alert_once_with_mail(db):
    now, month = datetime(2032, 1, 20, 12, 0, tzinfo=timezone.utc), "2032-01"
    uids = seed(db, {"low": 500_000_000, "warn": 850_000_000, "over": 1_300_000_000}, month=month,
                email="team@example.com")
    expected_reads = reservation_reads(db, now) + paged(3) + 3  # 3 month documents, then their 3 budgets
    first = check_budgets(db, SETTINGS, now)
    assert alert_ids(db, uids["low"]) == set()
    assert alert_ids(db, uids["warn"]) == {f"{uids['warn']}_{month}_0.8"}
    assert alert_ids(db, uids["over"]) == {f"{uids['over']}_{month}_0.8", f"{uids['over']}_{month}_1.0"}
    over = db.collection("budget_alerts").document(f"{uids['over']}_{month}_1.0").get().to_dict()
    assert (over["alert_type"], over["source"], over["current_cost"], over["percentage_used"]) == (
        "budget_exceeded", "scheduled", 1.3, 130.0)
    mail = db.collection("mail").document(f"{uids['over']}_{month}_1.0").get().to_dict()
    assert mail["to"] == "team@example.com" and set(mail["message"]) == {"subject", "text", "html"}
    assert (first.budgets, first.default_budgets, first.over_budget, first.alerts_written) == (3, 0, 1, 3)
    assert (first.reads, first.budget_reads, first.copies_written) == (expected_reads, 3, 3)

    expected_reads = reservation_reads(db, now) + paged(3)  # the copies are there: the month documents only
    again = check_budgets(db, SETTINGS, now)
    assert again.alerts == [] and (again.reads, again.budget_reads, again.copies_written) == (expected_reads, 0, 0)
    assert len(alert_ids(db, uids["over"])) == 2


def test_steady_state_reads_one_document_per_active_user(db):
    """Budgets, a user on the default, a hot user whose shards straddle two pages, and a budget
    without spend this month (no month document: never read)."""
    now, month = datetime(2033, 1, 20, 12, 0, tzinfo=timezone.utc), "2033-01"
    tag = uuid.uuid4().hex[:8]
    # Path order (the scan's): a1..a5, b, c (base + 3 shards), d1..d4 -> 14 documents, pages of 7.
    spent = {"a1": 500_000_000, "a2": 850_000_000, "a3": 1_200_000_000, "a4": 100_000_000, "a5": 100_000_000,
             "b": 900_000_000, "c": 300_000_000, "d1": 1_000_000_000, "d2": 0, "d3": 0, "d4": 0, "e": None}
    uids = seed(db, spent, month=month, tag=tag, no_budget=("b",))
    hot = uids["c"]
    batch = db.batch()
    batch.set(store.user_month_doc(db, hot, month), {"sharded": True}, merge=True)
    for shard in (1, 2, 3):
        batch.set(store.user_month_shard_doc(db, hot, month, shard),
                  {"cost_nanos": 300_000_000, "user_id": hot, "month": month, "shard": shard})
    batch.commit()
    alerted = {uids[n]: ts for n, ts in {"a2": ["0.8"], "a3": ["0.8", "1.0"], "b": ["0.8"], "c": ["0.8", "1.0"],
                                          "d1": ["0.8", "1.0"]}.items()}
    expected_alerts = sorted(f"{uid}_{month}_{t}" for uid, ts in alerted.items() for t in ts)

    # First run of the month: 14 month documents (+1 empty last page), then the budget documents
    # of the 11 active users (b's, which does not exist, is a read too); copies written. c's 4
    # documents came on two pages: read again whole, in one snapshot (+4; a fold of c's shards
    # between the two pages would otherwise hide what it moved).
    expected_reads = reservation_reads(db, now) + 15 + 11 + 4
    first = check_budgets(db, SETTINGS, now)
    assert sorted(first.alerts) == expected_alerts
    assert (first.budgets, first.default_budgets, first.over_budget) == (10, 1, 3)  # a3, c ($1.20 in 4 documents), d1
    assert (first.reads, first.budget_reads, first.copies_written) == (expected_reads, 11, 11)
    assert month_fields(db, uids["a2"], month)["budget_copy"] == {
        "exists": True, "fields": budget_fields(USD), "updated_at": None}
    assert month_fields(db, uids["b"], month)["budget_copy"] == {"exists": False}
    assert "budget_copy" not in month_fields(db, hot, store.shard_id(month, 1))  # on the base document only
    assert month_fields(db, uids["e"], month) is None  # no spend, no document: not read, not written

    # Steady state: one read per month document (11 users, 14 documents), no budget document
    # (and c's 4 again, as above).
    expected_reads = reservation_reads(db, now) + 15 + 4
    again = check_budgets(db, SETTINGS, now)
    assert (again.budgets, again.default_budgets, again.over_budget, again.alerts) == (10, 1, 3, [])
    assert (again.reads, again.budget_reads, again.copies_written) == (expected_reads, 0, 0)


def test_a_new_month_reads_each_budget_once_then_only_the_month(db):
    feb, mar = datetime(2033, 2, 27, 12, 0, tzinfo=timezone.utc), datetime(2033, 3, 2, 12, 0, tzinfo=timezone.utc)
    uids = seed(db, {"u1": 900_000_000, "u2": 100_000_000, "u3": 100_000_000, "dflt": 100_000_000},
                month="2033-02", no_budget=("dflt",), budget_nanos=2 * USD)
    assert check_budgets(db, SETTINGS, feb).budget_reads == 4
    assert check_budgets(db, SETTINGS, feb).budget_reads == 0
    # March: the month documents are new (the ledger writes them with the first calls), no copies yet.
    batch = db.batch()
    for name, cost in {"u1": 1_700_000_000, "u2": 0, "u3": 0, "dflt": 850_000_000}.items():
        batch.set(store.user_month_doc(db, uids[name], "2033-03"), {"cost_nanos": cost, "user_id": uids[name],
                                                                     "month": "2033-03"})
    batch.commit()
    expected_reads = reservation_reads(db, mar) + paged(4) + 4
    first = check_budgets(db, SETTINGS, mar)
    assert sorted(first.alerts) == [f"{uids['dflt']}_2033-03_0.8", f"{uids['u1']}_2033-03_0.8"]  # $1.70 of $2; $0.85 of $1
    assert (first.reads, first.budget_reads, first.copies_written) == (expected_reads, 4, 4)
    expected_reads = reservation_reads(db, mar) + paged(4)
    second = check_budgets(db, SETTINGS, mar)
    assert (second.reads, second.budget_reads, second.alerts) == (expected_reads, 0, [])
    assert month_fields(db, uids["u1"], "2033-03")["budget_copy"]["fields"]["monthly_budget_nanos"] == 2 * USD


def test_a_budget_put_is_used_by_the_next_check_without_reading_it(db, api, admin, auth):
    now, month = datetime(2033, 5, 20, 12, 0, tzinfo=timezone.utc), "2033-05"
    user = auth.create_user("putcheck")
    store.user_month_doc(db, user.uid, month).set({"cost_nanos": 1_700_000_000, "user_id": user.uid, "month": month})

    def put(**body) -> None:
        response = api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json=body,
                               headers=at("2033-05-10T09:00:00Z"))
        assert response.status_code in (200, 201), response.text

    put(monthly_budget=2, alert_thresholds=[0.5, 0.8, 1.0], email="p@example.com")
    stored = store.budget_doc(db, user.uid).get().to_dict()
    assert month_fields(db, user.uid, month)["budget_copy"] == {
        "exists": True, "updated_at": stored["updated_at"],
        "fields": {"monthly_budget": 2.0, "monthly_budget_nanos": 2 * USD, "alert_thresholds": [0.5, 0.8, 1.0],
                   "email": "p@example.com"}}
    expected_reads = reservation_reads(db, now) + paged(1)  # the month document, nothing else
    report = check_budgets(db, SETTINGS, now)
    assert (report.reads, report.budget_reads, report.budgets) == (expected_reads, 0, 1)
    assert report.alerts == [f"{user.uid}_{month}_0.5", f"{user.uid}_{month}_0.8"]  # $1.70 of $2
    assert db.collection("mail").document(f"{user.uid}_{month}_0.8").get().to_dict()["to"] == "p@example.com"

    put(monthly_budget=1.5)  # replaces the whole budget: the copy loses the thresholds and the email
    assert month_fields(db, user.uid, month)["budget_copy"]["fields"] == {"monthly_budget": 1.5,
                                                                          "monthly_budget_nanos": 1_500_000_000}
    report = check_budgets(db, SETTINGS, now)
    assert (report.budget_reads, report.alerts) == (0, [f"{user.uid}_{month}_1.0"])  # default thresholds
    alert = db.collection("budget_alerts").document(f"{user.uid}_{month}_1.0").get().to_dict()
    assert (alert["monthly_budget_nanos"], alert["current_cost_nanos"]) == (1_500_000_000, 1_700_000_000)
    assert not db.collection("mail").document(f"{user.uid}_{month}_1.0").get().exists  # no email any more


class PutDuringCopy:
    """The check's Firestore client, with an admin PUT made at the worst moment: right after the
    check has read the budget document, before it writes the copy. The PUT is given 3 s to land
    (the check's transaction holds it off until the copy is written); the copy must never be
    older than the PUT's budget afterwards."""

    def __init__(self, db, put):
        self._db, self._put, self.thread = db, put, None

    def __getattr__(self, name):
        return getattr(self._db, name)

    def get_all(self, refs, **options):
        found = list(self._db.get_all(refs, **options))
        if self.thread is None and any(ref.parent.id == "user_budgets" for ref in refs):
            self.thread = threading.Thread(target=self._put)
            self.thread.start()
            self.thread.join(timeout=3)
        return found


def test_a_put_racing_the_copy_is_never_overwritten_by_the_older_budget(db, api, admin, auth):
    now, month = datetime(2033, 7, 20, 12, 0, tzinfo=timezone.utc), "2033-07"
    user = auth.create_user("race")
    response = api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json={"monthly_budget": 10},
                           headers=at("2033-06-10T09:00:00Z"))  # June: July's month document has no copy
    assert response.status_code == 201, response.text
    store.user_month_doc(db, user.uid, month).set({"cost_nanos": 9 * USD, "user_id": user.uid, "month": month})
    answers = []

    def put() -> None:
        answers.append(api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json={"monthly_budget": 5},
                                   headers=at("2033-07-10T09:00:00Z")))

    racing = PutDuringCopy(db, put)
    first = check_budgets(racing, SETTINGS, now)
    racing.thread.join()
    assert [a.status_code for a in answers] == [200], answers[0].text
    assert f"{user.uid}_{month}_0.8" in first.alerts  # $9 of the $10 it read
    copy = month_fields(db, user.uid, month)["budget_copy"]
    assert copy["fields"]["monthly_budget_nanos"] == 5 * USD  # the PUT's, not the $10 the check read
    assert copy["updated_at"] == store.budget_doc(db, user.uid).get().to_dict()["updated_at"]
    second = check_budgets(db, SETTINGS, now)
    assert (second.budget_reads, [a for a in second.alerts if user.uid in a]) == (0, [f"{user.uid}_{month}_1.0"])


def test_without_a_default_budget_only_budget_documents_are_checked(db):
    """No default dollar budget: users without a budget document have nothing to check, so the
    run pages through user_budgets (one read each) and reads their month documents (one each)."""
    now, month = datetime(2033, 9, 20, 12, 0, tzinfo=timezone.utc), "2033-09"
    settings = Settings(mail_enabled=True, budget_check_page_size=PAGE, default_monthly_budget=None)
    uids = seed(db, {"own": 900_000_000, "dflt": 5 * USD}, month=month, no_budget=("dflt",))
    budgets = db.collection("user_budgets").count().get()[0][0].value  # other tests' budgets too
    expected_reads = reservation_reads(db, now) + paged(budgets) + budgets
    report = check_budgets(db, settings, now)
    assert [a for a in report.alerts if a.startswith("chk-") and month in a] == [f"{uids['own']}_{month}_0.8"]
    assert (report.budgets, report.default_budgets, report.reads) == (budgets, 0, expected_reads)
    assert (report.budget_reads, report.copies_written) == (0, 0)

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
    assert lines[-3].split() == ["budgets", "default", "budgets", "over", "budget", "alerts", "written", "reservations",
                                 "released", "reads", "budget", "reads", "copies", "written", "seconds"]
    assert alert_ids(db, uids["tool"]) == {f"{uids['tool']}_{MONTH}_0.8", f"{uids['tool']}_{MONTH}_1.0"}
