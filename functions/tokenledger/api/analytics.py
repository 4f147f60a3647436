"""Analytics routes: a user's usage and export, cost estimates, and the admin views.

Summaries are read from rollups (summaries.py); the export streams rows page by page, so
neither memory nor the response time to first byte grows with the collection.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from tokenledger.analytics import estimate, figures, summaries
from tokenledger.analytics import export as export_format
from tokenledger.api import chat_steps, validation
from tokenledger.api.auth import Caller, current_caller, require_admin
from tokenledger.api.context import services
from tokenledger.api.errors import ApiError
from tokenledger.metering import usage

bp = Blueprint("analytics", __name__)

TOP_USERS_DEFAULT = 10
TOP_USERS_MAX = 100
ALL_USERS = "*"
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _range_error(exc: figures.RangeError) -> ApiError:
    return ApiError(400, exc.code, exc.message)


def _span() -> figures.DateRange:
    svc = services()
    try:
        return figures.date_range(
            request.args.get("from"), request.args.get("to"), svc.now().date(), svc.settings.analytics_max_days
        )
    except figures.RangeError as exc:
        raise _range_error(exc)


def _granularity() -> str:
    value = request.args.get("granularity", "day")
    if value not in figures.GRANULARITIES:
        raise ApiError(400, "invalid_granularity", f"'granularity' must be one of {', '.join(figures.GRANULARITIES)}.")
    return value


def _month() -> str:
    value = request.args.get("month")
    if value is None:
        return services().now().strftime("%Y-%m")
    try:
        return figures.parse_month(value)
    except figures.RangeError as exc:
        raise _range_error(exc)


def _usage_answer(uid: str):
    span, granularity = _span(), _granularity()
    return jsonify(summaries.user_usage(services().db, uid, span, granularity))


def _own_user(caller: Caller) -> None:
    asked = request.args.get("user")
    if asked not in (None, "", caller.uid):
        raise ApiError(403, "forbidden", "You can only read your own usage.")


@bp.get("/v1/usage")
def my_usage():
    caller = current_caller()
    _own_user(caller)
    return _usage_answer(caller.uid)


@bp.get("/v1/admin/usage/<uid>")
def user_usage(uid: str):
    require_admin()
    return _usage_answer(uid)


@bp.get("/v1/admin/top-users")
def top_users():
    require_admin()
    month = _month()
    raw = request.args.get("limit", str(TOP_USERS_DEFAULT))
    if not raw.isdigit() or not 1 <= int(raw) <= TOP_USERS_MAX:
        raise ApiError(400, "invalid_limit", f"'limit' must be a whole number from 1 to {TOP_USERS_MAX}.")
    return jsonify(summaries.top_users(services().db, month, int(raw)))


@bp.get("/v1/admin/totals")
def totals():
    require_admin()
    month = _month()
    return jsonify(summaries.totals(services().db, month))


def _export_subject(caller: Caller) -> str | None:
    """Whose rows: the caller's own; an admin may name any user or `*` (everyone)."""
    asked = request.args.get("user")
    if asked in (None, "", caller.uid):
        return caller.uid
    if not caller.admin:
        raise ApiError(403, "forbidden", "You can only export your own usage.")
    return None if asked == ALL_USERS else asked


def _stream(pages, fmt: str, header: dict):
    """The response body, produced page by page (no request context is used in here)."""
    if fmt == "csv":
        yield export_format.csv_lines([], header=True)
        for page in pages:
            yield export_format.csv_lines([export_format.export_row(i, d) for i, d in page])
        return
    count = 0
    yield '{"export":' + _json(header) + ',"rows":[\n'
    for page in pages:
        yield export_format.json_items([export_format.export_row(i, d) for i, d in page], first=count == 0)
        count += len(page)
    yield '\n],"count":' + str(count) + "}\n"


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


@bp.get("/v1/usage/export")
def export():
    caller = current_caller()
    svc = services()
    span = _span()
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        raise ApiError(400, "invalid_format", "'format' must be csv or json.")
    subject = _export_subject(caller)
    pages = summaries.export_pages(svc.db, subject, span, svc.settings.export_page_size)
    header = {"user": subject or ALL_USERS, "from": span.start.isoformat(), "to": span.end.isoformat()}
    name = f"usage-{subject or 'all'}-{header['from']}-{header['to']}.{fmt}"
    return Response(
        _stream(pages, fmt, header),
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        content_type=FORMATS[fmt],
    )


@bp.post("/v1/estimate")
def estimate_cost():
    current_caller()
    svc = services()
    body = validation.json_body(svc.settings)
    # The chat call's own request policy: the same refusals, and its worst case is exactly what
    # the call would reserve against an enforced budget.
    _, plan = chat_steps.plan_with_catalog(svc, body)
    return jsonify(estimate.call_estimate(plan.record_price, usage.estimate_prompt_tokens(body), plan.completion_bound,
                                          worst_nanos=plan.worst_case_nanos, is_free=plan.is_free))
