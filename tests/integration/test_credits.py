"""Prepaid credits through the real API on the emulators: grants (idempotent), the wallet and its
history, allowance spent before credits with the charge split exactly, 402 credits_exhausted, and
free models never touching credits. Expected amounts come from the calibrated cost of one call
(its row) and the amounts granted, never from the code under test."""
from __future__ import annotations

from .budget_helpers import BODY, put_budget, worst_case
from .ledger_checks import expire_leases, month_doc, rows_for

DOLLAR = 1_000_000_000
FREE_BODY = {**BODY, "model": "meta-llama/llama-3.3-70b-instruct:free", "max_tokens": 5}


def grant(api, admin, uid: str, amount: float, key: str, reason: str = "test grant"):
    return api.request("POST", f"/v1/admin/credits/{uid}", admin,
                       json={"amount": amount, "reason": reason, "idempotency_key": key})


def wallet_doc(db, uid: str) -> dict:
    snap = db.collection("user_credits").document(uid).get()
    return snap.to_dict() if snap.exists else {}


def calibrated_cost(api, auth, db) -> int:
    probe = auth.create_user("probe")
    response = api.request("POST", "/v1/chat/completions", probe, json=BODY)
    assert response.status_code == 200, response.text
    return rows_for(db, probe.uid)[0]["cost_nanos"]


def test_a_grant_is_made_once_per_idempotency_key(api, auth, db):
    admin, user = auth.create_user("admin", admin=True), auth.create_user("wallet")
    first = grant(api, admin, user.uid, 5.25, "order-1", "welcome pack")
    assert first.status_code == 201, first.text
    assert (first.json()["balance_nanos"], first.json()["created"]) == (5_250_000_000, True)
    again = grant(api, admin, user.uid, 5.25, "order-1", "welcome pack")
    assert again.status_code == 200, again.text
    assert (again.json()["balance_nanos"], again.json()["created"]) == (5_250_000_000, False)
    assert again.json()["entry"]["id"] == first.json()["entry"]["id"]
    # the same key for another amount is refused and grants nothing
    reused = grant(api, admin, user.uid, 9, "order-1")
    assert (reused.status_code, reused.json()["error"]["code"]) == (409, "idempotency_key_reused")
    refund = grant(api, admin, user.uid, -0.25, "refund-1", "refund")
    assert refund.status_code == 201 and refund.json()["balance_nanos"] == 5_000_000_000
    assert wallet_doc(db, user.uid)["balance_nanos"] == 5_000_000_000
    entries = list(db.collection("user_credits").document(user.uid).collection("entries").stream())
    assert sorted(e.to_dict()["amount_nanos"] for e in entries) == [-250_000_000, 5_250_000_000]

    mine = api.request("GET", "/v1/credits?limit=1", user)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["balance_nanos"], body["held_nanos"], body["has_wallet"]) == (5_000_000_000, 0, True)
    assert [e["type"] for e in body["history"]] == ["adjustment"]  # newest first
    page2 = api.request("GET", f"/v1/credits?limit=1&page_token={body['next_page_token']}", user).json()
    assert [(e["type"], e["amount_nanos"], e["reason"]) for e in page2["history"]] == [
        ("grant", 5_250_000_000, "welcome pack")]
    assert page2["next_page_token"] is None
    as_admin = api.request("GET", f"/v1/admin/credits/{user.uid}", admin).json()
    assert as_admin["balance_nanos"] == 5_000_000_000 and len(as_admin["history"]) == 2


