"""Run a scheduled function (scheduler_fn.on_schedule) once in the Functions emulator, and wait for it.

    functions/venv/bin/python scripts/trigger_schedule.py NAME [--job-name J] [--schedule-time T]

Needs a running stack (scripts/stack up / exec): uses FUNCTIONS_EMULATOR_URL (default
http://127.0.0.1:5001) and GCLOUD_PROJECT (default demo-tokenledger). Exits 0 when the function
returned 2xx, 1 otherwise (its error text is printed). Importable: `trigger(name)`.

How scheduled functions behave in the emulator (firebase-tools 15.34.2, checked by hand):
  * The emulator never fires schedules by itself. It registers each scheduled function as a
    Pub/Sub trigger on the topic `firebase-schedule-<NAME>` (no region suffix), under the trigger
    key `<region>-<NAME>-<generation>` (generation starts at 0 and grows each time the emulator
    reloads the functions after a source change).
  * Publishing to that topic does NOT run a Python (2nd gen) scheduled function: the Pub/Sub
    emulator only delivers "event"/"cloudevent" triggers and drops this one with
    "Unsupported trigger signature: http" (visible only in firebase-debug.log).
  * What works: an HTTP POST to the functions emulator's background route
        POST $FUNCTIONS_EMULATOR_URL/functions/projects/<project>/triggers/<region>-<NAME>-<gen>
    with the headers Cloud Scheduler sends (X-CloudScheduler-JobName, X-CloudScheduler-
    ScheduleTime). The emulator answers when the handler has finished: 200, or 500 with the
    exception text when it raised. `POST .../<project>/<region>/<NAME>` does not work (404: the
    trigger is registered under the key with the generation suffix). This script finds the
    current key in the emulator's own 404 listing of valid function keys.
  * Gotcha: whenever the emulator starts a new Python worker for a function it probes it with
    `GET /__/health`, and functions-framework routes every path to the function. For a
    scheduled function that runs the handler once more, with no Cloud Scheduler headers
    (event.job_name is None), just before the real call when no idle worker exists. Handlers
    must be idempotent anyway; they can also ignore events whose job_name is None when
    FUNCTIONS_EMULATOR == "true" (Cloud Scheduler always sends the job name). Likewise `api`
    receives `GET /__/health` once per new worker.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

PROBE_NAME = "__trigger_schedule_probe__"


def _request(method: str, url: str, headers: dict[str, str] | None = None, data: bytes | None = None,
             timeout: float = 30) -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def find_schedule(base: str, name: str) -> dict:
    status, body = _request("GET", f"{base}/backends")
    if status != 200:
        raise RuntimeError(f"GET {base}/backends answered {status}: is the functions emulator running?")
    triggers = [t for b in json.loads(body).get("backends", []) for t in b.get("functionTriggers", [])]
    for t in triggers:
        if name in (t.get("name"), t.get("entryPoint"), t.get("id")):
            if not t.get("schedule"):
                raise RuntimeError(f"function {name!r} is not a scheduled function")
            return t
    scheduled = sorted(t.get("name", "?") for t in triggers if t.get("schedule"))
    raise RuntimeError(f"no function {name!r} in the emulator; scheduled functions: {', '.join(scheduled) or 'none'}")


def trigger_key(base: str, project: str, trigger: dict) -> str:
    # The emulator lists every registered trigger key in its 404 for an unknown function name.
    status, body = _request("GET", f"{base}/{project}/{trigger['region']}/{PROBE_NAME}")
    m = re.search(r"valid functions are: (.*)", body)
    keys = [k.strip() for k in m.group(1).split(",")] if m else []
    gens = [(int(g.group(1)), k) for k in keys if (g := re.fullmatch(re.escape(trigger["id"]) + r"-(\d+)", k))]
    if not gens:
        raise RuntimeError(f"no emulator trigger key for {trigger['id']} (listing: {body[:300]!r})")
    return max(gens)[1]


def trigger(name: str, *, base: str | None = None, project: str | None = None, job_name: str | None = None,
            schedule_time: str | None = None, timeout: float = 600) -> tuple[int, str]:
    """Runs scheduled function `name` once; returns (HTTP status, body) when it has finished."""
    base = (base or os.environ.get("FUNCTIONS_EMULATOR_URL") or "http://127.0.0.1:5001").rstrip("/")
    project = project or os.environ.get("GCLOUD_PROJECT") or "demo-tokenledger"
    t = find_schedule(base, name)
    key = trigger_key(base, project, t)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    headers = {
        "X-CloudScheduler": "true",
        "X-CloudScheduler-JobName": job_name or f"firebase-schedule-{t['name']}-{t['region']}",
        "X-CloudScheduler-ScheduleTime": schedule_time or now.isoformat().replace("+00:00", "Z"),
        "Content-Type": "application/json",
    }
    return _request("POST", f"{base}/functions/projects/{project}/triggers/{key}", headers, b"{}", timeout)


def main() -> int:
    p = argparse.ArgumentParser(description="Run a scheduled function once in the Functions emulator.")
    p.add_argument("name", help="function name as declared in functions/main.py")
    p.add_argument("--job-name", help="X-CloudScheduler-JobName (default firebase-schedule-NAME-REGION)")
    p.add_argument("--schedule-time", help="X-CloudScheduler-ScheduleTime, RFC 3339 (default now)")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the function")
    a = p.parse_args()
    t0 = time.monotonic()
    try:
        status, body = trigger(a.name, job_name=a.job_name, schedule_time=a.schedule_time, timeout=a.timeout)
    except (RuntimeError, OSError) as e:
        print(f"trigger_schedule: {e}", file=sys.stderr)
        return 1
    ok = 200 <= status < 300
    print(f"trigger_schedule: {a.name} -> {status} in {time.monotonic() - t0:.1f}s{'' if ok else ': ' + body.strip()[:2000]}",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
