"""Integration fixtures: the real emulators and the OpenRouter stand-in, via scripts/stack exec."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from google.cloud import firestore

from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.env import StackEnv
from scripts.devkit.standin import StandinControl

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Everything here needs the emulators: marked `emulator` (`pytest -m "not emulator"` skips it)."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.emulator)


@pytest.fixture(scope="session")
def stack() -> StackEnv:
    names = ("API_URL", "FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT", "STANDIN_URL")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.exit(f"integration tests run inside the stack: scripts/stack exec -- pytest (missing {missing})", 2)
    return StackEnv(
        api_url=os.environ["API_URL"].rstrip("/"),
        firestore_host=os.environ["FIRESTORE_EMULATOR_HOST"],
        auth_host=os.environ["FIREBASE_AUTH_EMULATOR_HOST"],
        project=os.environ["GCLOUD_PROJECT"],
        standin_url=os.environ["STANDIN_URL"].rstrip("/"),
    )


@pytest.fixture(scope="session")
def db(stack) -> firestore.Client:
    return firestore.Client(project=stack.project)


@pytest.fixture(scope="session")
def auth(stack) -> AuthEmulator:
    return AuthEmulator(stack.auth_host, stack.project)


@pytest.fixture(scope="session")
def http() -> requests.Session:
    return requests.Session()


@pytest.fixture()
def standin(stack, http):
    control = StandinControl(stack.standin_url, http)
    control.reset()
    yield control
    control.reset()


class Api:
    def __init__(self, base: str, http: requests.Session):
        self.base = base
        self.http = http

    def request(self, method: str, path: str, user=None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if user is not None:
            headers.update(user.headers)
        return self.http.request(method, f"{self.base}{path}", headers=headers, timeout=60, **kwargs)

    def chat(self, user, /, **body) -> requests.Response:
        body.setdefault("model", "openai/gpt-4o-mini")
        body.setdefault("messages", [{"role": "user", "content": "Hello there"}])
        return self.request("POST", "/v1/chat/completions", user, json=body)


@pytest.fixture(scope="session")
def api(stack, http) -> Api:
    return Api(stack.api_url, http)


@pytest.fixture()
def user(auth):
    return auth.create_user("user")


@pytest.fixture()
def ops():
    """Firestore operations of this process, counted as Firestore bills them (scripts/bench/opcount.py)."""
    from scripts.bench import opcount

    opcount.install()
    opcount.OPS.reset()
    return opcount.OPS


@pytest.fixture()
def calm_gate(monkeypatch):
    """The budget gate of tests that drive it directly: every write on the base documents (no
    hot-user spreading) and a refusal final at once (no patience loop)."""
    from tokenledger.budgets import admission

    from .hot_tables import install

    install(monkeypatch, step=2.0)
    monkeypatch.setattr(admission, "ADMISSION_PATIENCE_S", 0.0)
