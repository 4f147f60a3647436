"""Analytics routes: a user's usage and export, cost estimates, and the admin views.

Summaries are read from rollups (summaries.py); the export streams rows page by page, so
neither memory nor the response time to first byte grows with the collection.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify

from tokenledger.analytics import estimate, figures, summaries
from tokenledger.analytics import export as export_format
from tokenledger.api import chat_steps, query, validation
from tokenledger.api.auth import Caller, current_caller, require_admin
from tokenledger.api.context import services
from tokenledger.api.errors import ApiError
from tokenledger.metering import usage

bp = Blueprint("analytics", __name__)

ALL_USERS = "*"
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _range_error(exc: figures.RangeError) -> ApiError:
    return ApiError(400, exc.code, exc.message)


def _span(asked: query.SpanQuery) -> figures.DateRange:
    svc = services()
    try:
        return figures.date_range(asked.start, asked.end, svc.now().date(), svc.settings.analytics_max_days)
    except figures.RangeError as exc:
        raise _range_error(exc)


def _month(asked: query.MonthQuery) -> str:
    return asked.month or services().now().strftime("%Y-%m")


def _usage_answer(uid: str, asked: query.UsageQuery):
    return jsonify(summaries.user_usage(services().db, uid, _span(asked), asked.granularity))


@bp.get("/v1/usage")
def my_usage():
    caller = current_caller()
    asked = query.parse(query.UsageQuery)
    if asked.user not in (None, caller.uid):
        raise ApiError(403, "forbidden", "You can only read your own usage.")
    return _usage_answer(caller.uid, asked)


@bp.get("/v1/admin/usage/<uid>")
def user_usage(uid: str):
    require_admin()
    return _usage_answer(uid, query.parse(query.UsageQuery))


@bp.get("/v1/admin/top-users")
def top_users():
    require_admin()
    asked = query.parse(query.TopUsersQuery)
    return jsonify(summaries.top_users(services().db, _month(asked), asked.limit))


@bp.get("/v1/admin/totals")
def totals():
    require_admin()
    return jsonify(summaries.totals(services().db, _month(query.parse(query.MonthQuery))))


def _export_subject(caller: Caller, asked: str | None) -> str | None:
    """Whose rows: the caller's own; an admin may name any user or `*` (everyone)."""
    if asked in (None, caller.uid):
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
    asked = query.parse(query.ExportQuery)
    span, fmt = _span(asked), asked.format
    subject = _export_subject(caller, asked.user)
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
