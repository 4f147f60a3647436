"""Control of the OpenRouter stand-in: reset, settings, scripted faults, what it received."""
from __future__ import annotations

import requests


class StandinControl:
    def __init__(self, root_url: str, session: requests.Session | None = None):
        self.root = root_url.rstrip("/")
        self.http = session or requests.Session()

    def _post(self, path: str, body: dict | None = None) -> dict:
        response = self.http.post(f"{self.root}{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else {}

    def reset(self) -> None:
        self._post("/_control/reset")

    def configure(self, **settings) -> None:
        self._post("/_control/config", settings)

    def script(self, responses: list[dict], user: str | None = None) -> None:
        self._post("/_control/script", {"user": user, "responses": responses})

    def set_pricing(self, model: str, **pricing) -> dict:
        return self._post("/_control/pricing", {"model": model, "pricing": pricing})

    def key(self, api_key: str) -> dict:
        """GET /key as OpenRouter answers it (the account's usage), with the stack's key."""
        response = self.http.get(f"{self.root}/api/v1/key", headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def requests(self) -> list[dict]:
        response = self.http.get(f"{self.root}/_control/requests", timeout=10)
        response.raise_for_status()
        return response.json()["requests"]

    def generations(self, user: str | None = None) -> list[dict]:
        params = {"user": user} if user else {}
        response = self.http.get(f"{self.root}/_control/generations", params=params, timeout=10)
        response.raise_for_status()
        data = response.json()
        return data.get("generations", data) if isinstance(data, dict) else data
