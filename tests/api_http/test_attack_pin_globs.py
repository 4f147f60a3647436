"""Through the real HTTP server: an auto-router pin of wildcard globs (about 0.4 s of CPU a
request before the bound) is a 400 naming the glob, and nothing reaches OpenRouter or the ledger."""
from __future__ import annotations

import json

from .test_api_http import CHAT, HELLO, bearer, error


def test_a_pin_of_wildcard_globs_is_a_400_naming_the_glob(client, standin, recorded):
    globs = [("*a" * 99 + "b")[:190] + str(i) for i in range(10)]
    body = {**HELLO, "plugins": [{"id": "auto-router", "allowed_models": globs}]}
    response = client.post(CHAT, data=json.dumps(body), headers={**bearer(), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert error(response)["code"] == "invalid_parameter"
    assert "plugins.auto-router.allowed_models[0]" in error(response)["message"]
    assert standin.requests() == [] and recorded == []
