"""Firestore operations counted the way Firestore bills them, by wrapping the client's GAPIC
calls in this process (bench only; nothing here is imported by the functions).

Reads: one per document a get/get_all returns (found or missing), one per document a query
returns (one for an empty result), one per aggregation. Writes and deletes: one per write of a
commit; every write is also kept with its document name and time, for per-document write rates.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from scripts.bench import roundtrips

_lock = threading.Lock()


@dataclass
class Ops:
    reads: int = 0
    writes: int = 0
    deletes: int = 0
    commits: int = 0
    # (monotonic time, document path) of every write or delete
    doc_writes: list = field(default_factory=list)

    def snapshot(self) -> dict:
        with _lock:
            return {"reads": self.reads, "writes": self.writes, "deletes": self.deletes, "commits": self.commits}

    def hottest(self, since: float = 0.0) -> tuple[str, int]:
        with _lock:
            counts = Counter(path for t, path in self.doc_writes if t >= since)
        return counts.most_common(1)[0] if counts else ("", 0)

    def reset(self) -> None:
        with _lock:
            self.reads = self.writes = self.deletes = self.commits = 0
            self.doc_writes.clear()


OPS = Ops()


def _short(name: str) -> str:
    return name.split("/documents/", 1)[-1]


class _Counting:
    """Iterates a server stream, counting what each response bills (and timing it: roundtrips.py)."""

    def __init__(self, inner, per_response, minimum: int = 0, kind: str = "read", start: float | None = None):
        self._inner = inner
        # when the RPC was sent: the SDK waits for its first answer before it hands back the stream
        self._kind, self._start = kind, start if start is not None else time.monotonic()
        self._it = iter(inner)
        self._per_response = per_response
        self._minimum = minimum
        self._counted = 0

    def __iter__(self):
        return self

    def __next__(self):
        try:
            response = next(self._it)
        except StopIteration:
            roundtrips.record(self._kind, self._start)
            if self._counted < self._minimum:
                with _lock:
                    OPS.reads += self._minimum - self._counted
                self._counted = self._minimum
            raise
        n = self._per_response(response)
        if n:
            with _lock:
                OPS.reads += n
            self._counted += n
        return response

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _batch_get_reads(response) -> int:
    return 1 if response._pb.WhichOneof("result") in ("found", "missing") else 0


def _query_reads(response) -> int:
    return 1 if response._pb.HasField("document") else 0


def _aggregation_reads(response) -> int:
    return 1 if response._pb.HasField("result") else 0


def install() -> None:
    """Wrap the GAPIC Firestore client's calls (idempotent)."""
    from google.cloud.firestore_v1.services.firestore import client as gapic

    cls = gapic.FirestoreClient
    if getattr(cls, "_bench_counting", False):
        return
    cls._bench_counting = True
    originals = {name: getattr(cls, name) for name in ("batch_get_documents", "run_query", "run_aggregation_query", "commit")}

    def batch_get_documents(self, *args, **kwargs):
        start = time.monotonic()
        return _Counting(originals["batch_get_documents"](self, *args, **kwargs), _batch_get_reads, start=start)

    def run_query(self, *args, **kwargs):
        start = time.monotonic()
        return _Counting(originals["run_query"](self, *args, **kwargs), _query_reads, minimum=1, kind="query",
                         start=start)

    def run_aggregation_query(self, *args, **kwargs):
        start = time.monotonic()
        return _Counting(originals["run_aggregation_query"](self, *args, **kwargs), _aggregation_reads, minimum=1,
                         kind="query", start=start)

    def commit(self, *args, **kwargs):
        request = kwargs.get("request") or (args[0] if args else None)
        start = time.monotonic()
        result = originals["commit"](self, *args, **kwargs)
        roundtrips.record("commit", start)
        now = time.monotonic()
        writes = list(getattr(request, "writes", None) or request.get("writes", []))
        with _lock:
            OPS.commits += 1
            for write in writes:
                # proto-plus wrappers (the SDK's own writes) or raw protobufs (the ledger's)
                pb = write._pb if hasattr(write, "_pb") else write
                kind = pb.WhichOneof("operation")
                name = pb.delete if kind == "delete" else pb.update.name
                if kind == "delete":
                    OPS.deletes += 1
                else:
                    OPS.writes += 1
                OPS.doc_writes.append((now, _short(name)))
        return result

    cls.batch_get_documents = batch_get_documents
    cls.run_query = run_query
    cls.run_aggregation_query = run_aggregation_query
    cls.commit = commit
