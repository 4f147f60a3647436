"""A real Firestore client's next commit lands, then its acknowledgement is lost (UNAVAILABLE)
and the commit's own retry policy sends it again — what the GAPIC layer does on a connection
reset after the server applied the write."""
from __future__ import annotations

from google.api_core import exceptions as gexc
from google.api_core import gapic_v1


def lose_an_ack(db, monkeypatch) -> dict:
    """Patch `db` so that the first commit after `state["armed"] = True` loses its ack once;
    `state["lost"]` counts the acks lost."""
    api = db._firestore_api
    real_commit = api.commit
    state = {"armed": False, "lost": 0}

    def commit(*, request, metadata=(), retry=gapic_v1.method.DEFAULT, timeout=None):
        if not state["armed"]:
            return real_commit(request=request, metadata=metadata, retry=retry, timeout=timeout)
        state["armed"] = False
        lost = []

        def attempt():
            response = real_commit(request=request, metadata=metadata, retry=None, timeout=timeout)
            if not lost:
                lost.append(True)
                state["lost"] += 1
                raise gexc.ServiceUnavailable("connection reset after the commit was applied")
            return response

        return retry(attempt)()

    monkeypatch.setattr(api, "commit", commit)
    return state
