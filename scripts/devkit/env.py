"""The running stack's addresses, as `scripts/stack exec` hands them to a command."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class StackEnv:
    api_url: str
    firestore_host: str
    auth_host: str
    project: str
    standin_url: str | None


def from_environ(require_standin: bool = False) -> StackEnv:
    missing = [
        name
        for name in ("API_URL", "FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT")
        if not os.environ.get(name)
    ]
    if require_standin and not os.environ.get("STANDIN_URL"):
        missing.append("STANDIN_URL")
    if missing:
        sys.exit(
            f"missing {', '.join(missing)}: run this through the stack, "
            "e.g. scripts/stack exec -- <command>"
        )
    return StackEnv(
        api_url=os.environ["API_URL"].rstrip("/"),
        firestore_host=os.environ["FIRESTORE_EMULATOR_HOST"],
        auth_host=os.environ["FIREBASE_AUTH_EMULATOR_HOST"],
        project=os.environ["GCLOUD_PROJECT"],
        standin_url=(os.environ.get("STANDIN_URL") or "").rstrip("/") or None,
    )
