"""Serving the `api` function for the bench the way Cloud Run does: functions-framework (gunicorn,
one worker, THREADS threads) in its own process, next to the emulators of the stack."""
from __future__ import annotations

import sys
from pathlib import Path

import requests

from scripts.devkit.served import ROOT, free_port, serve

__all__ = ["LOGS", "OpsProbe", "free_port", "served_api", "served_bare_proxy"]
LOGS = ROOT / ".cache" / "bench"


def served_api(counting: bool = False, name: str = "api", functions_dir: Path | None = None, **env: str):
    """Yields the base URL of `api` served by functions-framework; with counting, the server
    also counts its Firestore operations (GET /_bench/ops, POST /_bench/reset). `functions_dir`
    serves another checkout's functions/ (a baseline to compare with)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    if counting:
        return serve(LOGS / f"{name}.log", cmd=[sys.executable, "-m", "scripts.bench.serve"], cwd=ROOT, **env)
    return serve(LOGS / f"{name}.log", cwd=functions_dir, **env)


BARE_PROXY = ROOT / "scripts" / "bench" / "bare_proxy"


def served_bare_proxy(name: str = "bare-proxy"):
    """Yields the URL of scripts/bench/bare_proxy (a do-nothing proxy to the stand-in) served by
    functions-framework like `api`: the floor any served proxy adds."""
    LOGS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "functions_framework", "--target", "proxy", "--source", "main.py", "--port"]
    return serve(LOGS / f"{name}.log", cmd=cmd, cwd=BARE_PROXY)


class OpsProbe:
    """Reads and resets the counting server's Firestore operation counts."""

    def __init__(self, base: str, session: requests.Session | None = None):
        self.base = base
        self.http = session or requests.Session()

    def reset(self) -> None:
        self.http.post(f"{self.base}/_bench/reset", timeout=10).raise_for_status()

    def read(self) -> dict:
        return self.http.get(f"{self.base}/_bench/ops", timeout=10).json()

    def doc_writes(self) -> list:
        return self.http.get(f"{self.base}/_bench/doc_writes", timeout=30).json()
