"""Plans for the plan tests: users on a plan (a custom claim in a real ID token), admin calls."""
from __future__ import annotations

import uuid

import pytest
import requests

PAID = "openai/gpt-4o-mini"
FREE = "meta-llama/llama-3.3-70b-instruct:free"
BODY = {"model": PAID, "messages": [{"role": "user", "content": "Count to three."}], "max_tokens": 40}


def plan_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Served:
    """Calls to one served api (functions-framework process)."""

    def __init__(self, base: str, session: requests.Session | None = None):
        self.base = base
        self.http = session or requests.Session()

    def request(self, method: str, path: str, user=None, **kwargs) -> requests.Response:
        headers = {**(kwargs.pop("headers", None) or {}), **(user.headers if user else {})}
        return self.http.request(method, f"{self.base}{path}", headers=headers, timeout=120, **kwargs)

    def chat(self, user, **body) -> requests.Response:
        return self.request("POST", "/v1/chat/completions", user, json={**BODY, **body})

    def put_plan(self, admin, pid: str, **body) -> dict:
        response = self.request("PUT", f"/v1/admin/plans/{pid}", admin, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def budget(self, user) -> dict:
        response = self.request("GET", "/v1/budget", user)
        assert response.status_code == 200, response.text
        return response.json()


def on_plan(auth, name: str, pid: str | None, claim: str = "stripeRole"):
    """A new user whose ID token carries `claim: pid` (set as the Admin SDK sets custom claims)."""
    user = auth.create_user(name)
    if pid is not None:
        auth.set_claims(user.uid, {claim: pid})
        auth.refresh(user)
    return user


@pytest.fixture(scope="module", autouse=True)
def plans_left_behind(db):
    """Plans a test module creates are deleted after it: other modules' users have none (a plan
    with a dollar budget changes what the scheduled check scans)."""
    before = {snap.id for snap in db.collection("plans").stream()}
    yield
    for snap in db.collection("plans").stream():
        if snap.id not in before:
            snap.reference.delete()
