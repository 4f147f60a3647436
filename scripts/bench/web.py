"""Issue 10: first paint of "My usage" in Debian's chromium, for a user with a month of 10
calls and one with 10,000. The page reads rollups (one month document + one per day with calls),
never the rows, so both should paint alike and well under a second on the local stack.

Each sample opens the page in a fresh tab of a signed-in browser and reads the time from
navigation start to the app's `usage-painted` mark (set two animation frames after the numbers
and the budget gauge are in the DOM, i.e. once they are painted) and to `usage-chart` (the daily
chart drawn: Chart.js loads beside the numbers, not before them). Data is seeded with the ledger's own writes into a
month nothing else uses.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from google.cloud import firestore
from playwright.sync_api import sync_playwright

from scripts.bench.analytics import unused_months
from scripts.bench.common import summary
from scripts.devkit import browser, workload
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table

SAMPLES = 7
TARGET_MS = 1000
MODELS = list(workload.MODELS)
FEATURES = ["writer", "chat", "search", None]


def month_of_calls(uid: str, month: str, count: int) -> list:
    first = datetime.fromisoformat(f"{month}-01T00:00:00+00:00")
    days = ((first + timedelta(days=32)).replace(day=1) - first).days
    return [workload.record(uid, MODELS[i % len(MODELS)], first + timedelta(days=i % days, seconds=53 * i % 86_000),
                            prompt=300 + (i * 7) % 1500, completion=40 + (i * 13) % 500,
                            feature=FEATURES[i % len(FEATURES)]) for i in range(count)]


def first_paints(chromium, app_url: str, user, month: str, calls: int) -> tuple[list[float], list[float], int]:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        browser.sign_in(page, app_url, user, f"#/usage/{month}")  # the session persists in IndexedDB
        page.locator("#main[data-ready]").wait_for()
        page.close()
        samples, charts, documents = [], [], 0
        for _ in range(SAMPLES + 1):  # the first load warms the emulators' caches: not counted
            tab = context.new_page()
            tab.goto(f"{app_url}/#/usage/{month}")
            tab.wait_for_function("performance.getEntriesByName('usage-painted').length > 0"
                                  " && performance.getEntriesByName('usage-chart').length > 0", timeout=60_000)
            shown = tab.text_content("#total-calls")
            assert shown == f"{calls:,}", f"the page shows {shown} calls, expected {calls:,}"
            samples.append(tab.evaluate("performance.getEntriesByName('usage-painted')[0].startTime"))
            charts.append(tab.evaluate("performance.getEntriesByName('usage-chart')[0].startTime"))
            documents = int(tab.get_attribute("#main", "data-documents"))
            tab.close()
        return samples[1:], charts[1:], documents
    finally:
        context.close()


def run(stack) -> None:
    print("\n== web: first paint of My usage (issue 10) ==", flush=True)
    app_url = os.environ.get("APP_URL")
    if not app_url:
        print("  APP_URL is not set (the stack's Hosting emulator): skipped")
        return
    db = firestore.Client(project=stack.project)
    auth = AuthEmulator(stack.auth_host, stack.project)
    month = unused_months(db, 1)[0]
    small, large = auth.create_user("paint-small"), auth.create_user("paint-large")
    print(f"  seeding {month}: 10 calls for one user, 10,000 for another", flush=True)
    workload.seed(db, month_of_calls(small.uid, month, 10))
    workload.seed(db, month_of_calls(large.uid, month, 10_000), label="10,000-call user")
    rows = []
    with sync_playwright() as p:
        chromium = browser.launch(p)
        try:
            results = {n: first_paints(chromium, app_url, u, month, n) for n, u in ((10, small), (10_000, large))}
        finally:
            chromium.close()
    for calls, (samples, charts, documents) in results.items():
        p50, _, _ = summary(samples)
        rows.append([f"{calls:,}", documents, f"{p50:.0f} ms", f"{max(samples):.0f} ms",
                     "yes" if max(samples) < TARGET_MS else "NO", f"{summary(charts)[0]:.0f} ms"])
    ratio = summary(results[10_000][0])[0] / summary(results[10][0])[0]
    print_table(["calls in the month", "documents read", "first paint p50", "max", f"< {TARGET_MS} ms",
                 "chart drawn p50"], rows,
                title=f"My usage, navigation start to numbers painted ({SAMPLES} loads each; 10,000/10 p50 ratio {ratio:.2f})")
    load = os.getloadavg()
    print(f"  (load average while measuring: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores)")
