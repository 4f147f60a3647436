"""jobs.emulator_probe: which scheduled runs are the Functions emulator's start-up probe."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tokenledger import jobs


@pytest.mark.parametrize(
    "in_emulator, job_name, skipped",
    [
        ("true", None, True),  # the emulator's probe when a worker starts: no job name
        ("true", "", True),
        ("true", "projects/p/locations/us-central1/jobs/firebase-schedule-check_budgets", False),
        (None, None, False),  # Cloud Scheduler always names the job; never skip in production
        (None, "projects/p/locations/us-central1/jobs/firebase-schedule-check_budgets", False),
    ],
)
def test_only_the_emulators_nameless_run_is_skipped(monkeypatch, in_emulator, job_name, skipped):
    if in_emulator:
        monkeypatch.setenv("FUNCTIONS_EMULATOR", in_emulator)
        monkeypatch.setenv("FIREBASE_DEBUG_MODE", "true")
    else:
        monkeypatch.delenv("FUNCTIONS_EMULATOR", raising=False)
    assert jobs.emulator_probe(SimpleNamespace(job_name=job_name)) is skipped
