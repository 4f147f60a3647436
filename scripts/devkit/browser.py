"""Debian's chromium driven by Playwright, against the stack's web app (tests/web, the bench).

Playwright cannot download its own browsers here, so it launches the machine's chromium
(installed by scripts/bootstrap / .ci/run) through `executable_path`.
"""
from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit

AXE_JS = os.path.join(os.path.dirname(__file__), "..", "..", "web", "node_modules", "axe-core", "axe.min.js")


def chromium_path() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    raise RuntimeError("chromium not found: scripts/bootstrap installs it (apt-get install chromium)")


def stack_ports() -> list[int]:
    """Ports of the stack's addresses, allowed explicitly: with STACK_PORT_OFFSET some land on
    ports Chromium refuses by default (6000, 10080, ...)."""
    ports = set()
    for name in ("APP_URL", "API_URL", "FUNCTIONS_EMULATOR_URL"):
        if os.environ.get(name):
            ports.add(urlsplit(os.environ[name]).port)
    for name in ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST"):
        if os.environ.get(name):
            ports.add(int(os.environ[name].rsplit(":", 1)[1]))
    return sorted(p for p in ports if p)


def launch(playwright, **kwargs):
    args = ["--no-sandbox", "--disable-dev-shm-usage",
            "--explicitly-allowed-ports=" + ",".join(map(str, stack_ports()))]
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args, **kwargs)


def sign_in(page, app_url: str, user, hash_route: str = "#/usage") -> None:
    """Signs `user` (an Auth-emulator user with email and password) in through the app's form."""
    page.goto(f"{app_url}/{hash_route}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.locator("#signout").wait_for()


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:
    """axe-core (web/node_modules, pinned in web/package.json) run in the page."""
    page.add_script_tag(path=os.path.abspath(AXE_JS))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [n["target"] for n in v["nodes"]][:5]}
            for v in result if v["impact"] in impacts]
