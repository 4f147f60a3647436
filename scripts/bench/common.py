"""Timing helpers shared by the benchmark sections."""
from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed_calls(fn, count: int, concurrency: int, label: str = "") -> list[float]:
    """Run fn(i) count times on `concurrency` threads; return each call's latency in ms."""
    latencies: list[float] = []

    def one(i: int) -> float:
        started = time.perf_counter()
        fn(i)
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for done, latency in enumerate(pool.map(one, range(count)), 1):
            latencies.append(latency)
            if label and (done % max(count // 4, 1) == 0 or done == count):
                print(f"    {label}: {done}/{count}", flush=True)
    return latencies


def summary(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), percentile(samples, 95), statistics.mean(samples)
