"""Which of a user's month documents a write goes to: the base or a shard (per instance).

Two writers share the user's month documents, and this one table: the budget gate (a gated
call's reservation, budgets/reservations.py) and the ledger (the call's rollups). Each asks
`place` for every write it makes. A user's writes go to the base documents of their month and
day, as every reader always expected, as long as that keeps those documents under Firestore's
sustained write rate per document (about one per second): each instance lets a user write the
base documents at BASE_WRITES_PER_S on average, with bursts of up to BASE_BURST writes (a token
bucket per user and month). A user writing faster for longer than a burst is hot: their further
writes are spread round-robin over as many of the shards 1..USER_SHARDS-1 (store.py) as their
rate needs, while the base keeps taking its share.
Why a bucket and not "two calls less than a second apart": a user who once sends two calls at
the same moment (parallel requests, a retry) would otherwise be spread for the rest of the month
on that instance, and every read of their month (the budget gate's among them) would read every
shard. Nothing is read to decide: each instance keeps the users it served recently in a bounded
table. The first call of a user's month on an instance always goes to the base document, so
every active user-month has a base document with calls (what `active_users` counts). When an
instance spreads a user's month it also marks the base month document `sharded` in the same
batch, so readers know whom to read whole (a gate whose reservation lands on an unmarked base
reads the base alone). Every spread write carries the mark until the caller reports a batch with
it committed (`marked`): a first spread batch that never commits (a failed gate commit, a call
the ledger cannot record) must not leave later shard writes unmarked. One extra write per
instance and user-month, a few more only while such batches fail.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from tokenledger import store

# The base documents' share of one user's writes on one instance: 0.8 a second on average (below
# Firestore's ~1 sustained write per second per document: the sharded mark and alert flags
# write there too), in bursts of up to 4 writes.
BASE_WRITES_PER_S = 0.8
BASE_BURST = 4.0
# Spread writes go round as few shards as keep each at SHARD_WRITES_PER_S, by the rate of the
# last RATE_WINDOW_S: a user at 3 calls/s uses a handful, one at 20 calls/s all of them. Readers
# of a hot month query the documents that exist (budgets/reservations.py), so fewer shards are
# fewer reads. Each instance starts its range at a random shard: instances serving one user
# spread over different shards instead of all piling onto the first ones.
SHARD_WRITES_PER_S = 0.8
RATE_WINDOW_S = 2.0
MAX_TRACKED_USERS = 10_000


@dataclass
class _UserMonth:
    last: float  # when the bucket was last filled
    tokens: float  # base writes this user may make right now
    turn: int = 0  # calls spread so far (round-robin position)
    marked: bool = False  # a batch carrying the `sharded` mark committed (see `marked`)
    start: int = 0  # this instance's first shard for the user (0-based among the shards)
    width: int = 1  # how many shards the spread writes go round (only grows)
    recent: deque = field(default_factory=deque)  # times of the spread writes in the rate window


class HotUsers:
    def __init__(self, shards: int, clock=time.monotonic, max_users: int = MAX_TRACKED_USERS,
                 first_shard=None):
        self.shards = shards
        self.clock = clock
        self.max_users = max_users
        # where a user's range starts on this instance (tests pin it)
        self.first_shard = first_shard or (lambda count: random.randrange(count))
        self._last: OrderedDict[tuple[str, str], _UserMonth] = OrderedDict()
        self._lock = threading.Lock()

    def shard_for(self, uid: str, month: str) -> int:
        """0 (the base document) or a shard 1..shards-1 for this call of `uid` in `month`."""
        return self.place(uid, month)[0]

    def place(self, uid: str, month: str) -> tuple[int, bool]:
        """(shard, mark): `mark` is True for a spread call until a batch carrying the mark was
        reported committed (`marked`): the caller marks the base document in the same batch."""
        now = self.clock()
        key = (uid, month)
        with self._lock:
            seen = self._last.pop(key, None)
            if seen is None:
                seen = _UserMonth(now, BASE_BURST, start=self.first_shard(max(self.shards - 1, 1)))
            seen.tokens = min(BASE_BURST, seen.tokens + (now - seen.last) * BASE_WRITES_PER_S)
            seen.last = now
            hot = seen.tokens < 1.0 and self.shards > 1
            if hot:
                seen.turn += 1
                self._widen(seen, now)
            else:
                seen.tokens -= 1.0
            self._last[key] = seen
            if len(self._last) > self.max_users:
                self._last.popitem(last=False)  # the least recently seen user
        if not hot:
            return 0, False
        return 1 + (seen.start + (seen.turn - 1) % seen.width) % (self.shards - 1), not seen.marked

    def _widen(self, seen: _UserMonth, now: float) -> None:
        """Enough shards for the spread writes' rate over the window (at least a quarter second
        of it, so two writes at once do not read as an infinite rate)."""
        seen.recent.append(now)
        while seen.recent and now - seen.recent[0] > RATE_WINDOW_S:
            seen.recent.popleft()
        rate = len(seen.recent) / max(now - seen.recent[0], 0.25)
        seen.width = min(max(seen.width, math.ceil(rate / SHARD_WRITES_PER_S)), self.shards - 1)

    def marked(self, uid: str, month: str) -> None:
        """A batch carrying the user's `sharded` mark for this month committed: later spread
        writes need not carry it (a user forgotten by the table is marked again: harmless)."""
        with self._lock:
            seen = self._last.get((uid, month))
            if seen is not None:
                seen.marked = True


# This instance's table, shared by the budget gate and the ledger (tests replace it).
PLACEMENT = HotUsers(store.USER_SHARDS)
