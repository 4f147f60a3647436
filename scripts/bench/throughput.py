"""One instance's throughput at concurrency 32: calls/s, p50/p99 and memory, for the gunicorn
thread counts a deployment can choose (functions-framework reads THREADS; its default is 4 per
CPU). The numbers behind the serving settings in main.py and README."""
from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from scripts.bench.common import percentile
from scripts.bench.served import OpsProbe, served_api
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table

CONCURRENCY = 32
CALLS = int(os.environ.get("BENCH_THROUGHPUT_CALLS", "640"))
THREADS = (4, 40)  # functions-framework's default on one vCPU; TOKENLEDGER_API_CONCURRENCY
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "throughput"}], "max_tokens": 16}


def load(base: str, users: list) -> tuple[float, list[float]]:
    local = threading.local()
    url = f"{base}/v1/chat/completions"

    def one(i: int) -> float:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        started = time.perf_counter()
        r = session.post(url, json=BODY, headers=users[i % len(users)].headers, timeout=120)
        r.raise_for_status()
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, range(CONCURRENCY)))  # warm: every connection and server thread
        started = time.perf_counter()
        latencies = list(pool.map(one, range(CALLS)))
        seconds = time.perf_counter() - started
    return CALLS / seconds, latencies


def run(stack) -> None:
    print("\n== Throughput of one instance (issue 11) ==")
    auth = AuthEmulator(stack.auth_host, stack.project)
    users = [auth.create_user(f"bench-tput{i}") for i in range(64)]
    rows = []
    for threads in THREADS:
        with served_api(counting=True, name=f"throughput-{threads}", THREADS=str(threads)) as base:
            probe = OpsProbe(base)
            rate, latencies = load(base, users)
            mem = probe.read()
        rows.append([threads, CONCURRENCY, f"{rate:.0f}", f"{statistics.median(latencies):.1f}",
                     f"{percentile(latencies, 99):.1f}", f"{mem['VmRSS'] / 1024:.0f}", f"{mem['VmHWM'] / 1024:.0f}"])
        print(f"    THREADS={threads}: done", flush=True)
    print_table(
        ["server threads", "client concurrency", "calls/s", "p50 ms", "p99 ms", "RSS MiB", "peak RSS MiB"],
        rows,
        title=f"{CALLS} chat calls at concurrency {CONCURRENCY} against one functions-framework process "
              f"({os.cpu_count()} CPUs shared with the emulators and the stand-in)",
        numparse=False,
    )
