"""A user's first call on an instance through the served API (functions-framework, one process:
one instance), where the Auth lookup (revocation) runs beside the gate's commit on a guessed
budget (api/auth.py caller_standing_pending, budgets/cold.py): the real budget decides, a
revoked or disabled user is refused before OpenRouter with nothing left held, and a budget PUT
by an admin is in force at once on that instance."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests

from .budget_helpers import requests_from
from .cold_helpers import eventually, held, reservation_docs
from .served_api import served_api

PAID = "openai/gpt-4o-mini"
BODY = {"model": PAID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


@pytest.fixture(scope="module")
def base(stack, tmp_path_factory):
    with served_api(tmp_path_factory.mktemp("cold") / "function.log") as url:
        yield url


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def month() -> str:
    """The served API runs on the wall clock (the clock header is the emulator's only)."""
    return datetime.now(timezone.utc).strftime("%Y-%m")


def chat(base, user) -> requests.Response:
    return requests.post(f"{base}/v1/chat/completions", headers=user.headers, json=BODY, timeout=60)


def put_budget(base, admin, uid: str, **body) -> None:
    response = requests.put(f"{base}/v1/admin/budgets/{uid}", headers=admin.headers, json=body, timeout=30)
    assert response.status_code in (200, 201), response.text


def test_a_tiny_enforced_budget_refuses_the_first_call_with_nothing_sent_or_held(base, admin, auth, standin, db):
    user = auth.create_user("tiny")
    put_budget(base, admin, user.uid, monthly_budget=0.000001, enforce=True)  # $0.000001: below any paid call
    response = chat(base, user)
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["monthly_budget"] == 0.000001
    assert requests_from(standin, user.uid) == []
    assert held(db, user.uid, month()) == (0, 0, 0) and reservation_docs(db, user.uid) == []


@pytest.mark.parametrize("refusal", ["revoked", "disabled"])
def test_a_revoked_or_disabled_users_first_call_is_refused_before_openrouter_with_nothing_held(
        base, auth, standin, db, refusal):
    user = auth.create_user(refusal)
    if refusal == "revoked":
        auth.revoke_tokens(user.uid, valid_since=int(time.time()) + 1)  # every token issued so far
    else:
        auth.disable(user.uid)
    response = chat(base, user)
    expected = {"revoked": (401, "token_revoked"), "disabled": (403, "user_disabled")}[refusal]
    assert (response.status_code, response.json()["error"]["code"]) == expected, response.text
    assert requests_from(standin, user.uid) == []
    # Nothing held for them: no reservation, no lease kept for calls they may not make.
    assert eventually(lambda: (held(db, user.uid, month()), reservation_docs(db, user.uid)),
                      ((0, 0, 0), [])) == ((0, 0, 0), [])


def test_a_budget_lowered_between_calls_is_in_force_at_once_on_the_instance(base, admin, auth, standin, db):
    user = auth.create_user("lowered")
    first = chat(base, user)
    assert first.status_code == 200, first.text
    spent = first.json()["budget"]["spent"]
    put_budget(base, admin, user.uid, monthly_budget=spent + 0.000001, enforce=True)
    second = chat(base, user)
    assert second.status_code == 402, second.text
    assert len(requests_from(standin, user.uid)) == 1
    cost, reserved, in_flight = held(db, user.uid, month())
    assert (reserved, in_flight) == (0, 0) and reservation_docs(db, user.uid) == []  # the old lease went back
