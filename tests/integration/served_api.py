"""The `api` function served by functions-framework (gunicorn, as on Cloud Run) next to the
emulator suite, for behaviour that depends on the HTTP server itself (a client hanging up)."""
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served_api(log_path: Path, **env_overrides: str):
    """Yields the base URL of a functions-framework server running functions/main.py:api."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_overrides}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "api", "--source", "main.py", "--port", str(port)],
            cwd=ROOT / "functions", env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
