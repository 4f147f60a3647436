"""The soak of the self-healing ledger: Firestore frozen (SIGSTOP) for 6 s and for 30 s under 400
mixed plain and streamed calls from 20 users at concurrency 10. Within 2 minutes after it thaws,
with nobody running a tool, every call OpenRouter billed (the stand-in's own list) is in
`usage_tracking` exactly once at its charged cost, every user's month rollup equals their rows,
and nothing is left reserved beyond the leases instances keep between calls.

Minutes of machine time: marked slow (`make test` runs it; `pytest -m "not slow"` skips it).
The same run prints its figures with `make bench ARGS=outage`.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from scripts.devkit import outage

from .budget_helpers import put_budget

pytestmark = pytest.mark.slow

USERS = 20
HEAL_WINDOW_S = 120  # after the last thaw


def test_a_frozen_firestore_loses_no_billed_call_and_needs_nobody(stack, api, auth, db, standin):
    admin = auth.create_user("soak-admin", admin=True)
    users = [auth.create_user(f"soak{i}") for i in range(USERS)]
    for user in users:  # enforced budgets: every call holds a reservation or a lease share
        put_budget(api, admin, user.uid, monthly_budget=50, enforce=True)
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    run = outage.Outage(stack.api_url, users, int(stack.firestore_host.rsplit(":", 1)[1]))
    answers = run.run()
    uids = [u.uid for u in users]

    deadline = run.thawed_at + HEAL_WINDOW_S
    while True:
        charged = outage.billed(standin, uids)
        figures = outage.ledger_figures(db, uids, charged, month)
        if outage.settled(figures) or time.monotonic() > deadline:
            break
        time.sleep(2)
    counts = outage.answer_counts(answers)
    print("answers", counts, "frozen", run.frozen_s, "ledger", {k: v if isinstance(v, int) else len(v)
                                                                 for k, v in figures.items()})

    assert len(answers) == 400 and run.frozen_s and len(run.frozen_s) == 2
    answered = [a for a in answers if a.status == 200]
    # Every answer the ledger had to leave says so, and none relies on the log: the outbox took it.
    assert {a.recorded for a in answered} <= {"true", "queued"}, counts
    assert all(a.budget for a in answered), counts  # plain `budget`, and the stream's usage chunk
    assert figures["billed"] >= len(answered) and figures["billed"] > 0
    assert figures["missing"] == [] and figures["wrong_cost"] == [] and figures["unbilled_rows"] == []
    assert figures["rows"] == figures["billed"]
    assert figures["rollups_off"] == [] and figures["reservations_left"] == []
    # The outage did bite: some calls could only be recorded by the outbox.
    assert figures["healed_rows"] >= 1 and any(a.recorded == "queued" for a in answered)
