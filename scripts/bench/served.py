"""Serving the `api` function for the bench the way Cloud Run does: functions-framework (gunicorn,
one worker, THREADS threads) in its own process, next to the emulators of the stack."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / ".cache" / "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"the served api did not answer at {base}; see {LOGS}")


@contextlib.contextmanager
def served_api(counting: bool = False, name: str = "api", functions_dir: Path | None = None, **env: str):
    """Yields the base URL of `api` served by functions-framework; with counting, the server
    also counts its Firestore operations (GET /_bench/ops, POST /_bench/reset). `functions_dir`
    serves another checkout's functions/ (a baseline to compare with)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if counting:
        cmd = [sys.executable, "-m", "scripts.bench.serve", str(port)]
        cwd = ROOT
    else:
        cmd = [sys.executable, "-m", "functions_framework", "--target", "api", "--source", "main.py", "--port", str(port)]
        cwd = functions_dir or ROOT / "functions"
    with open(LOGS / f"{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
