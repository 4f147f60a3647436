"""Added latency, side by side in one run: the stand-in called directly, through tokenledger's
`api` served by functions-framework (as Cloud Run serves it), and one Firestore commit of the
ledger's shape (the floor: the ledger is committed before the answer). Rounds alternate, so
drift in the machine's load hits every path alike. Then the peer comparison with LiteLLM
(../shared/bench/peer_latency.py, when that checkout exists next to the project).
"""
from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import requests
from google.cloud import firestore

from scripts.bench.common import percentile
from scripts.bench.served import served_api, served_bare_proxy
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table
from tokenledger.config import Settings
from tokenledger.metering import ledger
from tokenledger.metering.usage import CallFacts, Pricing, build_record
from tokenledger.pricing.prices import fallback_price, parse_model

ROOT = Path(__file__).resolve().parents[2]
PEER_SCRIPT = ROOT.parent / "shared" / "bench" / "peer_latency.py"
N = int(os.environ.get("BENCH_LATENCY_N", "200"))  # calls per path and concurrency
# Another checkout's functions/ (e.g. `git worktree add /tmp/before <commit>`), measured alongside.
BASELINE = os.environ.get("BENCH_BASELINE_DIR")
ROUNDS = 4
# "c=1: tokenledger-cold adds 11.45 ms p50 / 16.58 ms p95, LiteLLM 6.38 / 7.39: ..." (peer_latency.py)
PEER_LINE = re.compile(r"c=(\d+): tokenledger(-cold)? adds ([\d.]+) ms p50 / ([\d.]+) ms p95, "
                       r"LiteLLM ([\d.]+) / ([\d.]+)")
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "benchmark"}], "max_tokens": 16}
OVERHEAD_HEADER = "X-Tokenledger-Overhead-Ms"
RATE_LIMIT_SETTINGS = ("TOKENLEDGER_RATE_LIMIT_PER_MINUTE", "TOKENLEDGER_MAX_IN_FLIGHT")
PRICE = parse_model({"id": "openai/gpt-4o-mini", "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}})
FALLBACK = fallback_price("x", Decimal("0.00001"), Decimal("0.00003"))
RESPONSE = {"id": "gen", "model": "openai/gpt-4o-mini", "provider": "OpenAI", "choices": [{"finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25, "cost": 0.0000111}}


def commit_once(db, uid: str) -> None:
    """One call's ledger batch (row + month + day + global shard), as the API commits it."""
    record = build_record(
        {**RESPONSE, "id": f"gen-floor-{uuid.uuid4().hex}"},
        CallFacts(uid, "openai/gpt-4o-mini", "/v1/chat/completions", datetime.now(timezone.utc), latency_ms=5,
                  metadata={"message_count": 1}),
        Pricing(PRICE, FALLBACK),
    )
    ledger.record_usage(db, record, Settings())


class Paths:
    def __init__(self, api_base: str, users: list, db, baseline_base: str | None = None):
        self.local = threading.local()
        self.users = users
        self.next_user = 0
        self.lock = threading.Lock()
        self.key = os.environ.get("OPENROUTER_API_KEY", "")
        self.direct_url = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
        self.api_url = api_base + "/v1/chat/completions"
        self.baseline_url = baseline_base + "/v1/chat/completions" if baseline_base else None
        self.db = db
        self.bare_url = ""  # scripts/bench/bare_proxy, served beside the api (own_comparison)
        self.overheads: list[float] = []
        self.missing_header = 0
        self.fresh: list = []  # users not seen yet, one per cold call (own_comparison fills it)

    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def _user(self):
        with self.lock:
            self.next_user = (self.next_user + 1) % len(self.users)
            return self.users[self.next_user]

    def direct(self) -> None:
        r = self._session().post(self.direct_url, json={**BODY, "user": "bench"},
                                 headers={"Authorization": f"Bearer {self.key}"}, timeout=60)
        r.raise_for_status()

    def api(self) -> None:
        r = self._session().post(self.api_url, json=BODY, headers=self._user().headers, timeout=60)
        r.raise_for_status()
        value = r.headers.get(OVERHEAD_HEADER)
        with self.lock:
            if value is None:
                self.missing_header += 1
            else:
                self.overheads.append(float(value))

    def api_cold(self) -> None:
        """A call from a user this instance has not seen (nothing cached, no lease): most calls of
        a web app whose users call now and then."""
        with self.lock:
            user = self.fresh.pop()
        r = self._session().post(self.api_url, json=BODY, headers=user.headers, timeout=60)
        r.raise_for_status()

    def baseline(self) -> None:
        r = self._session().post(self.baseline_url, json=BODY, headers=self._user().headers, timeout=60)
        r.raise_for_status()

    def commit(self) -> None:
        commit_once(self.db, self._user().uid)

    def bare(self) -> None:
        r = self._session().post(self.bare_url, json={**BODY, "user": "bench"}, timeout=60)
        r.raise_for_status()


def timed(fn, count: int, concurrency: int) -> list[float]:
    import time

    def one(_):
        started = time.perf_counter()
        fn()
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(count)))


def measure(paths: Paths, concurrency: int, n: int) -> dict[str, list[float]]:
    names = {"direct": paths.direct, "tokenledger": paths.api, "cold users": paths.api_cold, "one commit": paths.commit,
             "bare proxy": paths.bare}
    if paths.baseline_url:
        names["baseline"] = paths.baseline
    for fn in names.values():
        timed(fn, 4 * concurrency, concurrency)  # warm connections and threads
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(ROUNDS):
        for name, fn in names.items():
            samples[name] += timed(fn, n // ROUNDS, concurrency)
        print(f"    c={concurrency}: round {round_no + 1}/{ROUNDS}", flush=True)
    return samples


def own_comparison(stack) -> dict:
    auth = AuthEmulator(stack.auth_host, stack.project)
    # 64 users, as ../shared/bench/peer_latency.py: each calls about once a second, like most real
    # users; one user back to back would be a hot user, whose gate also reads the month's shards.
    users = [auth.create_user(f"bench-lat{i}") for i in range(64)]
    db = firestore.Client(project=stack.project)
    rows, floor = [], {}
    with contextlib.ExitStack() as servers:
        base = servers.enter_context(served_api(name="latency-api"))
        baseline = servers.enter_context(served_api(name="latency-baseline", functions_dir=Path(BASELINE))) if BASELINE else None
        paths = Paths(base, users, db, baseline)
        paths.bare_url = servers.enter_context(served_bare_proxy(name="latency-bare-proxy"))
        for concurrency in (1, 8):
            paths.overheads.clear()
            paths.fresh = [auth.create_user("bench-cold") for _ in range(N + 4 * concurrency)]
            s = measure(paths, concurrency, N)
            floor[concurrency] = statistics.median(s["one commit"])
            rows.append(_row(concurrency, s, paths, bool(baseline)))
    print_table(
        ["concurrency", "direct p50", "API p50 / p95", "added p50 / p95", "cold users added p50 / p95",
         "one commit p50", "added minus one commit", f"{OVERHEAD_HEADER} p50", "baseline added p50",
         "bare proxy added p50"],
        rows,
        title=f"Chat latency in ms, api served by functions-framework ({N} calls per path, {ROUNDS} alternated rounds; "
              "cold users: every call from a user the instance has not seen; the bare proxy, scripts/bench/bare_proxy, "
              "is what serving any function adds)",
        numparse=False,
    )
    return floor


def _row(concurrency: int, s: dict, paths: Paths, baseline: bool) -> list:
    direct = (statistics.median(s["direct"]), percentile(s["direct"], 95))
    api = (statistics.median(s["tokenledger"]), percentile(s["tokenledger"], 95))
    cold = (statistics.median(s["cold users"]), percentile(s["cold users"], 95))
    commit = statistics.median(s["one commit"])
    overhead = statistics.median(paths.overheads) if paths.overheads else None
    return [
        concurrency, f"{direct[0]:.2f}", f"{api[0]:.2f} / {api[1]:.2f}",
        f"{api[0] - direct[0]:.2f} / {api[1] - direct[1]:.2f}", f"{cold[0] - direct[0]:.2f} / {cold[1] - direct[1]:.2f}",
        f"{commit:.2f}", f"{api[0] - direct[0] - commit:+.2f}",
        f"{overhead:.2f}" if overhead is not None else f"absent ({paths.missing_header} answers)",
        f"{statistics.median(s['baseline']) - direct[0]:.2f}" if baseline else "-",
        f"{statistics.median(s['bare proxy']) - direct[0]:.2f}",
    ]


def peer_comparison(floor: dict) -> None:
    if not PEER_SCRIPT.exists():
        print(f"\n(peer comparison skipped: {PEER_SCRIPT} not found; it lives outside the project)")
        return
    print(f"\nPeer comparison: {PEER_SCRIPT} (installs LiteLLM into .cache/ on first use)", flush=True)
    # The product's defaults (make bench turns the per-user rate limits off for the other
    # sections): the peer script's 64 users stay well inside them, and with a per-minute limit a
    # lease also counts its grant of requests.
    env = {k: v for k, v in os.environ.items() if k not in RATE_LIMIT_SETTINGS}
    proc = subprocess.Popen([sys.executable, str(PEER_SCRIPT)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**env, "N": str(N)})
    ratios = []
    for line in proc.stdout:
        print("  " + line.rstrip(), flush=True)
        match = PEER_LINE.match(line)
        if match:
            ratios.append([int(match[1]), "cold users" if match[2] else "warm (64 users)",
                           *(float(match[i]) for i in range(3, 7))])
    proc.wait()
    if ratios:
        print_table(
            ["concurrency", "traffic", "tokenledger added p50 / p95", "LiteLLM added p50 / p95", "ratio p50",
             "ratio p95", "one commit p50"],
            [[c, kind, f"{p50:.2f} / {p95:.2f}", f"{peer50:.2f} / {peer95:.2f}", f"{p50 / peer50:.2f}",
              f"{p95 / peer95:.2f}", f"{floor.get(c, float('nan')):.2f}"]
             for c, kind, p50, p95, peer50, peer95 in ratios],
            title="Peer ratio, tokenledger / LiteLLM added latency (target <= 1.00: cold p50 and warm p50 and p95, "
                  "at both concurrencies)",
            numparse=False,
        )


def run(stack) -> None:
    print("\n== Added latency (issue 11) ==")
    floor = own_comparison(stack)
    peer_comparison(floor)
