"""The processes the stack starts, how they are stopped, and the command it runs."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from stackkit.base import StackError


def proc_table() -> dict[int, tuple[int, int, int, str]]:
    """pid -> (ppid, session id, start time, state) for every process, from /proc (Linux)."""
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for d in entries:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            table[int(d)] = (int(fields[1]), int(fields[3]), int(fields[19]), fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return table


class Procs:
    """Background processes, each started as the leader of a new session, and every process they
    start. firebase-tools runs the Java emulators detached (in sessions of their own) and its
    Python workers survive SIGINT/SIGTERM, so the tree is recorded while it runs (refresh) and
    whatever of it is left after a graceful stop is killed by pid (checked by start time)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, subprocess.Popen]] = []
        self.known: dict[int, int] = {}  # pid -> start time

    def start(self, name: str, cmd: list[str], log: Path, **kw) -> subprocess.Popen:
        with open(log, "wb") as out:
            p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self.items.append((name, p))
        self.refresh()
        return p

    def refresh(self) -> None:
        table = proc_table()
        roots = {p.pid for _, p in self.items}
        children: dict[int, list[int]] = {}
        for pid, (ppid, sid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo = [pid for pid in table if pid in roots or table[pid][1] in roots]
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid not in seen and pid in table:
                seen.add(pid)
                self.known[pid] = table[pid][2]
                todo.extend(children.get(pid, ()))

    def alive(self) -> list[int]:
        table = proc_table()
        return [pid for pid, start in self.known.items()
                if pid in table and table[pid][2] == start and table[pid][3] != "Z"]

    def _signal(self, sig: int, pids: list[int]) -> None:
        for _, p in self.items:
            if p.returncode is None:
                try:
                    os.killpg(p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def stop_all(self, grace: float = 20.0) -> None:
        # Ask politely: firebase-tools stops its emulators on SIGINT (the process group gets it;
        # the detached Java emulators are stopped by firebase-tools itself).
        self.refresh()
        for _, p in reversed(self.items):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGINT)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.poll() is None for _, p in self.items):
            self.refresh()
            time.sleep(0.2)
        # Then insist, on everything of the tree that is still there.
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            left = self.alive()
            if not left and all(p.poll() is not None for _, p in self.items):
                break
            self._signal(sig, left)
            end = time.monotonic() + wait
            while time.monotonic() < end and (self.alive() or any(p.poll() is None for _, p in self.items)):
                time.sleep(0.1)



def run_cmd(cmd: list[str], env: dict[str, str], refresh) -> int:
    """Runs CMD in our process group (so it keeps the terminal) and waits for it. A Ctrl-C from the
    terminal reaches CMD directly; a signal sent to this process alone is passed on."""
    try:
        child = subprocess.Popen(cmd, env=env)
    except OSError as e:
        raise StackError(f"cannot run {cmd[0]}: {e.strerror}") from None
    pending: list[tuple[int, float]] = []

    def on_signal(signum, _frame):
        # SIGINT usually came from the terminal to CMD as well: give CMD a moment first.
        pending.append((signum, time.monotonic() + (2.0 if signum == signal.SIGINT else 0.0)))

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    while True:
        try:
            rc = child.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            refresh()
        now = time.monotonic()
        for item in list(pending):
            if item[1] <= now:
                pending.remove(item)
                try:
                    child.send_signal(item[0])
                except ProcessLookupError:
                    pass
    return 128 - rc if rc < 0 else rc
