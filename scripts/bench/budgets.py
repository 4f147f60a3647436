"""Issue 3 and 11 numbers: the budget check over 10,000 budgets (reads, seconds: the first run
of a month, which copies each budget onto its month document, and the steady state, one read per
month document) and the latency an enforced budget adds to a chat call (reserve + read back +
settle) over an unenforced one."""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

from google.cloud import firestore

from scripts.bench.common import summary
from scripts.devkit.api_client import ApiClient
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table
from tokenledger import store
from tokenledger.budgets.check import check_budgets
from tokenledger.config import Settings

BUDGETS = 10_000
MONTH_NOW = datetime(2041, 3, 15, 12, 0, tzinfo=timezone.utc)  # a month no other run touches
MONTH = MONTH_NOW.strftime("%Y-%m")


def day_costs(i: int, cost: int) -> dict:
    """The month's spend spread evenly over the 1st..15th (MONTH_NOW is the 15th), so the users at
    85% are on course to pass their budget (forecasts); every 25th user spent a tenth of the same
    total on each of the 1st..14th and the rest today (a spike)."""
    if i % 25 == 0:
        return {f"{d:02d}": cost // 40 for d in range(1, 15)} | {"15": cost - 14 * (cost // 40)}
    return {f"{d:02d}": cost // 15 for d in range(1, 16)}


def seed(db, count: int) -> str:
    """`count` users with a $10 budget and a month rollup; every 10th at 85%, every 20th over."""
    tag = uuid.uuid4().hex[:6]

    def chunk(start: int) -> None:
        batch = db.batch()
        for i in range(start, min(start + 250, count)):
            uid = f"bench-{tag}-{i:05d}"
            cost = 10_500_000_000 if i % 20 == 0 else 8_500_000_000 if i % 10 == 0 else 2_000_000_000
            batch.set(store.budget_doc(db, uid), {"monthly_budget": 10.0, "monthly_budget_nanos": 10_000_000_000,
                                                 "alert_thresholds": [0.8, 1.0], "enforce": False})
            batch.set(store.user_month_doc(db, uid, MONTH), {"cost_nanos": cost, "user_id": uid, "month": MONTH,
                                                              "day_costs": day_costs(i, cost)})
        batch.commit()

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for done, _ in enumerate(pool.map(chunk, range(0, count, 250)), 1):
            if done % 10 == 0:
                print(f"    seeded {done * 250:,}/{count:,} budgets", flush=True)
    print(f"    seeded {count:,} budgets in {time.monotonic() - started:.1f}s", flush=True)
    return tag


def bench_check(db) -> list:
    seed(db, BUDGETS)
    # Default $1 budget: the months scan; forecasts and spikes on (their defaults), the app's own
    # budget set so its counters are read too.
    out_of_the_box = replace(Settings(), budget_check_page_size=500, app_monthly_budget=Decimal("100000"))
    runs = [
        ("first run of the month (reads the budgets, writes the copies and alerts)", out_of_the_box),
        ("steady state (every later run of the month)", out_of_the_box),
        ("no default budget: pages through user_budgets", replace(out_of_the_box, default_monthly_budget=None)),
    ]
    rows = []
    for label, settings in runs:
        report = check_budgets(db, settings, MONTH_NOW, lambda n: n % 2500 == 0 and print(f"    checked {n:,}", flush=True))
        users = report.budgets + report.default_budgets
        rows.append([label, f"{users:,}", f"{report.reads:,}", f"{report.reads / max(users, 1):.4f}",
                     f"{report.budget_reads:,}", f"{report.copies_written:,}", f"{report.alerts_written:,}",
                     f"{report.trend_alerts:,}", f"{report.app_spend_reads:,}", f"{report.seconds:.1f}"])
    return rows


def bench_enforced_latency(stack, calls: int = 60) -> list:
    auth = AuthEmulator(stack.auth_host, stack.project)
    api = ApiClient(stack.api_url)
    admin = auth.create_user("bench-admin", admin=True)
    users = {
        "no budget": auth.create_user("bench-free"),
        "budget, not enforced": auth.create_user("bench-soft"),
        "budget, enforced": auth.create_user("bench-hard"),
    }
    api.request("PUT", f"/v1/admin/budgets/{users['budget, not enforced'].uid}", admin, json={"monthly_budget": 1000})
    api.request("PUT", f"/v1/admin/budgets/{users['budget, enforced'].uid}", admin,
                json={"monthly_budget": 1000, "enforce": True})
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "benchmark"}], "max_tokens": 16}
    samples = {name: [] for name in users}
    for user in users.values():
        api.request("POST", "/v1/chat/completions", user, json=body).raise_for_status()  # warm
    for i in range(calls):  # interleaved so that drift in the machine's load hits all alike
        for name, user in users.items():
            started = time.perf_counter()
            api.request("POST", "/v1/chat/completions", user, json=body).raise_for_status()
            samples[name].append((time.perf_counter() - started) * 1000)
        if (i + 1) % 20 == 0:
            print(f"    chats: {i + 1}/{calls} per user", flush=True)
    base50, base95, _ = summary(samples["no budget"])
    rows = []
    for name, values in samples.items():
        p50, p95, _ = summary(values)
        rows.append([name, f"{p50:.1f}", f"{p95:.1f}", f"{p50 - base50:+.1f}", f"{p95 - base95:+.1f}"])
    return rows


def run(stack) -> None:
    db = firestore.Client(project=stack.project)
    print("\n== Budgets (issue 3) ==")
    print_table(
        ["budget check", "budgets", "reads", "reads/budget", "of which budget docs", "copies written",
         "alerts written", "of which forecasts + spikes", "app spend reads", "seconds"],
        bench_check(db),
        title=f"Scheduled budget check over {BUDGETS:,} budgets, each active this month (Firestore emulator, one "
              "process; reads include the expired-reservations query; forecasts and spikes on, computed from the same "
              "month documents)",
        numparse=False,
    )
    print_table(
        ["user", "p50 ms", "p95 ms", "added p50", "added p95"],
        bench_enforced_latency(stack),
        title="Chat latency through the API by budget kind (sequential calls; added = over 'no budget')",
        numparse=False,
    )
