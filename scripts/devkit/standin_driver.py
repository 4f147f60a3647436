"""The OpenRouter stand-in driven in-process, as its billing tests drive it: an app with a key,
a chat helper that checks the status and reads money as Decimal, and scripted next answers."""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from openrouter_standin import create_app  # noqa: E402

KEY = "sk-or-v1-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "Hello world"}]  # 4 + ceil(11/4) = 7 prompt tokens, 17 natural


def test_client():
    """A fresh stand-in (its own state) and a Flask test client of it."""
    return create_app(api_key=KEY).test_client()


test_client.__test__ = False  # a helper, not a test (pytest collects names starting with test)


def chat(client, expect: int = 200, **body):
    """POST a chat (gpt-4o-mini and HELLO unless given); the answer, money as Decimal."""
    body.setdefault("model", "openai/gpt-4o-mini")
    body.setdefault("messages", HELLO)
    resp = client.post("/api/v1/chat/completions", json=body, headers=AUTH)
    assert resp.status_code == expect, resp.data
    return json.loads(resp.data, parse_float=Decimal)


def script(client, *responses):
    """The next answers of the stand-in, for any user."""
    resp = client.post("/_control/script", json={"user": None, "responses": list(responses)})
    assert resp.status_code == 200, resp.data
