"""firestore.rules on the Firestore emulator, with real ID tokens from the Auth emulator."""
from __future__ import annotations

import uuid

import pytest
import requests


@pytest.fixture(scope="module")
def people(auth):
    return {
        "alice": auth.create_user("alice"),
        "bob": auth.create_user("bob"),
        "admin": auth.create_user("admin", admin=True),
    }


@pytest.fixture(scope="module")
def docs(db, people):
    alice = people["alice"].uid
    row_id = f"gen-rules-{uuid.uuid4().hex}"
    db.collection("usage_tracking").document(row_id).set({"user_id": alice, "cost_nanos": 5})
    db.collection("user_usage").document(alice).collection("months").document("2026-11").set({"calls": 1})
    db.collection("user_budgets").document(alice).set({"monthly_budget": 5})
    db.collection("usage_totals").document("2026-11").collection("shards").document("0").set({"calls": 1})
    return {
        "row": f"usage_tracking/{row_id}",
        "month": f"user_usage/{alice}/months/2026-11",
        "budget": f"user_budgets/{alice}",
        "totals": "usage_totals/2026-11/shards/0",
    }


class Rest:
    def __init__(self, stack):
        self.root = f"http://{stack.firestore_host}/v1/projects/{stack.project}/databases/(default)/documents"

    def get(self, path, user=None):
        return requests.get(f"{self.root}/{path}", headers=user.headers if user else {}, timeout=10).status_code

    def write(self, path, user=None):
        body = {"fields": {"cost_nanos": {"integerValue": "0"}}}
        return requests.patch(f"{self.root}/{path}", json=body, headers=user.headers if user else {}, timeout=10).status_code

    def query_usage(self, user, uid=None):
        where = {}
        if uid:
            where = {"where": {"fieldFilter": {"field": {"fieldPath": "user_id"}, "op": "EQUAL", "value": {"stringValue": uid}}}}
        body = {"structuredQuery": {"from": [{"collectionId": "usage_tracking"}], **where}}
        return requests.post(f"{self.root}:runQuery", json=body, headers=user.headers, timeout=10).status_code


@pytest.fixture(scope="module")
def rest(stack):
    return Rest(stack)


def test_owner_reads_own_documents(rest, docs, people):
    for name in ("row", "month", "budget"):
        assert rest.get(docs[name], people["alice"]) == 200, name


def test_other_users_and_anonymous_are_denied(rest, docs, people):
    for name in ("row", "month", "budget", "totals"):
        assert rest.get(docs[name], people["bob"]) == 403, name
        assert rest.get(docs[name]) == 403, name


def test_admin_claim_reads_everything(rest, docs, people):
    for name in docs:
        assert rest.get(docs[name], people["admin"]) == 200, name


def test_no_client_writes_anywhere(rest, docs, people):
    for who in ("alice", "admin"):
        for name in docs:
            assert rest.write(docs[name], people[who]) == 403, (who, name)
    assert rest.write(f"usage_tracking/new-{uuid.uuid4().hex}", people["alice"]) == 403


def test_queries_must_be_limited_to_own_rows(rest, docs, people):
    alice = people["alice"]
    assert rest.query_usage(alice, alice.uid) == 200
    assert rest.query_usage(alice, people["bob"].uid) == 403
    assert rest.query_usage(alice) == 403


def test_polling_for_an_own_row_not_yet_written_is_not_found(rest, people):
    # A web app polls usage_tracking/{X-Generation-Id}: before the row exists, "not found".
    missing = f"usage_tracking/gen-not-yet-{uuid.uuid4().hex}"
    assert rest.get(missing, people["alice"]) == 404
    assert rest.get(missing) == 403  # signed out: still denied


def test_other_users_row_stays_denied_after_the_not_found_change(rest, docs, people):
    assert rest.get(docs["row"], people["bob"]) == 403
    assert rest.get(docs["row"], people["alice"]) == 200
