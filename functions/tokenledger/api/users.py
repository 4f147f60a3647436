"""Users for administrators, from Firebase Auth (not Firestore): GET /v1/admin/users?email=
finds one user by email; GET /v1/admin/users?uids=a,b,c gives the emails (and plans) of up to
100 users at once — the admin page shows emails beside the uids of its top users."""
from __future__ import annotations

from firebase_admin import auth as fb_auth
from flask import Blueprint, jsonify, request

from tokenledger.api.auth import require_admin
from tokenledger.api.context import services
from tokenledger.api.errors import ApiError
from tokenledger.budgets.plans import claimed_plan

bp = Blueprint("users", __name__)
MAX_UIDS = 100
EMAIL_MAX = 254


def user_json(record) -> dict:
    claims = record.custom_claims or {}
    return {
        "user_id": record.uid,
        "email": record.email,
        "disabled": bool(record.disabled),
        "admin": claims.get("admin") is True,
        "plan_claim": claimed_plan(claims, services().settings.plan_claim),
    }


@bp.get("/v1/admin/users")
def find_users():
    require_admin()
    email = request.args.get("email", "").strip()
    uids = [u for u in request.args.get("uids", "").split(",") if u]
    if bool(email) == bool(uids):
        raise ApiError(400, "invalid_query", "Ask for one user by 'email', or for 'uids' (comma-separated).")
    try:
        if email:
            if len(email) > EMAIL_MAX or "@" not in email:
                raise ApiError(400, "invalid_query", "'email' is not an email address.")
            try:
                return jsonify({"data": [user_json(fb_auth.get_user_by_email(email))]})
            except fb_auth.UserNotFoundError:
                return jsonify({"data": []})
        if len(uids) > MAX_UIDS or any(len(u) > 128 for u in uids):
            raise ApiError(400, "invalid_query", f"At most {MAX_UIDS} uids, each a Firebase uid.")
        found = fb_auth.get_users([fb_auth.UidIdentifier(u) for u in uids])
    except (ValueError, fb_auth.UserNotFoundError) as exc:
        raise ApiError(400, "invalid_query", f"Not a valid query: {str(exc)[:200]}")
    except ApiError:
        raise
    except Exception:  # noqa: BLE001 - the Auth backend is down: say so, never a 500
        raise ApiError(503, "auth_unavailable", "User records cannot be read right now; retry shortly.",
                       {"Retry-After": "5"})
    return jsonify({"data": [user_json(record) for record in found.users]})
