"""Plan routes (admins): GET /v1/admin/plans, GET|PUT|DELETE /v1/admin/plans/<planId>, and the
audit log GET /v1/admin/audit; plus the caller's plan as every route finds it (caller_plan)."""
from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, jsonify
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import Field, field_validator

from tokenledger import store
from tokenledger.api import query, validation
from tokenledger.api.allowance import MODEL_PATTERN, PLAIN_FIELDS, AllowanceUpdate, Number, stored_fields
from tokenledger.api.auth import Caller, require_admin
from tokenledger.api.context import Services, services
from tokenledger.api.errors import ApiError
from tokenledger.audit import log as audit
from tokenledger.budgets import plans
from tokenledger.budgets.plan_book import PlansUnavailable
from tokenledger.budgets.plans import Plan
from tokenledger.policy.candidates import Tier, is_allowed

bp = Blueprint("plans", __name__)


class PlanUpdate(AllowanceUpdate):
    """The body of PUT /v1/admin/plans/<planId>: the whole plan. An omitted field takes the
    configured default (a user's own override still beats it); `null` means none."""

    allowed_models: list[str] = Field(default_factory=list, max_length=100)
    downgrade_at: Number = Field(default=1.0, gt=0, le=1)

    @field_validator("allowed_models")
    @classmethod
    def _models(cls, values: list) -> list:
        for value in values:
            if not re.fullmatch(MODEL_PATTERN, value):
                raise ValueError(f"{value[:60]!r} is not a model id or glob")
        return values


def plan_id(value: str) -> str:
    if not plans.PLAN_ID_RE.fullmatch(value):
        raise ApiError(400, "invalid_plan", "plan id: 1-64 characters of a-z, 0-9, '_' and '-'.",
                       extra={"field": "plan_id"})
    return value


def plan_doc(update: PlanUpdate, settings) -> dict:
    """What a PUT stores: only the fields the admin sent (the others follow the defaults)."""
    doc = stored_fields(update, (*PLAIN_FIELDS, "allowed_models"))
    target = doc.get("downgrade_to")
    if target is not None and not validation.is_allowed(target, settings):
        raise ApiError(400, "invalid_plan", f"downgrade_to: the model '{target}' is not allowed by this app.",
                       extra={"field": "downgrade_to"})
    if target is not None and not is_allowed(target, tuple(doc.get("allowed_models") or ())):
        raise ApiError(400, "invalid_plan", f"downgrade_to: the model '{target}' is not in the plan's allowed_models.",
                       extra={"field": "downgrade_to"})
    return doc


def plan_json(pid: str, doc: dict) -> dict:
    out = {"plan_id": pid}
    for name in plans.PLAN_FIELDS:
        if name in doc:
            out[name] = doc[name]
    for stamp in ("created_at", "updated_at"):
        value = doc.get(stamp)
        out[stamp] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def caller_plan(svc: Services, caller: Caller, now: datetime) -> Plan | None:
    """The caller's plan: their token's claim, else the default plan (from memory: plan_book.py)."""
    try:
        return svc.plans.plan_for(svc.db, caller.plan_claim, now.timestamp())
    except PlansUnavailable:
        if svc.settings.budget_fail_open:  # the operator prefers availability: the defaults, no plan
            return None
        raise ApiError(503, "budget_unavailable", "Your plan cannot be read right now; retry in a moment.",
                       {"Retry-After": "5"})


def tier_of(account_plan: Plan | None) -> Tier | None:
    if account_plan is None or not account_plan.allowed_models:
        return None
    return Tier(account_plan.plan_id, account_plan.allowed_models)


@bp.get("/v1/admin/plans")
def list_plans():
    svc = services()
    require_admin()
    snaps = svc.db.collection(store.PLANS).order_by("__name__").limit(500).stream()
    return jsonify({"data": [plan_json(s.id, s.to_dict() or {}) for s in snaps]})


@bp.get("/v1/admin/plans/<pid>")
def get_plan(pid: str):
    svc = services()
    require_admin()
    snap = store.plan_doc(svc.db, plan_id(pid)).get()
    if not snap.exists:
        raise ApiError(404, "plan_not_found", f"There is no plan '{pid}'.")
    return jsonify(plan_json(pid, snap.to_dict() or {}))


@bp.put("/v1/admin/plans/<pid>")
def put_plan(pid: str):
    svc = services()
    admin = require_admin()
    pid = plan_id(pid)
    body = validation.json_body(svc.settings)
    update = validation.validated(PlanUpdate, body, "invalid_plan", name_field=True)
    doc = plan_doc(update, svc.settings)
    ref = store.plan_doc(svc.db, pid)
    before = ref.get()
    old = before.to_dict() if before.exists else None
    stored = {**doc, "updated_at": firestore.SERVER_TIMESTAMP,
              "created_at": old.get("created_at") if old and old.get("created_at") else firestore.SERVER_TIMESTAMP}
    batch = svc.db.batch()
    if old is None:
        batch.create(ref, stored)  # two admins creating one plan at once: the second gets 409
    else:
        batch.update(ref, {**{k: firestore.DELETE_FIELD for k in old if k not in stored}, **stored},
                     option=svc.db.write_option(last_update_time=before.update_time))
    audit.add(batch, svc.db, admin.uid, admin.email, "put", ref.path, old, doc, svc.now())
    try:
        batch.commit()
    except (gexc.AlreadyExists, gexc.FailedPrecondition):
        raise ApiError(409, "plan_changed", "The plan changed while it was being saved; read it and try again.")
    svc.plans.forget()  # in force at once on this instance; elsewhere within TOKENLEDGER_PLAN_CACHE_S
    response = jsonify(plan_json(pid, ref.get().to_dict() or {}))
    response.status_code = 201 if old is None else 200
    return response


@bp.delete("/v1/admin/plans/<pid>")
def delete_plan(pid: str):
    svc = services()
    admin = require_admin()
    ref = store.plan_doc(svc.db, plan_id(pid))
    before = ref.get()
    if not before.exists:
        raise ApiError(404, "plan_not_found", f"There is no plan '{pid}'.")
    batch = svc.db.batch()
    batch.delete(ref, option=svc.db.write_option(last_update_time=before.update_time))
    audit.add(batch, svc.db, admin.uid, admin.email, "delete", ref.path, before.to_dict(), None, svc.now())
    try:
        batch.commit()
    except gexc.FailedPrecondition:
        raise ApiError(409, "plan_changed", "The plan changed while it was being deleted; read it and try again.")
    svc.plans.forget()
    return jsonify({"plan_id": pid, "deleted": True})


@bp.get("/v1/admin/audit")
def list_audit():
    svc = services()
    require_admin()
    asked = query.parse(query.PageQuery)
    try:
        items, next_token = audit.newest_first(svc.db, asked.limit, asked.page_token)
    except LookupError:
        raise ApiError(400, "invalid_page_token", "page_token does not name an audit entry; start again without it.")
    return jsonify({"data": items, "next_page_token": next_token})
