"""Browser tests: Debian's chromium (Playwright) against the web app the Hosting emulator serves.

Run inside the stack (`scripts/stack exec -- pytest tests/web`), like tests/integration.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from google.cloud import firestore
from playwright.sync_api import sync_playwright

from scripts.devkit import browser
from scripts.devkit.api_client import ApiClient
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.standin import StandinControl

ROOT = Path(__file__).resolve().parents[2]
# Screenshots go here; WEB_SCREENSHOTS=docs (make screenshots) writes the README's copies.
SHOTS = ROOT / os.environ.get("WEB_SCREENSHOTS", ".stack/screenshots")


@pytest.fixture(scope="session")
def env() -> dict:
    names = ("APP_URL", "API_URL", "FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "GCLOUD_PROJECT", "STANDIN_URL")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.exit(f"browser tests run inside the stack: scripts/stack exec -- pytest tests/web (missing {missing})", 2)
    return {n: os.environ[n].rstrip("/") for n in names}


@pytest.fixture(scope="session")
def app_url(env) -> str:
    return env["APP_URL"]


@pytest.fixture(scope="session")
def db(env) -> firestore.Client:
    return firestore.Client(project=env["GCLOUD_PROJECT"])


@pytest.fixture(scope="session")
def auth(env) -> AuthEmulator:
    return AuthEmulator(env["FIREBASE_AUTH_EMULATOR_HOST"], env["GCLOUD_PROJECT"])


@pytest.fixture(scope="session")
def api(env) -> ApiClient:
    return ApiClient(env["API_URL"], requests.Session())


@pytest.fixture()
def standin(env):
    control = StandinControl(env["STANDIN_URL"])
    control.reset()
    yield control
    control.reset()


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as p:
        b = browser.launch(p)
        yield b
        b.close()


@pytest.fixture()
def context(chromium):
    ctx = chromium.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture()
def page(context):
    return context.new_page()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, keep a screenshot of every open page (in .stack/screenshots/) to look at."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "context" in item.funcargs:
        folder = ROOT / ".stack" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(item.funcargs["context"].pages):
            try:
                p.screenshot(path=str(folder / f"failed-{item.name}-{i}.png"), full_page=True)
            except Exception:  # noqa: BLE001 (best effort while reporting a failure)
                pass
