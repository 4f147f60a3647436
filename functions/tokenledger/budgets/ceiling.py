"""The ceiling primitive (pure: no I/O): a call is held against a list of accounts, in order, and
its real charge is split over what it held.

An account is anything with a ceiling the call must fit under: the month's allowance (the
enforced budget: room = budget - allowance spent - every hold on it), the user's prepaid wallet
(room = balance - held), later an organisation's budget. The gate asks each account for a
share of the call's worst case (or of a lease: leases.py) in ONE commit of blind increments that
reads every account back (reservations.reserve_and_read), then `keep` decides from what the
commit read: the whole ask (a lease), the call's own worst case (near a ceiling), or nothing
(refused). The same argument as for one budget holds per account: each admitted hold read a
total that already included every hold committed before it, so the holds on an account never
add up to more than its room.

The ledger settles the call in its one commit: `split_charge` divides the real charge over the
holds in order (allowance first, then credits), never taking more from an account after the
first than it held — so a wallet can never be overdrawn by spending. A charge above every hold
(OpenRouter billed past the worst case) falls on the first account, as it did before wallets.
"""
from __future__ import annotations

from dataclasses import dataclass

ALLOWANCE = 0  # index of the month's allowance in every list of accounts
CREDITS = 1  # index of the wallet

# A lease is kept only while every account it asks from has this many times its ask left (so
# near any ceiling each call reserves its own worst case; leases.HEADROOM_SHARE).
HEADROOM_SHARE = 4


@dataclass(frozen=True)
class Room:
    """One account as the gate's commit read it back: what is left for this call (cap - spent -
    every other hold, this commit's own ask taken out again) and what this commit asked of it.
    `free` is what it would have if no call held anything (for the wait-or-refuse decision)."""

    room_nanos: int
    asked_nanos: int
    free_nanos: int


def split_ask(total_nanos: int, seen_rooms: list[int | None]) -> list[int]:
    """Shares of `total_nanos` asked of each account before the commit, from the rooms this
    instance last saw (None: not seen, assumed to take the rest): filled in order, the last
    account takes whatever is left (its commit tells whether it fits)."""
    shares = []
    rest = total_nanos
    for i, room in enumerate(seen_rooms):
        last = i == len(seen_rooms) - 1
        share = rest if (room is None or last) else min(rest, max(room, 0))
        shares.append(share)
        rest -= share
    return shares


def keep(rooms: list[Room], worst_nanos: int, lease: bool) -> list[int] | None:
    """What each account keeps of its ask, from the commit's read-back: the whole ask when it is a
    lease and every account asked has HEADROOM_SHARE times its ask left; else the call's own worst
    case, filled in order from what each account could give of its ask; None when even that does
    not fit (the call is refused, every ask given back)."""
    asked = [r.asked_nanos for r in rooms]
    if lease and sum(asked) >= worst_nanos and all(
            r.room_nanos >= r.asked_nanos * HEADROOM_SHARE for r in rooms if r.asked_nanos):
        return asked
    return fill(worst_nanos, [min(r.asked_nanos, max(r.room_nanos, 0)) for r in rooms])


def fill(total_nanos: int, limits: list[int]) -> list[int] | None:
    """`total_nanos` taken from each account in order, at most its limit; None when they fall short."""
    shares = []
    rest = total_nanos
    for limit in limits:
        share = min(rest, max(limit, 0))
        shares.append(share)
        rest -= share
    return shares if rest == 0 else None


def refit(rooms: list[Room], worst_nanos: int) -> list[int] | None:
    """Asks that would fit the call now, when the ones sent did not (the allowance ran out since
    this instance last saw it, say): the worst case filled in order from every account's room as
    read back. None when the rooms do not add up to it."""
    return fill(worst_nanos, [r.room_nanos for r in rooms])


def fits_alone(rooms: list[Room], worst_nanos: int) -> bool:
    """Would the call fit if no other call held anything? (No: refuse now; yes: wait a moment.)"""
    return sum(max(r.free_nanos, 0) for r in rooms) >= worst_nanos


def split_charge(cost_nanos: int, holds: list[int]) -> list[int]:
    """The real charge over the accounts held, in order, each up to what it held; anything above
    the holds falls on the first account. The parts add up to `cost_nanos` exactly."""
    parts = fill(cost_nanos, holds)
    if parts is None:
        parts = list(holds)
        parts[0] += cost_nanos - sum(holds)
    return parts


def call_holds(worst_nanos: int, available: list[int]) -> list[int]:
    """A call's share of a lease's accounts (what each has left): its worst case, filled in order.
    The lease admits the call only when they add up (LeaseBook.take)."""
    shares = fill(worst_nanos, available)
    if shares is None:
        raise ValueError("the lease does not cover the call")
    return shares
