"""`python -m scripts.bench.serve PORT`: functions/main.py's `api` under functions-framework's
gunicorn server (as Cloud Run serves it), with the Firestore operations of the process counted
(opcount.py) and bench-only routes: GET /_bench/ops (counts, memory), POST /_bench/reset, POST
/_bench/trips (the round trips timed since the last ask: roundtrips.py).

Bench only: the deployed function is served by functions-framework itself, without any of this.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.bench import opcount, roundtrips  # noqa: E402


def memory_kb() -> dict:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


def main(port: int) -> None:
    opcount.install()
    import functions_framework
    from flask import jsonify
    from functions_framework import _http

    os.chdir(ROOT / "functions")
    app = functions_framework.create_app(target="api", source=str(ROOT / "functions" / "main.py"))
    roundtrips.install()

    def ops():
        since = float(os.environ.get("BENCH_SINCE", "0"))
        path, count = opcount.OPS.hottest(since)
        return jsonify({**opcount.OPS.snapshot(), "hottest": path, "hottest_writes": count, **memory_kb(),
                        "now": time.monotonic()})

    def reset():
        opcount.OPS.reset()
        return jsonify({"ok": True})

    def doc_writes():
        with opcount._lock:
            return jsonify([[t, p] for t, p in opcount.OPS.doc_writes])

    def trips():
        return jsonify([[t.kind, t.start, t.end, t.background] for t in roundtrips.take()])

    app.add_url_rule("/_bench/trips", "bench_trips", trips, methods=["POST"])
    app.add_url_rule("/_bench/ops", "bench_ops", ops, methods=["GET"])
    app.add_url_rule("/_bench/reset", "bench_reset", reset, methods=["POST"])
    app.add_url_rule("/_bench/doc_writes", "bench_doc_writes", doc_writes, methods=["GET"])
    _http.create_server(app, False).run("127.0.0.1", port)


if __name__ == "__main__":
    main(int(sys.argv[1]))
