"""The `api` function served by functions-framework (gunicorn, as Cloud Run serves it) in a
process of its own, next to the stack's emulators: for tests of behaviour that depends on the
HTTP server itself (a client hanging up, settings other than the stack's) and for benches."""
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
FUNCTIONS_FRAMEWORK = [sys.executable, "-m", "functions_framework", "--target", "api", "--source", "main.py"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str, log_path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"the served api did not answer at {base} within {seconds:.0f} s; see {log_path}")


@contextlib.contextmanager
def serve(log_path: Path, cmd: list[str] | None = None, cwd: Path | None = None, **env: str):
    """Yields the base URL of the server; `cmd` (given the port as its last argument) and `cwd`
    default to functions-framework serving functions/main.py:api."""
    port = free_port()
    argv = [*cmd, str(port)] if cmd else [*FUNCTIONS_FRAMEWORK, "--port", str(port)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=cwd or ROOT / "functions",
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, log_path)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
