"""A small client for the tokenledger HTTPS API, as a web app would call it."""
from __future__ import annotations

import requests


class ApiClient:
    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()

    def request(self, method: str, path: str, user=None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if user is not None:
            headers.update(user.headers)
        return self.http.request(method, f"{self.base}{path}", headers=headers, timeout=120, **kwargs)

    def chat(self, user, model: str, text: str, **extra) -> requests.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return self.request("POST", "/v1/chat/completions", user, json=body)
