"""Round trips before OpenRouter, per kind of call (issue 21): how many a call makes, how many it
waits for one after another (its critical path), and what runs off its path. Measured in the
counting server (serve.py, roundtrips.py) on real emulators; README's benchmarks and
docs/performance.md turn the waits into a production estimate."""
from __future__ import annotations

import statistics
import time

from scripts.devkit.table import print_table

PAUSE_S = 0.4  # background work a call started (a give-back, a renewal) lands within this
USERS = 5


def _trips(http, base: str) -> list:
    from scripts.bench.roundtrips import Trip

    return [Trip(*row) for row in http.post(f"{base}/_bench/trips", timeout=10).json()]


def _measure(http, base: str, send) -> tuple[int, int, str, str, int]:
    """One call through `send()`: (round trips before, waves, the waves, off the path, status)."""
    from scripts.bench.roundtrips import after_answer, critical_path

    _trips(http, base)
    status = send()
    time.sleep(PAUSE_S)
    trips = _trips(http, base)
    count, waves, shape = critical_path(trips)
    return count, waves, " then ".join(shape) or "-", ", ".join(after_answer(trips)) or "-", status


def run(api, auth, admin, http, base: str, body: dict) -> None:
    def chat(user) -> int:
        return api.request("POST", "/v1/chat/completions", user, json=body).status_code

    def budget(user, **fields) -> None:
        api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin, json=fields).raise_for_status()

    kinds: dict[str, list] = {}
    for _ in range(USERS):
        cold = auth.create_user("bench-path")
        kinds.setdefault("cold: first call on the instance (default budget, enforced)", []).append(
            _measure(http, base, lambda: chat(cold)))
        kinds.setdefault("warm: from the instance's lease", []).append(_measure(http, base, lambda: chat(cold)))
        own = auth.create_user("bench-path")
        budget(own, monthly_budget=1000, enforce=True)
        kinds.setdefault("cold: own budget document, enforced", []).append(_measure(http, base, lambda: chat(own)))
        renewing = auth.create_user("bench-path")  # a grant of 2 requests per lease: renewed every 2nd call
        budget(renewing, monthly_budget=1000, enforce=True, requests_per_minute=8)
        chat(renewing)
        kinds.setdefault("lease ran out on this call: renewed after it, off its path", []).append(
            _measure(http, base, lambda: chat(renewing)))
        kinds.setdefault("next call: from the lease renewed ahead", []).append(
            _measure(http, base, lambda: chat(renewing)))
        poor = auth.create_user("bench-path")
        budget(poor, monthly_budget=0.000001, enforce=True)
        kinds.setdefault("refused (402): budget below the call's worst case", []).append(
            _measure(http, base, lambda: chat(poor)))
    rows = []
    for name, runs in kinds.items():
        counts, waves = [r[0] for r in runs], [r[1] for r in runs]
        shape = statistics.mode([r[2] for r in runs])
        rows.append([name, f"{statistics.median(counts):g}", f"{statistics.median(waves):g} (max {max(waves)})",
                     shape, statistics.mode([r[3] for r in runs]), statistics.mode([r[4] for r in runs])])
    print_table(["call", "round trips before OpenRouter", "waited for, one after another", "the waits",
                 "off the call's path", "status"], rows,
                title=f"Round trips per call kind ({USERS} users each; 'auth+read+commit' ran side by side)",
                numparse=False)