def test_grants_refuse_bad_input_and_non_admins_and_write_nothing(api, auth, db):
    admin, user = auth.create_user("admin", admin=True), auth.create_user("wallet")
    bad = [{"amount": 0, "reason": "x", "idempotency_key": "k"},
           {"amount": "5", "reason": "x", "idempotency_key": "k"},
           {"amount": True, "reason": "x", "idempotency_key": "k"},
           {"amount": 5, "reason": " ", "idempotency_key": "k"},
           {"amount": 5, "reason": "x"},
           {"amount": 5e9, "reason": "x", "idempotency_key": "k"},
           {"amount": 5, "reason": "x", "idempotency_key": "k", "uid": "someone-else"}]
    for body in bad:
        response = api.request("POST", f"/v1/admin/credits/{user.uid}", admin, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_grant"), body
    assert api.request("POST", f"/v1/admin/credits/{user.uid}", user,
                       json={"amount": 5, "reason": "x", "idempotency_key": "k"}).status_code == 403
    assert api.request("GET", f"/v1/admin/credits/{user.uid}", user).status_code == 403
    assert wallet_doc(db, user.uid) == {}
    token = api.request("GET", "/v1/credits?page_token=nope", user)
    assert (token.status_code, token.json()["error"]["code"]) == (400, "invalid_page_token")


def test_the_allowance_is_spent_before_credits_and_a_straddling_call_is_split_exactly(api, auth, db):
    cost = calibrated_cost(api, auth, db)
    admin, user = auth.create_user("admin", admin=True), auth.create_user("straddle")
    allowance = cost // 2 + 7  # less than one call: the first call straddles the two
    put_budget(api, admin, user.uid, monthly_budget=allowance / DOLLAR, enforce=True, requests_per_minute=None,
               max_in_flight=None)
    assert grant(api, admin, user.uid, 2, "straddle").status_code == 201
    first = api.request("POST", "/v1/chat/completions", user, json=BODY)
    assert first.status_code == 200, first.text
    second = api.request("POST", "/v1/chat/completions", user, json=BODY)
    assert second.status_code == 200, second.text
    rows = {row["_id"]: row for row in rows_for(db, user.uid)}
    one, two = rows[first.json()["id"]], rows[second.json()["id"]]
    assert (one["cost_nanos"], one["allowance_nanos"], one["credits_nanos"]) == (cost, allowance, cost - allowance)
    assert (two["cost_nanos"], two["allowance_nanos"], two["credits_nanos"]) == (cost, 0, cost)
    spent_credits = (cost - allowance) + cost
    # what the user sees now (a lease may still hold what it spent: counted as spent)
    mine = api.request("GET", "/v1/credits", user).json()
    assert mine["balance_nanos"] == 2 * DOLLAR - spent_credits
    assert mine["spent_this_month_nanos"] == spent_credits
    # and the wallet itself once every hold is closed
    expire_leases(db, user.uid)
    wallet = wallet_doc(db, user.uid)
    assert (wallet["balance_nanos"], wallet["held_nanos"]) == (2 * DOLLAR - spent_credits, 0)
    month = month_doc(db, user.uid, one["month"])  # its shards summed: a cold call's extra commits may shard it
    assert (month["cost_nanos"], month["credits_nanos"]) == (2 * cost, spent_credits)


def test_a_pure_prepaid_user_is_refused_with_credits_exhausted_and_free_models_never_touch_credits(api, auth, db):
    admin, user = auth.create_user("admin", admin=True), auth.create_user("prepaid")
    put_budget(api, admin, user.uid, monthly_budget=0, enforce=True, requests_per_minute=None, max_in_flight=None)
    worst = worst_case(api, user)
    small = worst - 1  # one nano short of the call's worst case
    assert grant(api, admin, user.uid, small / DOLLAR, "small").status_code == 201
    refused = api.request("POST", "/v1/chat/completions", user, json=BODY)
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "credits_exhausted"
    assert (error["balance_nanos"], error["estimated_cost_nanos"]) == (small, worst)
    assert "credit balance is" in error["message"] and "could cost up to" in error["message"]
    assert rows_for(db, user.uid) == []
    free = api.request("POST", "/v1/chat/completions", user, json=FREE_BODY)
    assert free.status_code == 200, free.text
    [row] = rows_for(db, user.uid)
    assert (row["cost_nanos"], row["credits_nanos"]) == (0, 0)
    expire_leases(db, user.uid)
    assert (wallet_doc(db, user.uid)["balance_nanos"], wallet_doc(db, user.uid)["held_nanos"]) == (small, 0)
    # one more nano and the call fits
    assert grant(api, admin, user.uid, 1 / DOLLAR, "one-nano").status_code == 201
    paid = api.request("POST", "/v1/chat/completions", user, json=BODY)
    assert paid.status_code == 200, paid.text


def test_a_negative_adjustment_below_zero_refuses_paid_calls_until_positive(api, auth, db):
    admin, user = auth.create_user("admin", admin=True), auth.create_user("chargeback")
    put_budget(api, admin, user.uid, monthly_budget=0, enforce=True, requests_per_minute=None, max_in_flight=None)
    assert grant(api, admin, user.uid, 1, "pack").status_code == 201
    back = grant(api, admin, user.uid, -3, "chargeback")
    assert back.status_code == 201 and back.json()["balance_nanos"] == -2 * DOLLAR
    refused = api.request("POST", "/v1/chat/completions", user, json=BODY)
    assert (refused.status_code, refused.json()["error"]["code"]) == (402, "credits_exhausted")
    assert api.request("POST", "/v1/chat/completions", user, json=FREE_BODY).status_code == 200
    assert grant(api, admin, user.uid, 3, "settled").status_code == 201
    assert api.request("POST", "/v1/chat/completions", user, json=BODY).status_code == 200
