"""Freezing an emulator as an outage does: SIGSTOP the process listening on its port, SIGCONT
after. Connections stay open and requests queue unanswered, as with a Firestore that stalls
(a refused connection would be a different, easier failure)."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def pid_listening_on(port: int) -> int:
    """The process that listens on `port` (this user's processes only)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        raise LookupError(f"nothing listens on port {port}")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(proc.name)
        except OSError:
            continue
    raise LookupError(f"no process of ours listens on port {port}")


@contextlib.contextmanager
def frozen(pid: int):
    """The process stopped for the block's duration; always continued after."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def freeze_for(pid: int, seconds: float) -> float:
    """Stop the process for `seconds`; returns the monotonic time it was thawed."""
    with frozen(pid):
        time.sleep(seconds)
    return time.monotonic()
