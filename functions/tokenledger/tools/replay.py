"""Re-record usage that the API could not commit (logged as `usage_not_recorded`) or that the
outbox gave up on (logged as `ledger_dead_letter`, see metering/heal.py).

Reads structured log output — the function's own JSON lines, the emulator's console, or a
`gcloud logging read --format=json` export — from files or stdin, and records each entry's
usage once: a call that is already in the ledger is left as it is, so running it twice is safe.

    gcloud logging read 'jsonPayload.message="usage_not_recorded"' --format=json > lost.json
    python -m tokenledger.tools.replay lost.json
    python -m tokenledger.tools.replay --dead-letters   # the `ledger_dead_letter` admin alerts

Configuration and Firestore as every tool (tokenledger/tools/common.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tokenledger import logs
from tokenledger.metering import ledger
from tokenledger.metering.usage import UsageRecord
from tokenledger.tools import common

EVENTS = (logs.USAGE_NOT_RECORDED, logs.LEDGER_DEAD_LETTER)


def _entries(value):
    """Yield log entries (dicts) from one parsed JSON value: an entry, an export list, ..."""
    if isinstance(value, list):
        for item in value:
            yield from _entries(item)
    elif isinstance(value, dict):
        yield value.get("jsonPayload", value)


def entries_from_text(text: str):
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            yield from _entries(json.loads(stripped))
            return
        except ValueError:
            pass
    for line in text.splitlines():
        start = line.find("{")  # the emulator prefixes function output with ">  "
        if start < 0:
            continue
        try:
            yield from _entries(json.loads(line[start:]))
        except ValueError:
            continue


def unrecorded(entries):
    for entry in entries:
        if entry.get("message") in EVENTS and isinstance(entry.get("record"), dict):
            yield entry["record"]


def dead_letters(db):
    """The records of the `ledger_dead_letter` admin alerts (metering/heal.py)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from tokenledger.metering import heal

    query = db.collection(heal.ADMIN_ALERTS).where(filter=FieldFilter("alert_type", "==", heal.DEAD_LETTER_ALERT))
    for snap in query.stream():
        text = snap.get("record_json")
        if text:
            yield json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="log files (default: stdin)")
    parser.add_argument("--dead-letters", action="store_true", help="replay the ledger_dead_letter admin alerts")
    common.add_project_arg(parser)
    args = parser.parse_args(argv)
    db = common.firestore_client(args.project) if args.dead_letters else None
    if args.dead_letters:
        records = list(dead_letters(db))
    else:
        text = "\n".join(Path(f).read_text() for f in args.files) if args.files else sys.stdin.read()
        records = list(unrecorded(entries_from_text(text)))
    if not records:
        print("no usage_not_recorded or ledger_dead_letter entries found")
        return 0
    db, settings = db or common.firestore_client(args.project), common.settings()
    counts = {"recorded": 0, "already_recorded": 0, "invalid": 0, "failed": 0}
    for index, data in enumerate(records, 1):
        try:
            record = UsageRecord.from_log(data)
        except (KeyError, TypeError, ValueError) as exc:
            counts["invalid"] += 1
            print(f"[{index}/{len(records)}] skipped an unreadable entry: {exc}", file=sys.stderr)
            continue
        try:
            outcome = ledger.record_usage(db, record, settings, replay=True)
        except ledger.RecordingFailed as exc:
            counts["failed"] += 1
            print(f"[{index}/{len(records)}] {record.generation_id}: still failing: {exc.cause!r}", file=sys.stderr)
            continue
        counts[outcome.status] += 1
        print(f"[{index}/{len(records)}] {record.generation_id}  user {record.user_id}  {outcome.status}")
    width = max(len(k) for k in counts)
    print()
    for name, count in counts.items():
        print(f"{name.replace('_', ' '):<{width}}  {count:>6}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
