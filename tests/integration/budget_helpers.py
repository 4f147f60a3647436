"""Setting budgets and reading budget state back, for the budget tests."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from google.cloud.firestore_v1.base_query import FieldFilter

from tokenledger.config import Settings
from tokenledger.policy import plan_call
from tokenledger.pricing.prices import parse_catalog

from .ledger_checks import rows_for

CLOCK = "X-Tokenledger-Now"  # honoured by the functions only inside the emulator
MODEL = "openai/gpt-4o-mini"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Count to three."}], "max_tokens": 40}


def put_budget(api, admin, uid: str, **body):
    response = api.request("PUT", f"/v1/admin/budgets/{uid}", admin, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def at(moment: str) -> dict:
    return {CLOCK: moment}


def open_reservations(db, uid: str) -> list[dict]:
    """Reservations of calls (not the leases an instance keeps between calls: ledger_checks.leases_of)."""
    query = db.collection("reservations").where(filter=FieldFilter("user_id", "==", uid))
    return [data for data in (s.to_dict() for s in query.stream()) if not data.get("lease")]


def alert_ids(db, uid: str) -> set[str]:
    query = db.collection("budget_alerts").where(filter=FieldFilter("user_id", "==", uid))
    return {s.id for s in query.stream()}


def requests_from(standin, uid: str) -> list[dict]:
    return [r for r in standin.requests() if (r.get("body") or {}).get("user") == uid]


def worst_case(api, user) -> int:
    """The reservation the API makes for BODY (the request policy, the API's own catalog)."""
    models = api.request("GET", "/v1/models", user).json()["data"]
    entry = next(m for m in models if m["id"] == MODEL)
    catalog = parse_catalog({"data": [{"id": MODEL, "pricing": entry["pricing"], "top_provider": {
        "context_length": entry["context_length"], "max_completion_tokens": entry["max_completion_tokens"]}}]},
        "openrouter")
    return plan_call(BODY, catalog, Settings()).worst_case_nanos


@dataclass(frozen=True)
class TenCalls:
    cost: int  # what one call of BODY costs (every one costs the same)
    reserve: int  # what the gate reserves for it
    budget: int


def budget_for_ten_calls(api, auth, db, admin, user) -> TenCalls:
    """Give `user` an enforced budget that admits exactly 10 calls of BODY one by one (call k is
    admitted while (k-1) x cost + reserve <= budget), calibrated on a probe user's call; no rate
    limits (a burst is the point of the tests that use it)."""
    probe = auth.create_user("probe")
    calibration = api.request("POST", "/v1/chat/completions", probe, json=BODY)
    assert calibration.status_code == 200, calibration.text
    cost = rows_for(db, probe.uid)[0]["cost_nanos"]
    reserve = worst_case(api, probe)
    assert reserve >= cost
    budget = 9 * cost + reserve + cost // 2
    assert (budget - reserve) // cost + 1 == 10
    put_budget(api, admin, user.uid, monthly_budget=float(Decimal(budget) / Decimal(10**9)), enforce=True,
               max_in_flight=None, requests_per_minute=None)
    return TenCalls(cost, reserve, budget)
