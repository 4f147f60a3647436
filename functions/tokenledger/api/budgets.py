"""Budget routes: the caller's month (GET /v1/budget), admins' budgets per user
(PUT/GET /v1/admin/budgets/<uid>) and the alerts (GET /v1/alerts, GET /v1/admin/alerts)."""
from __future__ import annotations

import re

from flask import Blueprint, jsonify
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import Field

from tokenledger import money, store
from tokenledger.api import query, validation
from tokenledger.api.auth import current_caller, require_admin
from tokenledger.api.context import services
from tokenledger.api.errors import ApiError
from tokenledger.api.allowance import PLAIN_FIELDS, AllowanceUpdate, Number, stored_fields
from tokenledger.api.plans import caller_plan
from tokenledger.audit import log as audit
from tokenledger.budgets import admission, alerts, copies, reservations, rules

bp = Blueprint("budgets", __name__)

UID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"  # a sanity check; delivery is the mail extension's job


class BudgetUpdate(AllowanceUpdate):
    """The body of PUT /v1/admin/budgets/<uid>: the whole budget. An omitted field takes the
    configured default (TOKENLEDGER_DEFAULT_*, and follows it when it changes); `null` means none
    (no dollar budget, no cap); `0` means none allowed. downgrade_to/downgrade_at: the
    budget-aware downgrade for this user alone (beats their plan's; docs/budgets.md)."""

    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    downgrade_at: Number | None = Field(default=None, gt=0, le=1)


def _uid(uid: str) -> str:
    if not UID_RE.fullmatch(uid):
        raise ApiError(400, "invalid_user_id", "The user id in the path is not a valid Firebase uid.")
    return uid


def _page(fetch, asked: query.PageQuery):
    try:
        items, next_token = fetch(asked.limit, asked.page_token)
    except LookupError:
        raise ApiError(400, "invalid_page_token", "page_token does not name an alert; start again without it.")
    return jsonify({"data": items, "next_page_token": next_token})


def budget_json(uid: str, budget: rules.Budget, doc: dict | None) -> dict:
    limit = budget.monthly_budget_nanos
    stamps = {k: (doc or {}).get(k) for k in ("created_at", "updated_at")}
    return {
        "user_id": uid,
        "monthly_budget": None if limit is None else money.usd_float(limit),
        "alert_thresholds": [float(t) for t in budget.alert_thresholds],
        "enforce": budget.enforce,
        "email": budget.email,
        "free_daily_requests": budget.free_daily_requests,
        "requests_per_minute": budget.requests_per_minute or None,
        "max_in_flight": budget.max_in_flight or None,
        "source": budget.source,
        **{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in stamps.items()},
    }


@bp.get("/v1/budget")
def my_budget():
    svc = services()
    caller = current_caller()
    now = svc.now()
    month, day = now.strftime("%Y-%m"), now.strftime("%Y-%m-%d")
    try:
        budget = admission.read_budget(svc.db, caller.uid, svc.settings, caller_plan(svc, caller, now))
        totals = reservations.read_month(svc.db, caller.uid, month, retry=admission.QUICK_RETRY)
        free_today = reservations.free_requests_today(svc.db, caller.uid, day)
        # `reserved` is what calls in progress hold: not what instances keep leased for the next ones.
        leased = reservations.leased_nanos(svc.db, caller.uid, month, retry=admission.QUICK_RETRY)
    except (admission.BudgetUnavailable, gexc.GoogleAPIError, gexc.RetryError):
        raise ApiError(503, "budget_unavailable", "Your budget cannot be read right now; retry in a moment.",
                       {"Retry-After": "5"})
    return jsonify(rules.status(budget, month, totals.cost_nanos, totals.reserved_nanos - leased, free_today))


@bp.put("/v1/admin/budgets/<uid>")
def put_budget(uid: str):
    svc = services()
    admin = require_admin()
    uid = _uid(uid)
    body = validation.json_body(svc.settings)
    update = validation.validated(BudgetUpdate, body, "invalid_budget")
    doc: dict = {name: firestore.DELETE_FIELD for name in rules.BUDGET_FIELDS}  # omitted: the default
    doc["monthly_budget_nanos"] = firestore.DELETE_FIELD
    doc.update(stored_fields(update, (*PLAIN_FIELDS, "email")))
    if update.downgrade_to is not None and not validation.is_allowed(update.downgrade_to, svc.settings):
        raise ApiError(400, "invalid_budget", f"downgrade_to: the model '{update.downgrade_to}' is not allowed "
                       "by this app.")
    doc["updated_at"] = firestore.SERVER_TIMESTAMP
    ref = store.budget_doc(svc.db, uid)
    months = copies.copy_months(svc.now())
    before = ref.get()
    old = before.to_dict() if before.exists else None

    def logged(batch):  # the audit log's entry, in the commit of the change
        audit.add(batch, svc.db, admin.uid, admin.email, "put", ref.path, old, audit.plain(doc), svc.now())

    # The budget and its copy on this month's document (read by the scheduled check) in one
    # batch: both or neither (budgets/copies.py).
    try:
        copies.write_budget(svc.db, uid, months, doc, created=True, also=logged)
        status = 201
    except gexc.AlreadyExists:  # an update keeps the first created_at and drops what was omitted
        copies.write_budget(svc.db, uid, months, doc, created=False, also=logged)
        status = 200
    svc.gate.budgets.forget(uid)  # in force at once on this instance; elsewhere within the cache time
    stored = ref.get().to_dict()
    response = jsonify(budget_json(uid, rules.budget_from_doc(stored, svc.settings), stored))
    response.status_code = status
    return response


@bp.get("/v1/admin/budgets/<uid>")
def get_budget(uid: str):
    svc = services()
    require_admin()
    uid = _uid(uid)
    snap = store.budget_doc(svc.db, uid).get()
    doc = snap.to_dict() if snap.exists else None
    return jsonify(budget_json(uid, rules.budget_from_doc(doc, svc.settings), doc))


@bp.get("/v1/alerts")
def my_alerts():
    svc = services()
    caller = current_caller()
    return _page(lambda limit, token: alerts.list_for_user(svc.db, caller.uid, limit, token), query.parse(query.PageQuery))


@bp.get("/v1/admin/alerts")
def admin_alerts():
    svc = services()
    require_admin()
    asked = query.parse(query.AlertsQuery)
    month = asked.month or svc.now().strftime("%Y-%m")
    return _page(lambda limit, token: alerts.list_for_month(svc.db, month, limit, token), asked)

