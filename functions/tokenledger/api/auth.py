"""Who is calling: the Firebase ID token in `Authorization: Bearer ...`, verified by firebase_admin.

The uid always comes from the verified token, never from the request body. A token stays valid
for up to an hour after its user is disabled or its tokens are revoked, so the user's Auth record
is looked up too (UserStanding) — once per uid per instance per TOKENLEDGER_REVOCATION_CACHE_S,
not on every call: that lookup is a round trip to the Auth backend (see docs/budgets.md). A chat
call runs it beside the budget gate's round trip and waits for it before anything goes upstream
(caller_standing_pending): a revoked user is still refused before OpenRouter, at no added latency.
Optionally a Firebase App Check token is required as well (TOKENLEDGER_ENFORCE_APP_CHECK).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from firebase_admin import app_check as fb_app_check
from firebase_admin import auth as fb_auth
from flask import request

from tokenledger import background
from tokenledger.api.context import services
from tokenledger.api.errors import ApiError
from tokenledger.budgets.plans import claimed_plan

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tokenledger"'}


@dataclass(frozen=True)
class Caller:
    uid: str
    admin: bool = False
    email: str | None = None
    plan_claim: str | None = None  # the plan the token's custom claim names (TOKENLEDGER_PLAN_CLAIM)


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


@dataclass(frozen=True)
class Standing:
    """What the Auth backend said about a user, and when (the request clock, in seconds)."""

    disabled: bool
    tokens_valid_after_ms: int  # tokens issued before this (ms since epoch) are revoked
    checked_at: float


class UserStanding:
    """Per-instance cache of each user's Auth record: disabled? tokens revoked since when?

    A user disabled or revoked is refused within `ttl_s` on every instance. Bounded: at most
    `max_users` entries (the oldest go first)."""

    def __init__(self, ttl_s: int, lookup=None, max_users: int = 10_000):
        self.ttl_s = ttl_s
        self.lookup = lookup or fb_auth.get_user
        self.max_users = max_users
        self.lookups = 0  # Auth backend round trips made (for the bench)
        self._entries: dict[str, Standing] = {}
        self._lock = threading.Lock()

    def cached(self, uid: str, now: float) -> Standing | None:
        entry = self._entries.get(uid)
        return entry if entry is not None and 0 <= now - entry.checked_at < self.ttl_s else None

    def get(self, uid: str, now: float) -> Standing:
        entry = self.cached(uid, now)
        if entry is not None:
            return entry
        try:
            record = self.lookup(uid)
        except fb_auth.UserNotFoundError:
            entry = Standing(disabled=True, tokens_valid_after_ms=0, checked_at=now)  # deleted user
        else:
            entry = Standing(bool(record.disabled), int(record.tokens_valid_after_timestamp or 0), now)
        self.lookups += 1
        with self._lock:
            if len(self._entries) >= self.max_users:
                for old in sorted(self._entries, key=lambda k: self._entries[k].checked_at)[: self.max_users // 10 + 1]:
                    self._entries.pop(old, None)
            self._entries[uid] = entry
        return entry

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


_standing: UserStanding | None = None


def user_standing() -> UserStanding:
    global _standing
    if _standing is None:
        _standing = UserStanding(services().settings.revocation_cache_s)
    return _standing


def check_standing(claims: dict, uid: str) -> None:
    """Refuse a disabled user, and a token issued before the user's tokens were revoked."""
    judge_standing(claims, lambda: user_standing().get(uid, services().now().timestamp()))


def start_standing(uid: str) -> Future:
    """The user's standing: at once when this instance looked it up within the cache time, else
    its lookup started beside the call's other round trips (background.py); judge_standing waits."""
    standing = user_standing()
    now = services().now().timestamp()
    cached = standing.cached(uid, now)
    return background.done(cached) if cached is not None else background.submit(standing.get, uid, now)


def judge_standing(claims: dict, standing_of) -> None:
    """Raises the refusal of a disabled or revoked user; `standing_of()` gives their Standing."""
    try:
        standing = standing_of()
    except (fb_auth.UserNotFoundError, ValueError):
        raise ApiError(401, "invalid_token", "The ID token names no user.", CHALLENGE)
    except Exception:  # noqa: BLE001 - Auth backend unreachable: fail closed, never let a revoked user in
        raise ApiError(503, "auth_unavailable", "Could not verify the token right now; retry shortly.",
                       {"Retry-After": "5"})
    if standing.disabled:
        raise ApiError(403, "user_disabled", "This account is disabled.")
    issued_ms = int(claims.get("iat", 0)) * 1000
    if issued_ms < standing.tokens_valid_after_ms:
        raise ApiError(401, "token_revoked", "The ID token was revoked; sign in again.", CHALLENGE)


APP_CHECK_HEADER = "X-Firebase-AppCheck"


def check_app_check() -> None:
    """With TOKENLEDGER_ENFORCE_APP_CHECK, every call must carry a valid App Check token."""
    if services().settings.enforce_app_check:
        require_app_check(request.headers.get(APP_CHECK_HEADER, ""))


def require_app_check(token: str, verify=None) -> None:
    """Refuse a missing or invalid App Check token (`verify`: firebase_admin's by default)."""
    token = token.strip()
    if not token:
        raise ApiError(401, "app_check_required", f"Send a Firebase App Check token in {APP_CHECK_HEADER}.")
    try:
        (verify or fb_app_check.verify_token)(token)
    except Exception:  # noqa: BLE001 - any failure to verify is a refusal
        raise ApiError(401, "app_check_invalid", "The App Check token is not valid for this project.")


def current_caller() -> Caller:
    caller, claims = _verified()
    check_standing(claims, caller.uid)
    return caller


def caller_standing_pending() -> tuple[Caller, Callable[[], None]]:
    """The caller, and the check of their standing still running (a chat call's gate runs beside
    it): call the second before anything is sent upstream; it raises the caller's refusal."""
    caller, claims = _verified()
    pending = start_standing(caller.uid)
    return caller, lambda: judge_standing(claims, pending.result)


def _verified() -> tuple[Caller, dict]:
    """The caller named by a valid ID token (no network: Google's certificates are cached)."""
    check_app_check()
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
    return Caller(uid=uid, admin=claims.get("admin") is True, email=claims.get("email"),
                  plan_claim=claimed_plan(claims, services().settings.plan_claim)), claims


def require_admin() -> Caller:
    caller = current_caller()
    if not caller.admin:
        raise ApiError(403, "forbidden", "This route is for administrators (custom claim admin: true).")
    return caller
