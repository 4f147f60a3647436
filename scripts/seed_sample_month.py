"""Fill one month of the EMULATOR with a believable app's usage, to try the report on:

    scripts/stack exec -- sh -c 'functions/venv/bin/python -m scripts.seed_sample_month --month 2026-10 &&
        functions/venv/bin/python -m tokenledger.tools.report --month 2026-10 --plot docs/report-chart.png'

A dozen users with different habits (a heavy Sonnet writer, free-tier chatters, a search
feature, ...), weekdays busier than weekends, written with the ledger's own writes.
Refuses to run against anything but the emulator.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from datetime import datetime, timedelta, timezone

from google.cloud import firestore

from scripts.devkit import workload
from tokenledger.analytics import figures

# name: (calls per weekday, {model: weight}, features)
HABITS = {
    "ana-writer": (40, {"anthropic/claude-sonnet-4": 5, "openai/gpt-4o-mini": 1}, ["writer"]),
    "ben-support": (60, {"openai/gpt-4o-mini": 4, "google/gemini-2.5-flash": 2}, ["support"]),
    "chen-research": (12, {"anthropic/claude-sonnet-4": 2, "google/gemini-2.5-flash": 3}, ["search", "summary"]),
    "dara-free": (50, {"meta-llama/llama-3.3-70b-instruct:free": 1}, ["chat"]),
    "eli-mixed": (25, {"openai/gpt-4o-mini": 2, "meta-llama/llama-3.3-70b-instruct:free": 3}, ["chat", "translate"]),
    "fay-analyst": (8, {"anthropic/claude-sonnet-4": 1}, ["summary"]),
    "gus-student": (30, {"meta-llama/llama-3.3-70b-instruct:free": 4, "google/gemini-2.5-flash": 1}, ["tutor"]),
    "hana-ops": (15, {"google/gemini-2.5-flash": 1}, ["support", None]),
    "ivo-dev": (20, {"openai/gpt-4o-mini": 3, "anthropic/claude-sonnet-4": 1}, ["code"]),
    "jun-sales": (6, {"openai/gpt-4o-mini": 1}, ["writer"]),
    "kim-trial": (3, {"meta-llama/llama-3.3-70b-instruct:free": 1}, ["chat"]),
    "lea-legal": (5, {"anthropic/claude-sonnet-4": 1}, ["summary"]),
}


def month_records(month: str, seed: int) -> list:
    rng = random.Random(seed)
    first, last = figures.month_bounds(month)
    records = []
    for day in figures.DateRange(first, last).each_day():
        start = datetime.fromisoformat(f"{day}T00:00:00+00:00")
        weekend = start.weekday() >= 5
        for name, (per_day, models, features) in HABITS.items():
            calls = rng.randint(0, per_day // (4 if weekend else 1))
            for _ in range(calls):
                model = rng.choices(list(models), weights=list(models.values()))[0]
                prompt = rng.randint(200, 6000)
                records.append(
                    workload.record(
                        name,
                        model,
                        start + timedelta(seconds=rng.randint(8 * 3600, 22 * 3600)),
                        prompt=prompt,
                        completion=rng.randint(40, 1500),
                        cached=rng.choice([0, 0, prompt // 2]),
                        feature=rng.choice(features),
                        latency_ms=rng.randint(300, 6000),
                    )
                )
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    last_month = (datetime.now(timezone.utc).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    parser.add_argument("--month", default=last_month, help="YYYY-MM (default: last month)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        sys.exit("FIRESTORE_EMULATOR_HOST is not set: this script only writes to the emulator")
    figures.parse_month(args.month)
    db = firestore.Client(project=os.environ.get("GCLOUD_PROJECT", "demo-tokenledger"))
    records = month_records(args.month, args.seed)
    print(f"seeding {len(records):,} calls for {len(HABITS)} users in {args.month}")
    seconds = workload.seed(db, records, label="sample month")
    print(f"done in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
