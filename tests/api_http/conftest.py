"""The `api` function in-process: functions-framework's app for functions/main.py (the same
Cloud Functions wrapper, CORS included) driven by its Flask test client, with the OpenRouter
stand-in served on a real socket in a thread. Seconds, no emulator.

Only HTTP behaviour is tested here. The Firestore edges of a chat call (the budget gate, the
ledger write) are replaced: the gate admits without a budget, the ledger keeps records in a list.
Everything Firestore does is tested on the emulator (tests/integration, marked `emulator`).

ID tokens: with FIREBASE_AUTH_EMULATOR_HOST set, firebase_admin verifies a token's project,
issuer, subject and expiry but not its signature (the Auth emulator signs nothing), so the
tokens are made here, unsigned, exactly as the emulator makes them. Nothing listens on that
address: verification never calls it.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import types
from pathlib import Path

import functions_framework
import pytest
from werkzeug.serving import make_server

from scripts.devkit.standin import StandinControl
from scripts.standin.app import create_app as create_standin
from tokenledger import config, store
from tokenledger.api import analytics, auth, budgets, chat, chat_steps
from tokenledger.api.context import Services
from tokenledger.budgets.admission import Gate
from tokenledger.metering import ledger
from tokenledger.openrouter import OpenRouterClient
from tokenledger.pricing import catalog

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo-tokenledger"
KEY = "sk-or-v1-http-tests"
MAX_BODY = 4096


def id_token(uid: str, admin: bool = False, expires_in: int = 3600, project: str = PROJECT) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid, "user_id": uid,
              "iat": now, "auth_time": now, "exp": now + expires_in}
    if admin:
        claims["admin"] = True
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def bearer(uid: str = "user-1", **kwargs) -> dict:
    return {"Authorization": f"Bearer {id_token(uid, **kwargs)}"}


@pytest.fixture(scope="session")
def standin_url():
    server = make_server("127.0.0.1", 0, create_standin(api_key=KEY), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture()
def standin(standin_url):
    control = StandinControl(standin_url)
    control.reset()
    yield control
    control.reset()


class SnapshotCatalog:
    """The catalog shipped with the package, in place of the stored one (a Firestore read)."""

    def __init__(self):
        self.catalog = catalog.load_snapshot()

    def get(self):
        return self.catalog

    def refresh_for_missing(self, model_ids):
        return None  # no fetch here: an unknown model stays unknown


@pytest.fixture(scope="session")
def settings(standin_url):
    return config.Settings(
        openrouter_base_url=f"{standin_url}/api/v1", openrouter_api_key=KEY, upstream_timeout_s=1,
        max_body_bytes=MAX_BODY, allowed_models=("openai/*", "anthropic/*"),
    )


@pytest.fixture()
def recorded(monkeypatch, settings):
    """The in-process API; yields the list the ledger's records go to."""
    svc = Services(settings=settings, openrouter=OpenRouterClient(settings), catalog=SnapshotCatalog(), gate=Gate(settings))
    for module in (chat, analytics, budgets, auth):
        monkeypatch.setattr(module, "services", lambda: svc)
    # The account's standing (disabled, revoked) is read from the Auth backend: an emulator matter.
    # Here every account is in good standing (the chat path and the others look it up alike).
    good = types.SimpleNamespace(disabled=False, tokens_valid_after_timestamp=0)
    monkeypatch.setattr(auth, "_standing", auth.UserStanding(60, lookup=lambda uid: good))
    monkeypatch.setattr(chat_steps, "admit", lambda svc, call: None)  # no budget: a Firestore matter
    for module in (chat, chat_steps):  # no plans: they are Firestore documents
        monkeypatch.setattr(module, "caller_plan", lambda svc, caller, now: None)
    records = []

    def record_usage(db, record, settings, replay=False):
        records.append(record)
        return ledger.RecordOutcome(record.generation_id, "recorded", 1)

    monkeypatch.setattr(ledger, "record_usage", record_usage)
    monkeypatch.setattr(store, "client", NoFirestore)
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCLOUD_PROJECT", PROJECT)
    return records


@pytest.fixture(scope="session")
def function_app():
    return functions_framework.create_app(target="api", source=str(ROOT / "functions" / "main.py"))


@pytest.fixture()
def client(function_app, recorded):
    client = function_app.test_client()
    # As gunicorn (Cloud Run, functions-framework's server) says of every request: the body ends
    # where the stream ends. Without it werkzeug wraps the body in a length-checked stream that
    # the API's own read empties, and functions-framework's after-request read of the same body
    # then fails as a disconnect (a test-client artefact, not what the deployed function sees).
    client.environ_base["wsgi.input_terminated"] = True
    return client


class NoFirestore:
    """Stands where the Firestore client would be: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"an HTTP-only test touched Firestore (.{name}): test it on the emulator")
