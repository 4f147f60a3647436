"""Real users and real ID tokens from the Firebase Auth emulator (its REST API)."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import requests

# The Auth emulator accepts any API key; "Bearer owner" is its admin credential.
API_KEY = "fake-api-key"
OWNER = {"Authorization": "Bearer owner"}


@dataclass
class User:
    uid: str
    email: str
    password: str
    id_token: str
    admin: bool = False

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.id_token}"}


class AuthEmulator:
    def __init__(self, host: str, project: str, session: requests.Session | None = None):
        self.base = f"http://{host}"
        self.project = project
        self.http = session or requests.Session()

    def _post(self, path: str, body: dict, headers: dict | None = None) -> dict:
        response = self.http.post(f"{self.base}{path}", params={"key": API_KEY}, json=body, headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()

    def create_user(self, name: str = "user", admin: bool = False) -> User:
        return self.sign_up(f"{name}-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex, admin)

    def sign_up(self, email: str, password: str, admin: bool = False) -> User:
        data = self._post(
            "/identitytoolkit.googleapis.com/v1/accounts:signUp",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        user = User(uid=data["localId"], email=email, password=password, id_token=data["idToken"])
        if admin:
            self.set_claims(user.uid, {"admin": True})
            user.admin = True
            self.refresh(user)
        return user

    def set_claims(self, uid: str, claims: dict) -> None:
        self._post(
            f"/identitytoolkit.googleapis.com/v1/projects/{self.project}/accounts:update",
            {"localId": uid, "customAttributes": json.dumps(claims)},
            headers=OWNER,
        )

    def disable(self, uid: str) -> None:
        self._post(
            f"/identitytoolkit.googleapis.com/v1/projects/{self.project}/accounts:update",
            {"localId": uid, "disableUser": True},
            headers=OWNER,
        )

    def revoke_tokens(self, uid: str, valid_since: int) -> None:
        """Tokens issued before `valid_since` (epoch seconds) are revoked (as revokeRefreshTokens does)."""
        self._post(
            f"/identitytoolkit.googleapis.com/v1/projects/{self.project}/accounts:update",
            {"localId": uid, "validSince": str(valid_since)},
            headers=OWNER,
        )

    def refresh(self, user: User) -> User:
        """Sign in again: a new ID token carries the current custom claims."""
        data = self._post(
            "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
            {"email": user.email, "password": user.password, "returnSecureToken": True},
        )
        user.id_token = data["idToken"]
        return user
