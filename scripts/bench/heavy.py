"""A heavy user: one user at 20 calls/s for 60 s through one served instance. Prints the write
rate of the hottest Firestore document (Firestore sustains about one write per second per
document), checks that the user's month read back (in O(shards) documents) equals the sum of
the rows to the nano-dollar."""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from scripts.bench.served import OpsProbe, served_api
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table
from tokenledger import store
from tokenledger.budgets import reservations

RATE = 20  # calls per second
SECONDS = int(os.environ.get("BENCH_HEAVY_S", "60"))
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "heavy"}], "max_tokens": 16}


def run(stack) -> None:
    print(f"\n== A heavy user: {RATE} calls/s for {SECONDS} s (issue 11) ==")
    user = AuthEmulator(stack.auth_host, stack.project).create_user("bench-heavy")
    db = firestore.Client(project=stack.project)
    local = threading.local()
    failures = Counter()
    with served_api(counting=True, name="heavy-api") as base:
        probe = OpsProbe(base)
        url = f"{base}/v1/chat/completions"

        def one(_: int) -> None:
            session = getattr(local, "s", None) or requests.Session()
            local.s = session
            r = session.post(url, json=BODY, headers=user.headers, timeout=60)
            if r.status_code != 200:
                failures[r.status_code] += 1

        one(0)
        probe.reset()
        total = RATE * SECONDS
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            futures = []
            for i in range(total):
                delay = started + i / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(one, i))
                if (i + 1) % (RATE * 15) == 0:
                    print(f"    {i + 1}/{total} calls sent", flush=True)
            for future in futures:
                future.result()
        elapsed = time.monotonic() - started
        writes = probe.doc_writes()
    per_doc = Counter(path for _, path in writes)
    hottest = per_doc.most_common(3)
    user_docs = {p: n for p, n in per_doc.items() if p.startswith(f"user_usage/{user.uid}/")}
    base_month = per_doc.get(f"user_usage/{user.uid}/months/{time.strftime('%Y-%m', time.gmtime())}", 0)
    totals = [n for p, n in per_doc.items() if p.startswith("usage_totals/")]

    snaps = list(db.collection("usage_tracking").where(filter=FieldFilter("user_id", "==", user.uid)).stream())
    rows_nanos = sum(int(s.to_dict().get("cost_nanos") or 0) for s in snaps)
    month = snaps[0].to_dict()["month"] if snaps else time.strftime("%Y-%m")
    existing = len(list(store.user_month_docs(db, user.uid, month).select(["month"]).stream()))
    month_read = reservations.read_month(db, user.uid, month)
    print_table(
        ["measure", "value"],
        [["calls answered 200 / sent", f"{total + 1 - sum(failures.values())} / {total + 1}"
          + (f" (failures {dict(failures)})" if failures else "")],
         ["achieved rate", f"{total / elapsed:.1f} calls/s"],
         *[[f"hottest document #{i + 1}", f"{path}: {n / elapsed:.2f} writes/s"] for i, (path, n) in enumerate(hottest)],
         ["the user's base month document", f"{base_month / elapsed:.2f} writes/s"],
         ["hottest global totals shard", f"{max(totals, default=0) / elapsed:.2f} writes/s"],
         ["user rollup documents written (month + day)", f"{len(user_docs)}"],
         ["documents of the user's month (what reading it costs)", f"{existing} of {store.USER_SHARDS} possible"],
         ["rows' cost_nanos vs month read back", f"{rows_nanos} vs {month_read.cost_nanos}: "
          + ("exact" if rows_nanos == month_read.cost_nanos else "MISMATCH")]],
        title="Heavy user (target: hottest document <= 1 write/s on average)",
        numparse=False,
    )
