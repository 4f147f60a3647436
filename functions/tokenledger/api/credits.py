"""Prepaid credit routes: an admin grants or adjusts (POST /v1/admin/credits/<uid>) and reads a
user's wallet (GET /v1/admin/credits/<uid>); a user reads their own (GET /v1/credits). The
wallet, its history and how calls are paid from it: credits/wallet.py, budgets/ceiling.py."""
from __future__ import annotations

import math

from flask import Blueprint, jsonify
from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from tokenledger import logs, money
from tokenledger.api import query, validation
from tokenledger.api.auth import current_caller, require_admin
from tokenledger.api.budgets import _uid
from tokenledger.api.context import services
from tokenledger.api.errors import ApiError
from tokenledger.budgets import reservations
from tokenledger.credits import wallet

bp = Blueprint("credits", __name__)

Number = StrictInt | StrictFloat
MAX_GRANT_USD = 1_000_000


class GrantBody(BaseModel):
    """POST /v1/admin/credits/<uid>: `amount` USD (negative: an adjustment — refund, chargeback),
    why, and a key that makes the same request grant once however often it is sent."""

    model_config = ConfigDict(extra="forbid")
    amount: Number = Field(ge=-MAX_GRANT_USD, le=MAX_GRANT_USD)
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str = Field(min_length=1, max_length=200)
    low_balance_alert: Number | None = Field(default=None, ge=0, le=MAX_GRANT_USD)

    @field_validator("amount")
    @classmethod
    def _amount(cls, value):
        if not math.isfinite(value) or value == 0:
            raise ValueError("amount must be a non-zero number of USD")
        if money.to_nanos(money.to_decimal(value)) == 0:
            raise ValueError("amount is below one nano-dollar")
        return value

    @field_validator("reason", "idempotency_key")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def _view(uid: str, asked: query.PageQuery) -> dict:
    svc = services()
    month = svc.now().strftime("%Y-%m")
    try:
        totals = reservations.read_month(svc.db, uid, month)
        view = wallet.read(svc.db, uid, month, totals.credits_nanos)
        entries, token = wallet.history(svc.db, uid, asked.limit, asked.page_token)
    except LookupError:
        raise ApiError(400, "invalid_page_token", "page_token does not name an entry of this wallet; start again "
                                                  "without it.")
    except (gexc.GoogleAPIError, gexc.RetryError):
        raise ApiError(503, "credits_unavailable", "The wallet cannot be read right now; retry in a moment.",
                       {"Retry-After": "5"})
    low = view.low_balance_nanos if view.low_balance_nanos is not None else money.to_nanos(svc.settings.low_credits_usd)
    return {"user_id": uid, **view.json(month), "low_balance_alert": money.usd_float(low),
            "history": entries, "next_page_token": token}


@bp.get("/v1/credits")
def my_credits():
    caller = current_caller()
    return jsonify(_view(caller.uid, query.parse(query.PageQuery)))


@bp.get("/v1/admin/credits/<uid>")
def get_credits(uid: str):
    require_admin()
    return jsonify(_view(_uid(uid), query.parse(query.PageQuery)))


@bp.post("/v1/admin/credits/<uid>")
def grant_credits(uid: str):
    svc = services()
    admin = require_admin()
    uid = _uid(uid)
    body = validation.validated(GrantBody, validation.json_body(svc.settings), "invalid_grant")
    nanos = money.to_nanos(money.to_decimal(body.amount))
    kind = wallet.GRANT if nanos > 0 else wallet.ADJUSTMENT
    entry_id = wallet.entry_id_for("admin", body.idempotency_key)
    fields = {"reason": body.reason, "source": f"admin:{admin.uid}", "idempotency_key": body.idempotency_key}
    try:
        if body.low_balance_alert is not None:
            wallet.set_low_balance(svc.db, uid, money.to_nanos(money.to_decimal(body.low_balance_alert)))
        granted = wallet.grant(svc.db, uid, nanos, kind, entry_id, fields,
                               rearm_nanos=money.to_nanos(svc.settings.low_credits_usd))
    except (gexc.GoogleAPIError, gexc.RetryError):
        raise ApiError(503, "credits_unavailable", "The wallet cannot be written right now; retry with the same "
                                                   "idempotency_key.", {"Retry-After": "5"})
    if not granted.created and (granted.entry.get("amount_nanos") != nanos):
        raise ApiError(409, "idempotency_key_reused",
                       "This idempotency_key was used for a grant of a different amount; nothing was granted.")
    # In force at once on this instance (its next call reads the budget and wallet again, one round
    # trip); on others at their next read, or at once when a call would be refused (gate_call.py).
    svc.gate.budgets.forget(uid)
    svc.gate.wallets.forget(uid)
    if granted.created:
        logs.credits_granted(user_id=uid, amount_nanos=nanos, source="admin", entry_id=entry_id)
    response = jsonify({"user_id": uid, "created": granted.created, "entry": granted.entry,
                        **_balance(svc.db, uid)})
    response.status_code = 201 if granted.created else 200
    return response


def _balance(db, uid: str) -> dict:
    """The wallet just after the grant, as its owner sees it (wallet.read)."""
    view = wallet.read(db, uid, services().now().strftime("%Y-%m"), 0)
    return {"balance": money.usd_float(view.balance_nanos), "balance_nanos": view.balance_nanos,
            "held": money.usd_float(view.held_nanos), "held_nanos": view.held_nanos}
