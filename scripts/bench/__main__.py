"""`python -m scripts.bench [section ...]`: run inside the stack (make bench; make bench ARGS="latency heavy").

Sections, in the order a full run takes them (about 12 minutes on 2 cores, plus a few minutes the
first time the peer comparison installs LiteLLM into .cache/):
  metering    commits per tracked call, CPU to build a record
  latency     added latency (p50/p95, warm and cold users) vs the stand-in and one Firestore commit;
              the LiteLLM peer ratios
  ops         Firestore reads/writes/deletes per call by kind of user, cost per 1,000 calls; round trips
              before OpenRouter per call kind and how many were waited for one after another
  streaming   time to first chunk and to [DONE], vs the stand-in directly
  coldstart   import time of main.py, process start to first answer
  throughput  one instance at concurrency 32: calls/s, p50/p99, memory
  heavy       one user at 20 calls/s for 60 s: hottest document's writes/s, exact rollups
  analytics   summaries at 10 vs 10,000 calls, top users at 10 vs 5,000 users
  budgets     the scheduled check over 10,000 budgets, latency by budget kind
  policy      the request policy's worst case vs what is charged, per request shape (no stack)
  fold        a hot user's shards folded back into the base: reads and writes per burst (issue 22)
  outage      Firestore frozen 6 s and 30 s under 400 calls: billed calls in the ledger, outbox off vs on
Env knobs for quicker runs: BENCH_LATENCY_N (200), BENCH_HEAVY_S (60), BENCH_THROUGHPUT_CALLS (640).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "functions", ROOT):
    sys.path.insert(0, str(path))

from scripts.bench import (  # noqa: E402
    analytics,
    budgets,
    coldstart,
    firestore_ops,
    fold,
    heavy,
    hotpath,
    latency,
    metering,
    outage,
    policy,
    streaming,
    throughput,
    web,
)
from scripts.devkit import env as stack_env  # noqa: E402

SECTIONS = {
    "metering": metering.run,
    "latency": latency.run,
    "ops": firestore_ops.run,
    "streaming": streaming.run,
    "coldstart": coldstart.run,
    "throughput": throughput.run,
    "heavy": heavy.run,
    "analytics": analytics.run,
    "budgets": budgets.run,
    "policy": policy.run,
    "hotpath": hotpath.run,
    "web": web.run,
    "fold": fold.run,
    "outage": outage.run,
}
IN_PROCESS = {"policy"}  # sections that need no stack


def main(argv: list[str]) -> int:
    chosen = argv or list(SECTIONS)
    stack = None if set(chosen) <= IN_PROCESS else stack_env.from_environ(require_standin=True)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
        return 2
    started = time.monotonic()
    for name in chosen:
        section_started = time.monotonic()
        SECTIONS[name](stack)
        print(f"  ({name}: {time.monotonic() - section_started:.0f} s)", flush=True)
    print(f"\nbench done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
