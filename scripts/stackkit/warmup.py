"""Warm the Firestore emulator before the stack reports ready.

The emulator is a Java program: for its first few hundred commits the JVM has not yet compiled
its write path, and each commit takes a few milliseconds longer (measured on a 2-core machine: the
peer latency comparison run right after start showed ~3 ms more per call on every path that
commits, with or without a budget, than the same run after 600 commits). Production Firestore
has no such warm-up, so measurements taken on a cold emulator would charge it to the product.
The warm-up commits merge-increments like the ledger's to a few scratch documents in
`_stack_warmup` (overwritten, not accumulated; no product query reads that collection).
"""
from __future__ import annotations

import time

COMMITS = 400
DOCS = 8


def warm_firestore(project: str, commits: int = COMMITS) -> float:
    """Run `commits` small commits against the emulator FIRESTORE_EMULATOR_HOST points at (in
    this process's environment); returns the seconds it took."""
    from google.cloud import firestore  # the functions venv's client, only when the stack starts

    db = firestore.Client(project=project)
    scratch = db.collection("_stack_warmup")
    started = time.monotonic()
    for i in range(commits):
        batch = db.batch()
        batch.set(scratch.document(f"doc-{i % DOCS}"),
                  {"n": firestore.Increment(1), "by": {"k": firestore.Increment(1)}, "at": firestore.SERVER_TIMESTAMP},
                  merge=True)
        batch.set(scratch.document(f"row-{i % DOCS}"), {"i": i, "text": "warm-up"})
        batch.commit()
    return time.monotonic() - started
