"""Issue 8/11 hot-path numbers: Firestore operations the budget gate makes per call (counted
in-process against the Firestore emulator, by path), the overhead the API reports
(X-Tokenledger-Overhead-Ms) by kind of user, and what the revocation check costs with and
without its per-instance cache (Auth emulator)."""
from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

from firebase_admin import auth as fb_auth
from google.cloud import firestore
from google.cloud.firestore_v1 import batch as fs_batch
from google.cloud.firestore_v1 import client as fs_client
from google.cloud.firestore_v1 import document as fs_document

from scripts.bench.common import summary
from scripts.devkit.api_client import ApiClient
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table
from tokenledger import config, store
from tokenledger.api.auth import UserStanding
from tokenledger.budgets import admission
from tokenledger.config import Settings

NOW = datetime(2041, 4, 10, 12, 0, 30, tzinfo=timezone.utc)
WORST = 5_000_000  # $0.005: a small paid call


class Counts:
    def __init__(self):
        self.commits = self.read_round_trips = self.docs_read = 0


@contextmanager
def counting():
    """Count commits, read round trips and documents read by the Firestore client."""
    counts = Counts()
    commit, get_all, get = fs_batch.WriteBatch.commit, fs_client.Client.get_all, fs_document.DocumentReference.get

    def counted_commit(self, *a, **k):
        counts.commits += 1
        return commit(self, *a, **k)

    def counted_get_all(self, refs, *a, **k):
        refs = list(refs)
        counts.read_round_trips += 1
        counts.docs_read += len(refs)
        return get_all(self, refs, *a, **k)

    def counted_get(self, *a, **k):
        counts.read_round_trips += 1
        counts.docs_read += 1
        return get(self, *a, **k)

    fs_batch.WriteBatch.commit, fs_client.Client.get_all = counted_commit, counted_get_all
    fs_document.DocumentReference.get = counted_get
    try:
        yield counts
    finally:
        fs_batch.WriteBatch.commit, fs_client.Client.get_all, fs_document.DocumentReference.get = commit, get_all, get


def gate_operations(db) -> list:
    settings = Settings()
    rows = []

    def measure(label: str, gate, uid: str, is_free: bool = False, worst: int = WORST, feature=None):
        with counting() as c:
            try:
                admitted = admission.admit(db, settings, gate, uid, is_free, worst, NOW, feature)
                outcome = "admitted"
            except (admission.BudgetExceeded, admission.RateLimited, admission.FreeQuotaExceeded) as exc:
                admitted, outcome = None, type(exc).__name__
        if admitted is not None:  # as the ledger would, in its own commit (not counted here)
            admission.abandon(db, gate, admitted)
        rows.append([label, outcome, c.commits, c.read_round_trips, c.docs_read])

    def user(**budget_fields) -> str:
        uid = f"bench-gate-{uuid.uuid4().hex[:8]}"
        if budget_fields:
            store.budget_doc(db, uid).set(budget_fields)
        return uid

    gate = admission.Gate(settings)
    none = user(monthly_budget=None, monthly_budget_nanos=None, free_daily_requests=None)
    measure("nothing to check, budget not cached", gate, none, feature="chat")
    measure("nothing to check, budget cached", gate, none, feature="chat")
    default = user()
    measure("default budget (enforced $1), not cached", gate, default)
    measure("default budget, cached", gate, default)
    measure("default budget, cached, new feature name", gate, default, feature="new")
    measure("free model, daily quota, cached", gate, default, is_free=True)
    measure("over budget: refused 402", gate, default, worst=2_000_000_000)
    own = user(monthly_budget=5.0, monthly_budget_nanos=5_000_000_000, enforce=True, requests_per_minute=1)
    measure("own budget (differs from default), not cached", gate, own)
    measure("rate limit: first refusal 429", gate, own)
    measure("rate limit: refused again (memory)", gate, own)
    return rows


def overhead_by_user(stack, calls: int = 30, users_per_kind: int = 16) -> list:
    """Each kind's calls go round a pool of users, as real traffic does: a user calling back to
    back past a burst would be a hot user, whose month (shards) the gate reads whole."""
    auth = AuthEmulator(stack.auth_host, stack.project)
    api = ApiClient(stack.api_url)
    admin = auth.create_user("bench-admin", admin=True)
    users = {
        "nothing to check": [auth.create_user(f"bench-none{i}") for i in range(users_per_kind)],
        "enforced budget (default)": [auth.create_user(f"bench-default{i}") for i in range(users_per_kind)],
    }
    for user in users["nothing to check"]:
        api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin,
                    json={"monthly_budget": None, "free_daily_requests": None, "requests_per_minute": None})
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "benchmark"}], "max_tokens": 16}
    samples = {name: [] for name in users}
    first_calls = []
    for _ in range(5):  # a fresh user: budget not cached, Auth record not cached
        fresh = auth.create_user("bench-fresh")
        response = api.request("POST", "/v1/chat/completions", fresh, json=body)
        response.raise_for_status()
        first_calls.append(float(response.headers["X-Tokenledger-Overhead-Ms"]))
    for pool in users.values():
        for user in pool:
            api.request("POST", "/v1/chat/completions", user, json=body).raise_for_status()  # warm
    for i in range(calls):
        for name, pool in users.items():
            response = api.request("POST", "/v1/chat/completions", pool[i % len(pool)], json=body)
            response.raise_for_status()
            samples[name].append(float(response.headers["X-Tokenledger-Overhead-Ms"]))
    rows = [["first call of a fresh user (nothing cached)", *(f"{v:.1f}" for v in summary(first_calls)[:2])]]
    for name, values in samples.items():
        rows.append([name + ", warm", *(f"{v:.1f}" for v in summary(values)[:2])])
    return rows


def revocation_cost(stack, lookups: int = 100) -> list:
    config.init()
    auth = AuthEmulator(stack.auth_host, stack.project)
    uid = auth.create_user("bench-standing").uid
    rows = []
    for label, ttl in (("no cache (every call asks Auth)", 0), ("cached 60 s (the default)", 60)):
        standing = UserStanding(ttl_s=ttl, lookup=fb_auth.get_user)
        samples = []
        for i in range(lookups):
            started = time.perf_counter()
            standing.get(uid, 1000.0 + i * 0.1)
            samples.append((time.perf_counter() - started) * 1000)
        p50, p95, mean = summary(samples)
        rows.append([label, f"{p50:.3f}", f"{p95:.3f}", f"{mean:.3f}", standing.lookups])
    return rows


def run(stack) -> None:
    db = firestore.Client(project=stack.project)
    print("\n== Hot path (issues 8 and 11) ==")
    print_table(
        ["call", "outcome", "commits", "read round trips", "documents read"],
        gate_operations(db),
        title="Firestore operations of the budget gate before the call (the ledger's one commit after it is "
              "not counted; the post-call budget object costs no read)",
        numparse=False,
    )
    print_table(
        ["user", "overhead p50 ms", "overhead p95 ms"],
        overhead_by_user(stack),
        title="X-Tokenledger-Overhead-Ms through the Functions emulator (time outside the upstream call)",
        numparse=False,
    )
    print_table(
        ["revocation check", "p50 ms", "p95 ms", "mean ms", "Auth lookups / 100 calls"],
        revocation_cost(stack),
        title="Disabled/revoked check per call (Auth emulator), 100 calls of one user 0.1 s apart",
        numparse=False,
    )
