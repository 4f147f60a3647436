"""A small client for the tokenledger HTTPS API, as a web app would call it."""
from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


def keep_alive_session() -> requests.Session:
    """A session that retries an idempotent request whose kept-alive connection the server had
    just closed (RemoteDisconnected), as browsers do; a POST is never sent twice."""
    session = requests.Session()
    retry = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods=frozenset({"GET", "HEAD"}),
                  raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class ApiClient:
    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.http = session or keep_alive_session()

    def request(self, method: str, path: str, user=None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if user is not None:
            headers.update(user.headers)
        return self.http.request(method, f"{self.base}{path}", headers=headers, timeout=120, **kwargs)

    def chat(self, user, model: str, text: str, **extra) -> requests.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        return self.request("POST", "/v1/chat/completions", user, json=body)
