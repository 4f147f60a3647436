"""The one way operator tools load configuration and reach Firestore and OpenRouter.

Configuration is what the functions read (TOKENLEDGER_*, OPENROUTER_BASE_URL,
OPENROUTER_API_KEY; config.settings()). Firestore is the emulator when FIRESTORE_EMULATOR_HOST
is set (e.g. inside `scripts/stack exec --`), else the project in GCLOUD_PROJECT /
GOOGLE_CLOUD_PROJECT (or --project) with Application Default Credentials.
"""
from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime, timezone

from google.cloud import firestore

from tokenledger import config, store


def settings(**overrides) -> config.Settings:
    """The functions' settings, with a tool's command-line choices on top."""
    return dataclasses.replace(config.settings(), **overrides)


def firestore_client(project: str | None = None) -> firestore.Client:
    return store.client() if project is None else firestore.Client(project=project)


def add_project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="Firebase project id (default: GCLOUD_PROJECT or GOOGLE_CLOUD_PROJECT)")


def parse_now(value: str | None) -> datetime:
    """An ISO 8601 clock for a run (UTC when it names no zone); now when absent."""
    if not value:
        return datetime.now(timezone.utc)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
