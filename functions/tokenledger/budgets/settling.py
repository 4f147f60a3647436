"""After the call: what it holds goes to the ledger's one commit (holding), its lease back to the
instance's book (settled), a failed call's hold back (abandon), and the user's month as the
response shows it (after_call, in status.py).

The charge is split over the call's holds here, before the ledger writes it (ceiling.split_charge):
the month's allowance first, then the wallet, each never beyond what it held for the call.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from tokenledger.budgets import ceiling, lease_gate, reservations
from tokenledger.metering.usage import COST_PENDING


def abandon(db, gate, admission) -> None:
    """The call failed before anything was billed: give its reservation (and slot) back — a
    lease just goes back to this instance's book, nothing written."""
    if admission is None:
        return
    finish(gate, admission)
    if admission.lease is not None:
        gate.leases.put_back(admission.lease)
        admission.lease = None
    if admission.reservation is not None:
        reservations.release(db, admission.reservation)
        admission.reservation = None


def give_up(db, gate, admission, now: datetime) -> None:
    """The caller was refused after the gate admitted the call (revoked or disabled: their Auth
    lookup ran beside the gate): as abandon, but the lease it was admitted from goes back whole,
    with its unused requests — no call of theirs will use it, and kept it would hold its amount
    and an in-flight slot until it expires."""
    lease = admission.lease if admission is not None else None
    if lease is None or lease.uncertain:
        abandon(db, gate, admission)
        return
    finish(gate, admission)
    admission.lease = None
    gate.leases.drop(lease)
    lease_gate.give_back(db, lease_gate.returned_of(db, lease, now))


def _split(record, allowance_hold: int, credits_hold: int):
    """The record with the charge split over the call's holds (a pending row at its worst case
    takes both holds whole)."""
    credits = ceiling.split_charge(record.cost_nanos, [allowance_hold, credits_hold])[ceiling.CREDITS]
    return replace(record, credits_nanos=credits, credits_reserved_nanos=credits_hold)


def holding(gate, admission, record):
    """The call's record (metering.usage.UsageRecord) with what it holds for the ledger to settle
    in its commit: the call's own reservation (released whole), or its lease (the call's cost
    taken off it) — closed instead, released whole, when this instance holds another idle lease
    for the user (leases.LeaseBook.closes_with_call; not for a pending row, which takes the call's
    worst case over from the lease, nor for a lease whose amount is not known for sure: its
    shrink may have landed, and releasing the amount asked would take more off the month than
    the document holds). Returns (record, reservation, lease): the one held."""
    if admission.reservation is not None:
        reservation = admission.reservation
        record = _split(record, reservation.amount_nanos, reservation.credits_nanos)
        return replace(record, reserved_nanos=reservation.amount_nanos, reservation_id=reservation.reservation_id,
                       wallet_release_nanos=reservation.credits_nanos,
                       wallet_charge_nanos=record.credits_nanos), reservation, None
    lease = admission.lease
    if lease is None:
        return record, None, None
    record = _split(record, admission.reserved_nanos, admission.credits_reserved_nanos)
    if record.cost_source != COST_PENDING and not lease.uncertain and gate.leases.closes_with_call(lease):
        gate.leases.drop(lease)
        admission.lease = None
        held = lease.reservation()
        return replace(record, reserved_nanos=lease.nanos, reservation_id=lease.lease_id,
                       wallet_release_nanos=held.credits_nanos,
                       wallet_charge_nanos=held.credits_spent_nanos + record.credits_nanos), None, None
    return replace(record, reserved_nanos=admission.reserved_nanos, reservation_id=lease.lease_id, lease=True), None, lease


def settled(gate, admission, outcome, record) -> None:
    """The ledger recorded the call (ledger.RecordOutcome; None: it could not): its lease is
    idle again with the call's share taken off (record.lease_share_nanos: its cost, at most its
    worst case; a pending row's worst case; its credits off the wallet hold), or forgotten when
    its document's amount is not known for sure (it then expires: the check releases it)."""
    lease = admission.lease
    if lease is None:
        return
    admission.lease = None
    if outcome is None or outcome.status != "recorded" or outcome.reservation_gone or lease.uncertain:
        gate.leases.drop(lease)
        return
    lease.nanos -= record.lease_share_nanos  # as the ledger took it off the lease's document
    lease.credits_nanos -= record.credits_nanos
    lease.credits_spent_nanos += record.credits_nanos
    # The month as the lease sees it: this call's allowance share counted, its share of the lease
    # moved out of reserved (a pending row's worst case stays reserved) — or exactly, when the
    # ledger's commit read it back.
    if record.cost_source != COST_PENDING:
        lease.cost_nanos += record.allowance_nanos
        lease.reserved_nanos -= record.lease_share_nanos
    if outcome.month_cost_nanos is not None and outcome.month_reserved_nanos is not None:
        lease.cost_nanos = outcome.month_cost_nanos - (outcome.month_credits_nanos or 0)
        lease.reserved_nanos = outcome.month_reserved_nanos
        gate.leases.saw(lease.uid, lease.month, lease.cost_nanos, lease.reserved_nanos)
    gate.leases.put_back(lease)


def finish(gate, admission) -> None:
    """The call is over on this instance: its per-instance slot is free again."""
    if admission is not None and admission.local_slot:
        admission.local_slot = False
        gate.limiter.release(admission.uid)
