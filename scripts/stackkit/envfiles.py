"""functions/.env.local and functions/.secret.local for one run of the functions emulator."""
from __future__ import annotations

import os
from pathlib import Path

from stackkit.base import ENV_MARKER, FUNCTIONS_DIR, STACK_DIR


def dotenv_quote(value: str) -> str:
    esc = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", "'": "\\'", '"': '\\"'}
    return '"' + "".join(esc.get(c, c) for c in value) + '"'


class EnvFiles:
    """Writes functions/.env.local and functions/.secret.local for one run and puts back what was
    there before. A backup in .stack/ survives a crash: the next run restores from it."""

    def __init__(self, values: dict[str, dict[str, str]]):
        self.values = values  # file name -> {KEY: value}
        self.saved: dict[str, str | None] = {}

    def _backup(self, name: str) -> Path:
        return STACK_DIR / f"{name}.orig"

    def write(self) -> None:
        for name, vals in self.values.items():
            path, backup = FUNCTIONS_DIR / name, self._backup(name)
            try:
                current: str | None = path.read_text()
            except FileNotFoundError:
                current = None
            if current is not None and current.startswith(ENV_MARKER):
                # Left by a run that was killed: the original is in the backup, if there was one.
                current = backup.read_text() if backup.exists() else None
            self.saved[name] = current
            if current is None:
                backup.unlink(missing_ok=True)
            else:
                backup.write_text(current)
                os.chmod(backup, 0o600)
            body = [ENV_MARKER]
            if current:
                body.append(current.rstrip("\n"))
            body += [f"{k}={dotenv_quote(v)}" for k, v in vals.items()]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(body) + "\n")

    def restore(self) -> None:
        for name, original in self.saved.items():
            path = FUNCTIONS_DIR / name
            if original is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(original)
            self._backup(name).unlink(missing_ok=True)
        self.saved.clear()
