"""Alert delivery for admins: GET /v1/admin/alerts/undelivered?month=YYYY-MM&limit=N (notify/status.py)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from tokenledger.api import query
from tokenledger.api.auth import require_admin
from tokenledger.api.context import services
from tokenledger.notify import status

bp = Blueprint("deliveries", __name__)


@bp.get("/v1/admin/alerts/undelivered")
def undelivered_alerts():
    svc = services()
    require_admin()
    asked = query.parse(query.AlertsQuery)
    month = asked.month or svc.now().strftime("%Y-%m")
    return jsonify({"month": month, "data": status.undelivered(svc.db, month, asked.limit)})
