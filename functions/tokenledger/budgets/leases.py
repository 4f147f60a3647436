"""Budget leases: one commit reserves a slice of a user's month for this instance, and the user's
next calls on this instance are admitted against it in memory, with no commit before the call.

A lease is a reservation (budgets/reservations.py) that outlives its first call: its document
holds an amount (added to the month's `reserved_nanos`), one in-flight slot, and for a user
with a per-minute limit a grant of that minute's requests. It serves one call at a time (one
slot); an instance running several calls of one user at once holds one lease per call.

  * Admitting from a lease (take): it is idle, was taken under the budget in force, may still
    admit (ADMIT_S, and its minute for a request grant), and its amount covers the call's worst
    case. Nothing is written, nothing read.
  * Settling: the ledger's one commit moves the call's cost from the lease to the month's cost
    (reserved -= cost, the lease document's amount -= cost), so cost + reserved, the sum the
    ceiling is checked on, does not change, and the lease is idle again with what is left. It
    moves at most the call's worst case (a $0 lease, budget not enforced, moves nothing). A
    pending row (cost unknown) takes the call's worst case over from the lease instead. An
    instance keeps at most one idle lease per user: a second one closes with its call (released
    whole in that commit).
  * Renewing: a lease that can no longer admit is handed back in the commit that takes the
    next reservation (release and reserve in one commit, read back together).
  * Crashes and idle instances: the lease document expires ADMIT_S + the reservation TTL after it
    was taken (a call admitted at the last moment may run for the TTL) and the scheduled check
    releases what it still holds.

Why the ceiling holds: a lease is admitted like a reservation (cost + every reservation
committed before it + its own amount <= budget, read back in its own commit; see
reservations.py), and the calls admitted from it never hold more than its amount. Near the
ceiling there are no leases: a lease is kept only while the room left is at least
HEADROOM_SHARE times its amount; otherwise the commit keeps just the call's worst case (one
reservation per call, exact as before) and the instance's idle lease goes back in it. The
price of a lease: until renewed or expired it keeps its amount and one slot from this user's
calls on other instances — near the ceiling too when the user got there through other
instances (it is handed back only by its own instance's next reservation, or at expiry).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from tokenledger.budgets import reservations, rules

# A lease asks for the worst case of LEASE_CALLS calls like the one taking it (the setting
# TOKENLEDGER_LEASE_CALLS), and is taken only while the month's room is at least HEADROOM_SHARE
# times that: near the ceiling every call reserves its own worst case, exactly as without
# leases. An idle lease taken earlier on an instance the user no longer reaches still keeps its
# amount from them until it expires (docs/budgets.md).
HEADROOM_SHARE = 4
# Requests of a minute a lease takes for a user with a per-minute limit (at most LEASE_CALLS,
# at most 1/HEADROOM_SHARE of the limit): unused ones count against the limit until the minute
# ends, unless the lease is renewed within it (they are given back).
ADMIT_S = 60  # a lease admits calls for this long after it was taken (request clock)
RENEW_AHEAD_S = 10  # a lease is renewed this long before it (its minute, the cached budget) runs out
MAX_LEASES = 20_000  # per-instance memory bound (idle leases first to go: they expire by themselves)
MAX_SEEN = 10_000


@dataclass
class Lease:
    lease_id: str
    uid: str
    month: str
    shard: int  # the month document its amount was added to
    budget: rules.Budget  # the budget it was sized and admitted under
    nanos: int  # its amount now: what it adds to the month's reserved_nanos
    admit_until: float  # request clock, seconds
    minute: str | None  # the minute its request grant was counted in (None: no per-minute limit)
    requests: int  # requests of that minute still granted
    cost_nanos: int  # the month's cost as last seen (acquisition, or a settle that read it back)
    reserved_nanos: int  # the month's reserved as last seen, this lease's amount included
    busy: bool = True
    uncertain: bool = False  # its document's amount is not known for sure: serve the call, then drop it
    staying: bool = False  # its call is settling and it stays for the next calls (closes_with_call)
    credits_nanos: int = 0  # its wallet hold (ceiling.py) not spent yet: with `nanos`, what it covers
    credits_spent_nanos: int = 0  # spent of that hold by its calls: charged to the balance when it closes
    calls: int = 1  # calls admitted from it (a lease renewed ahead starts with its predecessor's: renewal.py)

    def reservation(self):
        """The reservation document it is, as releasing it gives it back (budgets/reservations.py)."""
        return reservations.Reservation(self.lease_id, self.uid, self.month, self.nanos, self.shard,
                           credits_nanos=self.credits_nanos + self.credits_spent_nanos,
                           credits_spent_nanos=self.credits_spent_nanos)


def ask_nanos(worst_nanos: int, budget: rules.Budget, lease_calls: int, seen_spent_nanos: int | None) -> int | None:
    """The amount a new lease asks for (0 for a budget that is not enforced), or None: no lease,
    the call reserves its own worst case (no leases configured, or this instance last saw the
    month too close to the ceiling for one)."""
    if lease_calls <= 0:
        return None
    if not budget.enforced or worst_nanos <= 0:
        return 0
    asked = worst_nanos * lease_calls
    if seen_spent_nanos is not None and budget.monthly_budget_nanos - seen_spent_nanos < asked * HEADROOM_SHARE:
        return None
    return asked


def ask_requests(budget: rules.Budget, lease_calls: int) -> int:
    """The requests of this minute a new lease asks for (1 without a per-minute limit: the call's own)."""
    if not budget.requests_per_minute:
        return 1
    return max(1, min(lease_calls, budget.requests_per_minute // HEADROOM_SHARE))


def kept_nanos(cost_nanos: int, reserved_nanos: int, asked_nanos: int, worst_nanos: int, budget_nanos: int) -> int | None:
    """What a reservation keeps of what it asked, from the month read back by its own commit
    (`reserved_nanos` includes the ask): all of it while the room left is at least
    HEADROOM_SHARE times that (a lease), else the call's own worst case (a call's reservation),
    or None when not even that fits (the call is refused, everything given back)."""
    room = budget_nanos - (cost_nanos + reserved_nanos - asked_nanos)
    if room < worst_nanos:
        return None
    return asked_nanos if room >= asked_nanos * HEADROOM_SHARE else worst_nanos


def kept_requests(counted: int, asked: int, per_minute: int) -> int:
    """Requests a lease keeps of its grant, from the minute's count read back (the grant in it):
    0 means the call itself is over the limit."""
    if not per_minute:
        return asked
    return max(0, min(asked, per_minute - (counted - asked)))


class LeaseBook:
    """This instance's leases, by user (thread-safe, bounded)."""

    def __init__(self, max_leases: int = MAX_LEASES):
        self._by_user: dict[str, list[Lease]] = {}
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()  # (uid, month) -> cost + reserved
        self._count = 0
        self._renewing: dict[str, threading.Event] = {}  # users whose lease is being renewed ahead now
        self._max = max_leases
        self._lock = threading.Lock()

    def take(self, uid: str, month: str, budget: rules.Budget, worst_nanos: int, now_s: float,
             minute: str | None) -> Lease | None:
        """An idle lease that admits this call now (marked busy, one request of its grant used)."""
        with self._lock:
            for lease in self._by_user.get(uid, ()):
                if not lease.busy and _admits(lease, month, budget, worst_nanos, now_s, minute):
                    lease.busy = True
                    lease.requests -= 1 if lease.minute is not None else 0
                    lease.calls += 1
                    return lease
        return None

    def stale(self, uid: str, month: str, budget: rules.Budget, now_s: float, minute: str | None) -> Lease | None:
        """An idle lease of this user that can admit nothing more (expired, last minute's grant,
        another month or budget), taken out of the book: returned in the next lease's commit."""
        with self._lock:
            for lease in self._by_user.get(uid, ()):
                if not lease.busy and _spent(lease, month, budget, now_s, minute):
                    self._remove(lease)
                    return lease
        return None

    def spare(self, uid: str, month: str, minute: str | None) -> Lease | None:
        """Any idle lease of this user that has begun, out of the book (renewed when none admits a
        larger call); one renewed ahead for the next minute stays for it."""
        with self._lock:
            for lease in self._by_user.get(uid, ()):
                if not lease.busy and not _ahead(lease, month, minute):
                    self._remove(lease)
                    return lease
        return None

    def seen_spent(self, uid: str, month: str) -> int | None:
        """cost + reserved of the user's month as this instance last saw it (None: not seen)."""
        return self._seen.get((uid, month))

    def saw(self, uid: str, month: str, cost_nanos: int, reserved_nanos: int) -> None:
        with self._lock:
            self._seen[(uid, month)] = cost_nanos + reserved_nanos
            self._seen.move_to_end((uid, month))
            while len(self._seen) > MAX_SEEN:
                self._seen.popitem(last=False)

    def add(self, lease: Lease) -> None:
        with self._lock:
            if self._count >= self._max:
                self._evict()
            self._by_user.setdefault(lease.uid, []).append(lease)
            self._count += 1

    def holds(self, lease: Lease) -> bool:
        """Is the lease in the book (not dropped or closed)?"""
        with self._lock:
            return self._holds(lease)

    def _holds(self, lease: Lease) -> bool:
        return any(held is lease for held in self._by_user.get(lease.uid, ()))

    def alone(self, lease: Lease) -> bool:
        """Is it the only lease of its user on this instance (no call of theirs running beside it)?"""
        with self._lock:
            return all(other is lease for other in self._by_user.get(lease.uid, ()))

    def begin_renewal(self, uid: str) -> bool:
        """True for the one caller that may renew this user's lease now (renewal.py)."""
        with self._lock:
            if uid in self._renewing:
                return False
            self._renewing[uid] = threading.Event()
            return True

    def end_renewal(self, uid: str) -> None:
        with self._lock:
            done = self._renewing.pop(uid, None)
        if done is not None:
            done.set()

    def await_renewal(self, uid: str, timeout_s: float) -> bool:
        """Wait for a renewal of the user's lease under way (its commit is already out: waiting for
        it is shorter than a commit of the call's own, and a call racing it could be refused the
        requests it takes). False when none was under way."""
        with self._lock:
            done = self._renewing.get(uid)
        return done is not None and done.wait(timeout_s)

    def closes_with_call(self, lease: Lease) -> bool:
        """Is the lease closed when its call settles (ledger: released whole, in the same
        commit)? Yes when this instance keeps another lease of the user and month for the next
        calls: an idle one, or one whose call is settling and that was chosen to stay. Else this
        one stays (marked under the lock: calls settling at once must not each keep theirs). An
        instance keeps at most one idle lease per user, so idle slots do not pile up against the
        user's in-flight limit after a burst."""
        with self._lock:
            if any(other is not lease and (not other.busy or other.staying) and _serves_for(other, lease)
                   for other in self._by_user.get(lease.uid, ())):
                return True
            lease.staying = True
            return False

    def put_back(self, lease: Lease) -> None:
        """The call it served is over (settled or abandoned): idle again."""
        with self._lock:
            lease.busy = lease.staying = False
            if lease.uncertain:
                self._remove(lease)

    def has_ahead(self, uid: str, month: str, minute: str | None) -> bool:
        """Does the book hold a lease of the user taken for a minute (or month) to come?"""
        with self._lock:
            return any(_ahead(lease, month, minute) for lease in self._by_user.get(uid, ()))

    def retire(self, lease: Lease) -> bool:
        """Take an idle lease out of the book to give it back (False: busy with a call, or gone)."""
        with self._lock:
            if lease.busy or not self._holds(lease):
                return False
            self._remove(lease)
            return True

    def drop(self, lease: Lease) -> None:
        """Forget a lease whose document's state is unknown (a commit that may or may not have
        landed): never admit against it again; it expires and the check releases it."""
        with self._lock:
            lease.staying = False
            self._remove(lease)

    def _remove(self, lease: Lease) -> None:
        leases = self._by_user.get(lease.uid)
        if leases and lease in leases:
            leases.remove(lease)
            self._count -= 1
            if not leases:
                del self._by_user[lease.uid]

    def _evict(self) -> None:
        for uid in list(self._by_user)[: max(1, len(self._by_user) // 10)]:
            for lease in [lease for lease in self._by_user[uid] if not lease.busy]:
                self._remove(lease)


def _spent(lease: Lease, month: str, budget: rules.Budget, now_s: float, minute: str | None) -> bool:
    """It can admit nothing more (a lease renewed ahead for a minute or month to come has not)."""
    return (lease.month < month or lease.budget != budget or now_s >= lease.admit_until
            or (lease.minute is not None and (minute is None or lease.minute < minute or lease.requests <= 0)))


def _serves_for(other: Lease, lease: Lease) -> bool:
    """Can `other` admit the calls `lease` would (same month, minute and budget, requests left,
    for about as long)? A spent lease, or one about to expire, does not make a lease renewed
    ahead of it close (renewal.py gives such a one back)."""
    return (other.month == lease.month and other.minute == lease.minute and other.budget == lease.budget
            and (other.minute is None or other.requests > 0) and other.admit_until > lease.admit_until - RENEW_AHEAD_S)


def _ahead(lease: Lease, month: str, minute: str | None) -> bool:
    """Taken ahead for a minute (or month) that has not begun (renewal.py)."""
    return lease.month > month or (lease.minute is not None and minute is not None and lease.minute > minute)


def _admits(lease: Lease, month: str, budget: rules.Budget, worst_nanos: int, now_s: float, minute: str | None) -> bool:
    if _spent(lease, month, budget, now_s, minute) or _ahead(lease, month, minute):
        return False
    return lease.nanos + lease.credits_nanos >= worst_nanos if budget.enforced else True
