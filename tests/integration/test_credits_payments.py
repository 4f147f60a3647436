"""Credits bought through the Stripe extension: the `grant_paid_credits` Firestore trigger (run by
the Functions emulator on the Firestore emulator's writes) grants a succeeded payment once, however
often its document is written; a processing one grants nothing until it succeeds. And the rules:
a client cannot write a payment or its wallet (real ID tokens, the emulator's rules)."""
from __future__ import annotations

import time
import uuid

import requests

from .test_credits import wallet_doc

WAIT_S = 60


def payment_ref(db, uid: str, payment_id: str):
    return db.collection("customers").document(uid).collection("payments").document(payment_id)


def entries(db, uid: str) -> list[dict]:
    return [s.to_dict() for s in db.collection("user_credits").document(uid).collection("entries").stream()]


def wait_for_balance(db, uid: str, expected: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while (wallet_doc(db, uid).get("balance_nanos") or 0) != expected:
        assert time.monotonic() < deadline, f"balance {wallet_doc(db, uid)} never reached {expected}"
        time.sleep(0.25)


def intent(status: str, cents: int = 1_250, **extra) -> dict:
    """A PaymentIntent as the extension writes it; `amount_received` set whatever the status, so
    only the status stands between a processing payment and a grant."""
    return {"id": "pi_x", "object": "payment_intent", "status": status, "amount": cents, "amount_received": cents,
            "currency": "usd", "metadata": {}, **extra}


def test_a_succeeded_payment_grants_once_however_often_its_document_is_written(db, auth):
    user = auth.create_user("payer")
    payment_id = f"pi_{uuid.uuid4().hex}"
    ref = payment_ref(db, user.uid, payment_id)
    ref.set(intent("processing"))
    # A marker payment written after it: once its grant is there, the trigger has had its turn on
    # the processing document too (and granted nothing for it).
    marker = payment_ref(db, user.uid, f"pi_marker_{uuid.uuid4().hex}")
    marker.set(intent("succeeded", cents=1))
    wait_for_balance(db, user.uid, 10_000_000)
    assert [e["payment_id"] for e in entries(db, user.uid)] == [marker.id]

    ref.set(intent("succeeded"))
    wait_for_balance(db, user.uid, 10_000_000 + 12_500_000_000)
    ref.set(intent("succeeded", latest_charge="ch_1"))  # the extension writes the same intent again
    ref.set(intent("succeeded", latest_charge="ch_1", description="again"))
    later = payment_ref(db, user.uid, f"pi_marker_{uuid.uuid4().hex}")
    later.set(intent("succeeded", cents=2))  # written after the rewrites: its grant comes after their runs
    wait_for_balance(db, user.uid, 10_000_000 + 12_500_000_000 + 20_000_000)
    time.sleep(2)  # any late duplicate run would have landed by now
    assert wallet_doc(db, user.uid)["balance_nanos"] == 12_530_000_000
    paid = [e for e in entries(db, user.uid) if e["payment_id"] == payment_id]
    assert [(e["type"], e["amount_nanos"], e["source"]) for e in paid] == [("payment", 12_500_000_000, "stripe")]


def test_metadata_cannot_claim_more_than_was_paid_and_other_currencies_wait_for_an_admin(db, auth):
    user = auth.create_user("payer")
    payment_ref(db, user.uid, "pi_eur").set({**intent("succeeded"), "currency": "eur"})
    payment_ref(db, user.uid, "pi_claim").set(intent("succeeded", cents=100, metadata={"tokenledger_credits": "1000"}))
    payment_ref(db, user.uid, "pi_bonus").set(intent("succeeded", cents=1_000,
                                                     metadata={"tokenledger_credits": "7.5"}))
    wait_for_balance(db, user.uid, 1_000_000_000 + 7_500_000_000)
    time.sleep(2)
    assert sorted(e["payment_id"] for e in entries(db, user.uid)) == ["pi_bonus", "pi_claim"]


class Rest:
    """The Firestore emulator's REST API as a client signed in with a real ID token."""

    def __init__(self, stack):
        self.root = f"http://{stack.firestore_host}/v1/projects/{stack.project}/databases/(default)/documents"

    def write(self, path: str, user, fields: dict) -> int:
        return requests.patch(f"{self.root}/{path}", json={"fields": fields}, headers=user.headers,
                              timeout=10).status_code

    def get(self, path: str, user) -> int:
        return requests.get(f"{self.root}/{path}", headers=user.headers, timeout=10).status_code


def test_a_client_cannot_write_a_payment_or_its_wallet(db, auth, stack):
    rest = Rest(stack)
    user, other = auth.create_user("forger"), auth.create_user("other")
    fake = {"status": {"stringValue": "succeeded"}, "amount_received": {"integerValue": "100000000"},
            "currency": {"stringValue": "usd"}}
    assert rest.write(f"customers/{user.uid}/payments/pi_forged", user, fake) == 403
    assert rest.write(f"user_credits/{user.uid}", user, {"balance_nanos": {"integerValue": "999"}}) == 403
    assert rest.write(f"user_credits/{user.uid}/entries/e1", user, {"amount_nanos": {"integerValue": "9"}}) == 403
    # a checkout starts with the client's own checkout_sessions document (the extension's rules)
    assert rest.write(f"customers/{user.uid}/checkout_sessions/s1", user, {"price": {"stringValue": "p"}}) == 200
    assert rest.write(f"customers/{other.uid}/checkout_sessions/s1", user, {"price": {"stringValue": "p"}}) == 403
    time.sleep(2)
    assert not payment_ref(db, user.uid, "pi_forged").get().exists
    assert wallet_doc(db, user.uid) == {}
    # owners read their own wallet, nobody else's
    db.collection("user_credits").document(user.uid).set({"balance_nanos": 5, "held_nanos": 0})
    db.collection("user_credits").document(user.uid).collection("entries").document("e1").set({"amount_nanos": 5})
    assert rest.get(f"user_credits/{user.uid}", user) == 200
    assert rest.get(f"user_credits/{user.uid}/entries/e1", user) == 200
    assert rest.get(f"user_credits/{user.uid}", other) == 403
    assert rest.get(f"user_credits/{user.uid}/entries/e1", other) == 403
