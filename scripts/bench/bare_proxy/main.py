"""The floor of any proxy served as tokenledger's `api` is served: a functions-framework function
(gunicorn, as Cloud Run serves it) that forwards the request body to the OpenRouter stand-in with
httpx and relays its answer — no auth, no SDK, no policy, no budget, no ledger. The benches put
its added latency beside tokenledger's: what serving a function at all costs on this machine."""
import os

import functions_framework
import httpx
from flask import Response, request

CLIENT = httpx.Client(timeout=60)
UPSTREAM = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
HEADERS = {"Authorization": f"Bearer {os.environ.get('OPENROUTER_API_KEY') or 'sk-or-v1-local'}"}


@functions_framework.http
def proxy(_request):
    body = request.get_json()
    if not body.get("stream"):
        answer = CLIENT.post(UPSTREAM, json=body, headers=HEADERS)
        return Response(answer.content, status=answer.status_code, mimetype="application/json")
    opened = CLIENT.stream("POST", UPSTREAM, json=body, headers=HEADERS)
    upstream = opened.__enter__()

    def relay():
        try:
            for line in upstream.iter_lines():
                yield line + "\n"
        finally:
            opened.__exit__(None, None, None)

    return Response(relay(), mimetype="text/event-stream")
