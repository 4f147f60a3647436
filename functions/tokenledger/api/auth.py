"""Who is calling: the Firebase ID token in `Authorization: Bearer ...`, verified by firebase_admin.

The uid always comes from the verified token, never from the request body.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from firebase_admin import auth as fb_auth
from flask import request

from tokenledger.api.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tokenledger"'}


@dataclass(frozen=True)
class Caller:
    uid: str
    admin: bool = False
    email: str | None = None


def _token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthenticated",
            "Sign in first: send the user's Firebase ID token as 'Authorization: Bearer <token>'.",
            CHALLENGE,
        )
    return token.strip()


def current_caller() -> Caller:
    token = _token()
    try:
        claims = fb_auth.verify_id_token(token)
    except fb_auth.ExpiredIdTokenError:
        raise ApiError(401, "token_expired", "The ID token has expired; refresh it and retry.", CHALLENGE)
    except fb_auth.RevokedIdTokenError:
        raise ApiError(401, "token_revoked", "The ID token was revoked; sign in again.", CHALLENGE)
    except fb_auth.CertificateFetchError:
        raise ApiError(503, "auth_unavailable", "Could not verify the token right now; retry shortly.")
    except (fb_auth.InvalidIdTokenError, ValueError):
        raise ApiError(401, "invalid_token", "The ID token is not valid for this project.", CHALLENGE)
    # firebase_admin skips the expiry check for the Auth emulator's tokens; production
    # verification does it too, so checking here changes nothing there.
    if claims.get("exp", 0) <= time.time():
        raise ApiError(401, "token_expired", "The ID token has expired; refresh it and retry.", CHALLENGE)
    uid = claims.get("uid") or claims.get("sub")
    if not uid:
        raise ApiError(401, "invalid_token", "The ID token names no user.", CHALLENGE)
    return Caller(uid=uid, admin=claims.get("admin") is True, email=claims.get("email"))


def require_admin() -> Caller:
    caller = current_caller()
    if not caller.admin:
        raise ApiError(403, "forbidden", "This route is for administrators (custom claim admin: true).")
    return caller
