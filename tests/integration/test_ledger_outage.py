"""The soak of the self-healing ledger: Firestore frozen (SIGSTOP) for 6 s and for 30 s under 400
mixed plain and streamed calls from 20 users at concurrency 10. Within 2 minutes after it thaws,
with nobody running a tool, every call OpenRouter billed (the stand-in's own list) is in
`usage_tracking` exactly once at its charged cost, every user's month rollup equals their rows,
and nothing is left reserved beyond the leases instances keep between calls.

The api is served by functions-framework as Cloud Run serves it (one instance, its threads sharing
the leases: calls admitted from a lease make no Firestore read, so they reach OpenRouter and the
ledger during the outage — the calls at stake); heal_usage runs in the Functions emulator on the
Pub/Sub emulator's deliveries, and everything talks to the one Firestore emulator being frozen.

Minutes of machine time: marked slow (`make test` runs it; `pytest -m "not slow"` skips it).
The same run prints its figures with `make bench ARGS=outage`.
"""
from __future__ import annotations

import pytest

from scripts.devkit import outage

from .served_api import served_api

pytestmark = pytest.mark.slow

USERS = 20
HEAL_WINDOW_S = 120  # after the last thaw


@pytest.fixture()
def instance(stack, tmp_path):
    """One `api` instance with the stack's settings, serving up to 40 calls at once."""
    log_path = tmp_path / "api.log"
    with served_api(log_path) as base:
        yield base, log_path


def test_a_frozen_firestore_loses_no_billed_call_and_needs_nobody(instance, stack, api, auth, db, standin):
    base, log_path = instance
    admin = auth.create_user("soak-admin", admin=True)
    run, figures, healed_s = outage.soak(base, api, admin, auth, standin, db,
                                         int(stack.firestore_host.rsplit(":", 1)[1]), USERS, HEAL_WINDOW_S)
    answers = run.answers
    counts = outage.answer_counts(answers)
    print("answers", counts, "frozen", run.frozen_s, "settled after thaw (s)", healed_s,
          "ledger", {k: v if isinstance(v, int) else len(v) for k, v in figures.items()})

    assert len(answers) == 400 and len(run.frozen_s) == 2 and run.frozen_s[0] >= 6 and run.frozen_s[1] >= 30
    answered = [a for a in answers if a.status == 200]
    # Every answer the ledger had to leave says so, and none relies on the log: the outbox took it.
    assert {a.recorded for a in answered} <= {"true", "queued"}, counts
    assert all(a.budget for a in answered), counts  # plain `budget`, and the stream's usage chunk
    assert figures["billed"] >= len(answered) > 0
    assert figures["missing"] == [] and figures["wrong_cost"] == [] and figures["unbilled_rows"] == []
    assert figures["rows"] == figures["billed"]
    assert figures["rollups_off"] == [] and figures["reservations_left"] == []
    assert healed_s is not None and healed_s <= HEAL_WINDOW_S
    # The outage did bite: some calls could only be recorded by the outbox, and the log has none.
    assert figures["healed_rows"] >= 1 and any(a.recorded == "queued" for a in answered)
    assert "usage_not_recorded" not in log_path.read_text()
