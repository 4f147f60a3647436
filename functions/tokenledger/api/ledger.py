"""Admin route: GET /v1/admin/ledger-health, how the ledger heals (metering/health.py)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from tokenledger.api.auth import require_admin
from tokenledger.api.context import services
from tokenledger.metering import health

bp = Blueprint("ledger", __name__)


@bp.get("/v1/admin/ledger-health")
def ledger_health():
    svc = services()
    require_admin()
    return jsonify(health.ledger_health(svc.db, svc.now()))
