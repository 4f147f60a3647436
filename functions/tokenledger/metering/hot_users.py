"""Which rollup shard a call of a user is counted in (pure, per instance).

A user calling at most about once a second writes the base documents of their month and day,
as every reader always expected. Past that rate Firestore's sustained write rate per document
(about one per second) would be exceeded, so this instance spreads the user's further calls
round-robin over the shards 1..USER_SHARDS-1 (store.py). Nothing is read to decide: each instance
keeps the last call time of the users it served recently, in a bounded table. The first call of
a user's month on an instance always goes to the base document, so every active user-month has
a base document with calls (what `active_users` counts). The first time an instance spreads a
user's month it also marks the base month document `sharded` (one extra write per instance and
user-month), so a reader listing base documents (top users) knows whom to read whole.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

# Two calls of one user less than this apart on one instance: the user is hot.
HOT_GAP_S = 1.0
MAX_TRACKED_USERS = 10_000


class HotUsers:
    def __init__(self, shards: int, clock=time.monotonic, max_users: int = MAX_TRACKED_USERS):
        self.shards = shards
        self.clock = clock
        self.max_users = max_users
        self._last: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def shard_for(self, uid: str, month: str) -> int:
        """0 (the base document) or a shard 1..shards-1 for this call of `uid` in `month`."""
        return self.place(uid, month)[0]

    def place(self, uid: str, month: str) -> tuple[int, bool]:
        """(shard, first): `first` is True for the first call this instance spreads for the user's
        month (the caller marks the base document then)."""
        now = self.clock()
        key = (uid, month)
        with self._lock:
            last, turn = self._last.pop(key, (None, 0))
            hot = last is not None and now - last < HOT_GAP_S and self.shards > 1
            if hot:
                turn += 1
            self._last[key] = (now, turn)
            if len(self._last) > self.max_users:
                self._last.popitem(last=False)  # the least recently seen user
        return (1 + (turn - 1) % (self.shards - 1), turn == 1) if hot else (0, False)
