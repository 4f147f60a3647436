"""The `api` function served by functions-framework next to the emulator suite (see
scripts/devkit/served.py), for behaviour that depends on the HTTP server itself."""
from __future__ import annotations

from pathlib import Path

from scripts.devkit.served import ROOT, free_port, serve

__all__ = ["ROOT", "free_port", "served_api"]


def served_api(log_path: Path, **env_overrides: str):
    """Yields the base URL of a functions-framework server running functions/main.py:api."""
    return serve(log_path, **env_overrides)
