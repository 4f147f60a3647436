#!/usr/bin/env python3
"""Offline demo: real users in the Auth emulator send free and paid chats through the HTTPS
API; the per-user ledger is read back from Firestore and printed as a table.

Run it with `make demo` (which starts the emulators and the OpenRouter stand-in around it).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from google.cloud import firestore  # noqa: E402

from scripts.devkit import env as stack_env  # noqa: E402
from scripts.devkit.api_client import ApiClient  # noqa: E402
from scripts.devkit.auth_emulator import AuthEmulator  # noqa: E402
from scripts.devkit.table import print_table, usd  # noqa: E402

# Who does what: a mix of free and paid models, features, and a router call.
SCRIPT = {
    "alice": [
        ("openai/gpt-4o", "Draft a product announcement for our new budgeting feature.", "writer"),
        ("anthropic/claude-sonnet-4", "Review this paragraph for tone and clarity, please.", "writer"),
        ("deepseek/deepseek-r1", "Think step by step: what is 17 * 23 + 4?", "tutor"),
        ("openrouter/auto", "Summarise the last meeting in three bullet points.", "summary"),
    ],
    "bob": [
        ("meta-llama/llama-3.3-70b-instruct:free", "Tell me a short joke about databases.", "chat"),
        ("deepseek/deepseek-chat-v3-0324:free", "What is the capital of Australia?", "chat"),
        ("openrouter/free", "Give me a haiku about autumn.", "chat"),
    ],
    "carol": [
        ("openai/gpt-4o-mini", "Translate 'good morning' into French and Spanish.", "translate"),
        ("meta-llama/llama-3.3-70b-instruct:free", "List three prime numbers.", "chat"),
        ("perplexity/sonar", "What changed in the latest Python release?", "search"),
        ("openai/gpt-4o-mini", "Rewrite: 'the meeting is moved to thursday'.", "translate"),
    ],
}


def main() -> int:
    stack = stack_env.from_environ()
    auth = AuthEmulator(stack.auth_host, stack.project)
    api = ApiClient(stack.api_url)
    db = firestore.Client(project=stack.project)

    users = {name: auth.create_user(name) for name in SCRIPT}
    total = sum(len(calls) for calls in SCRIPT.values())
    done = 0
    print(f"Sending {total} chats for {len(users)} users through {stack.api_url}")
    for name, calls in SCRIPT.items():
        for model, text, feature in calls:
            done += 1
            response = api.chat(users[name], model, text, feature=feature, max_tokens=200)
            if response.status_code != 200:
                print(f"  [{done}/{total}] {name}: {model} -> HTTP {response.status_code} {response.text}")
                return 1
            body = response.json()
            print(
                f"  [{done}/{total}] {name:<6} {model:<42} served by {body['model']:<40} "
                f"{body['usage']['total_tokens']:>5} tokens  ${body['usage'].get('cost', 0):.6f}"
            )

    rows = []
    month = None
    for name, user in users.items():
        months = list(db.collection("user_usage").document(user.uid).collection("months").stream())
        doc = months[0].to_dict()
        month = doc["month"]
        rows.append(
            [
                name,
                doc["calls"],
                doc["free_calls"],
                doc["paid_calls"],
                doc["free_tokens"],
                doc["paid_tokens"],
                usd(doc["cost_nanos"]),
            ]
        )
    print_table(
        ["user", "calls", "free calls", "paid calls", "free tokens", "paid tokens", "cost"],
        rows,
        title=f"Usage for {month}, read back from Firestore (user_usage rollups)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
