#!/usr/bin/env python3
"""Sign-in accounts for trying the web app on the local stack (emulators only):

    make up                                   # in one shell; prints the app's URL
    . .stack/env && functions/venv/bin/python scripts/web_users.py   # in another

Creates alice@example.com (a few chats through the API, so My usage has something to show) and
admin@example.com (custom claim admin), both with the password `tokenledger`, and prints them.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.devkit import env as stack_env  # noqa: E402
from scripts.devkit.api_client import ApiClient  # noqa: E402
from scripts.devkit.auth_emulator import AuthEmulator  # noqa: E402

PASSWORD = "tokenledger"
CHATS = [("openai/gpt-4o-mini", "Summarise double-entry bookkeeping in one line."),
         ("anthropic/claude-3.5-haiku", "Name three budgeting habits."),
         ("meta-llama/llama-3.3-70b-instruct:free", "Tell me a short joke.")]


def main() -> int:
    import os

    stack = stack_env.from_environ()
    auth, api = AuthEmulator(stack.auth_host, stack.project), ApiClient(stack.api_url)
    alice = auth.sign_up("alice@example.com", PASSWORD)
    auth.sign_up("admin@example.com", PASSWORD, admin=True)
    for model, text in CHATS:
        api.chat(alice, model, text, max_tokens=100).raise_for_status()
    print(f"The web app: {os.environ.get('APP_URL', '(APP_URL not set)')}")
    print(f"  alice@example.com / {PASSWORD}   ({len(CHATS)} calls so far)")
    print(f"  admin@example.com / {PASSWORD}   (admin)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
