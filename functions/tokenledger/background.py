"""One small pool of threads for the round trips a call makes side by side (the Auth lookup, the
budget read, the gate's commit: docs/performance.md) and for work that must not wait on a call's
path (a lease renewed ahead). Network waits only: the threads release the GIL while they wait.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

# Enough for every call in flight on an instance (API_CONCURRENCY) to have its side round trips
# running at once; more only queue behind the Firestore channel.
MAX_WORKERS = 64

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="tokenledger-io")
    return _pool


def submit(fn, *args, **kwargs) -> Future:
    return pool().submit(fn, *args, **kwargs)


def done(value) -> Future:
    """A future that already holds `value` (nothing to wait for)."""
    future: Future = Future()
    future.set_result(value)
    return future
