"""Waiting for the parts of the stack to answer, and the OpenRouter stand-in's start."""
from __future__ import annotations

import http.client
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from stackkit.base import FATAL_LOG_RE, LOG_DIR, ROOT, VENV_PY, StackError
from stackkit.procs import Procs


def http_get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(4096).decode(errors="replace")


def wait_until(what: str, probe, deadline: float, procs: list[tuple[str, subprocess.Popen, Path]], refresh=None):
    """Calls probe() until it returns something truthy; fails early if a process dies or the log
    shows a fatal error."""
    while True:
        for name, p, log in procs:
            if p.poll() is not None:
                raise StackError(f"{name} exited (code {p.returncode}) while waiting for {what}", (log,))
            m = FATAL_LOG_RE.search(log.read_text(errors="replace")) if log.exists() else None
            if m:
                raise StackError(f"{name} reported an error while waiting for {what}: {m.group(0)!r}", (log,))
        if refresh:
            refresh()
        try:
            result = probe()
        except (OSError, ValueError, http.client.HTTPException):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"timed out waiting for {what}", tuple(log for _, _, log in procs))
        time.sleep(0.25)


def start_standin(procs: Procs, deadline: float) -> tuple[str, str, str]:
    script = ROOT / "scripts" / "openrouter_standin.py"
    if not script.exists():
        raise StackError(f"{script.relative_to(ROOT)} not found (or set OPENROUTER_BASE_URL to use a real OpenRouter)")
    key = "sk-or-v1-standin-" + secrets.token_hex(16)
    log = LOG_DIR / "standin.log"
    p = procs.start("openrouter stand-in",
                    [VENV_PY, "-u", script, "--host", "127.0.0.1", "--port", "0", "--key", key],
                    log, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ready():
        m = re.search(r"^READY (\S+)", log.read_text(errors="replace"), re.M)
        return m.group(1) if m else None

    base = wait_until("the OpenRouter stand-in", ready, min(deadline, time.monotonic() + 60),
                      [("openrouter stand-in", p, log)])
    parts = urlsplit(base)
    return base, key, f"{parts.scheme}://{parts.netloc}"
