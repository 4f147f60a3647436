"""Setting budgets and reading budget state back, for the budget tests."""
from __future__ import annotations

from google.cloud.firestore_v1.base_query import FieldFilter

CLOCK = "X-Tokenledger-Now"  # honoured by the functions only inside the emulator


def put_budget(api, admin, uid: str, **body):
    response = api.request("PUT", f"/v1/admin/budgets/{uid}", admin, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def at(moment: str) -> dict:
    return {CLOCK: moment}


def open_reservations(db, uid: str) -> list[dict]:
    query = db.collection("reservations").where(filter=FieldFilter("user_id", "==", uid))
    return [s.to_dict() for s in query.stream()]


def alert_ids(db, uid: str) -> set[str]:
    query = db.collection("budget_alerts").where(filter=FieldFilter("user_id", "==", uid))
    return {s.id for s in query.stream()}


def requests_from(standin, uid: str) -> list[dict]:
    return [r for r in standin.requests() if (r.get("body") or {}).get("user") == uid]
