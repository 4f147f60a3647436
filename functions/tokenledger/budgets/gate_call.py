"""The shared gate of one call: ONE commit that asks every account it must fit in (ceiling.py:
the month's allowance, the wallet) with the rate and quota counters, reads them back, and the
decision (admission.py's docstring tells the whole path; reservations.py why it is safe)."""
from __future__ import annotations

import random
import time
from dataclasses import replace
from datetime import datetime, timedelta

from google.cloud import firestore

from tokenledger import background, logs, money, store
from tokenledger.budgets import alerts, ceiling, cold, lease_gate, leases, limits, reservations, rules
from tokenledger.budgets.admitted import (FIRESTORE_ERRORS, QUICK_RETRY, Admission, BudgetExceeded,
                                          FreeQuotaExceeded, Gate, WalletSeen, read_wallet, unchecked)
from tokenledger.config import Settings

MINUTE_DOC_TTL = timedelta(days=1)  # minute counters expire (Firestore TTL on expire_at)
UNKNOWN_ROOM = 1 << 62  # a wallet the commit did not read: whatever the call needs, to be asked
WALLET_RECHECK_S = 5  # a refused call re-reads a wallet this instance last read longer ago than this
MAX_REFITS = 2
RENEWAL_WAIT_S = 2.0  # a call waits at most this for its user's lease renewal under way  # asks re-split from what a commit read back, at most this often per call


class _Unreachable(Exception):
    """Firestore could not be reached by the gate's commit (fail closed or open: _unchecked)."""


class GateCall:
    """One call through the shared gate: ONE commit that asks every account (ceiling.py) and the
    counters, reads them back, a decision; see the module's docstring. When only other calls'
    open holds stand in the way (the call would fit once they settle), it tries again after a
    short random pause for up to ADMISSION_PATIENCE_S: in a burst, refused calls' momentary
    reservations would otherwise refuse calls that fit. When the asks were split wrongly (the
    allowance ran out since this instance last saw it), it asks again at once, split as read."""

    def __init__(self, db, settings: Settings, gate: Gate, uid: str, budget: rules.Budget, now: datetime,
                 counted_as, alerts_sent: dict | None, is_free: bool, worst_case_nanos: int, patience_s: float,
                 learn=None, renewing: bool = False, handed_back: reservations.Returned | None = None):
        self.db, self.settings, self.gate, self.uid, self.budget, self.now = db, settings, gate, uid, budget, now
        # `budget` guessed (cold.py): learn() gives the budget read beside the commit, waited for
        # after the commit and before any decision.
        self.learn, self.is_free, self.worst_nanos = learn, is_free, worst_case_nanos
        # A lease renewed ahead (renewal.py): takes no lease of the book, hands none back, and a
        # refusal is not remembered (it was not a call of the user).
        self.renewing = renewing
        self.handed_back = handed_back  # a wrong guess's hold, given back in this call's commit (cold.py)
        self.counted_as, self.alerts_sent = counted_as, alerts_sent
        self.month, self.day, self.minute = now.strftime("%Y-%m"), now.strftime("%Y-%m-%d"), limits.minute_key(now)
        self.minute_ref = store.user_minute_doc(db, uid, self.minute)
        self.day_ref = store.user_day_doc(db, uid, self.day)
        self.amount = worst_case_nanos if (not is_free and budget.enforced) else 0  # free calls never touch credits
        self.count_free = is_free and budget.free_daily_requests is not None
        # A call counted against a daily free quota is counted one by one (one commit each); every
        # other gated call may be admitted against a lease of this instance (leases.py).
        self.lease_calls = 0 if self.count_free else settings.lease_calls
        self.lease_minute = self.minute if budget.requests_per_minute else None
        seen = gate.wallets.recent(uid, now.timestamp())  # cached by a call that began after this one too
        self.wallet: WalletSeen | None = seen if seen is not None and seen.exists and self.amount else None
        # A wallet this instance read as absent a while ago is read again when the call is refused
        # for its budget (credits bought since are used at once); one it never read (its budget
        # and wallet are read together) is taken as absent.
        self.wallet_checked = seen is None or now.timestamp() - gate.wallets.seen_at(uid) < WALLET_RECHECK_S
        self.asked_requests = 1
        self.counted_minute = False  # the minute's grant is counted once per call, not per retry
        self.swept = False  # expired reservations of this user released once, on an in-flight refusal
        self.refits = 0
        self.patience_s = patience_s  # admission.ADMISSION_PATIENCE_S

    def admit(self) -> Admission:
        # A lease admits a call under the budget it was taken on: not on a guessed budget.
        if self.lease_calls and not self.renewing and self.learn is None:
            lease = self._take_lease()
            if lease is None and self.gate.leases.await_renewal(self.uid, RENEWAL_WAIT_S):
                lease = self._take_lease()
            if lease is not None:
                if self.handed_back is not None:
                    background.submit(lease_gate.give_back, self.db, self.handed_back)
                return lease
        total = leases.ask_nanos(self.amount, self.budget, self.lease_calls, self._seen_spent())
        leasing = total is not None
        self.asked_requests = leases.ask_requests(self.budget, self.lease_calls) if leasing else 1
        if self.learn is not None:  # a guessed budget's commit asks a small grant (cold.GUESSED_GRANT)
            self.asked_requests = min(self.asked_requests, cold.GUESSED_GRANT)
        asks = self._split(self.amount if total is None else total)
        # An idle lease this instance holds for the user goes back in the same commit (near the
        # ceiling too: what it holds is then room for this call).
        returned = self.handed_back or (
            lease_gate.returnable(self.gate, self.db, self.uid, self.month, self.budget, self.now, self.lease_minute)
            if self.settings.lease_calls and not self.renewing else None)
        deadline, pause = time.monotonic() + self.patience_s, 0.05
        while True:
            try:
                reservation, totals, counted = self._hold(asks, leasing, returned)
            except reservations.ReturnedGone as gone:
                # The lease handed back was released after it expired — or by this commit, landed
                # before a lost ack: then its reservation is there too. Given back (once-only: a
                # reservation that never landed is not found), the minute's count left as counted.
                _give_back(self.db, gone.reservation)
                returned = None
                continue
            except _Unreachable:
                return unchecked(self.settings, self.uid, self.budget, self.now, self.counted_as())
            returned = None  # given back in that commit
            if self.learn is not None and not self._learned(reservation):
                return unchecked(self.settings, self.uid, self.budget, self.now, self.counted_as())
            if self._over_limits(reservation, totals, counted):
                continue
            rooms = self._rooms(totals, asks)
            kept = ceiling.keep(rooms, self.amount, leasing)
            self._saw(totals, asks, kept)
            if kept is not None:
                self._low_balance(totals, asks, kept)
                return self._admitted(reservation, totals, asks, kept, leasing, counted)
            _give_back(self.db, reservation, self._undo)
            if self.renewing:  # a renewal is not worth a wait or a second ask: the next call asks for itself
                raise self._exceeded(totals, asks)
            retry = self._retry_asks(rooms, asks, totals, deadline, pause)
            if retry is None:  # waited for other calls' holds to settle
                pause = min(pause * 1.5, 0.3)
                lease = self._take_lease() if self.lease_calls and not self.renewing else None
                if lease is not None:  # a call of this user on this instance ended meanwhile: its lease serves
                    return lease
                # It waits with its own worst case only: re-asking a whole lease each time would
                # hold room other waiting calls need (a burst of cold calls refusing each other).
                retry = self._split(self.amount)
            # Not a lease any more: the call's own request only (the first commit's grant beyond it went back)
            asks, leasing, self.asked_requests = retry, False, 1

    def _learned(self, reservation) -> bool:
        """The budget read beside the commit, taken in (cold.py); False: it could not be read (the
        hold is given back). Raises cold.GuessWrong when it does not fit the commit."""
        learn, self.learn = self.learn, None
        guessed = cold.shape(self.budget, self.is_free, self.worst_nanos)
        try:
            learned = learn()
        except FIRESTORE_ERRORS:
            _give_back(self.db, reservation, self._undo_all)
            return False
        if not learned.budget.gated(self.is_free):
            background.submit(_give_back, self.db, reservation, self._undo_all)  # off the call's path
            raise cold.GuessWrong(learned)
        if cold.shape(learned.budget, self.is_free, self.worst_nanos) != guessed:
            if self.count_free:  # the day's free count is not one a commit hands back: now
                _give_back(self.db, reservation, self._undo_all)
                raise cold.GuessWrong(learned)
            counted = self.asked_requests if self.budget.requests_per_minute else 0
            raise cold.GuessWrong(learned, reservations.Returned(reservation, self.minute_ref if counted else None,
                                                                 counted))
        self.budget, self.alerts_sent = learned.budget, learned.alerts_sent
        if learned.wallet is not None and learned.wallet.exists and self.amount:
            self.wallet = learned.wallet  # not asked by this commit: asked in a refit if the allowance falls short
        return True

    def _seen_spent(self) -> int | None:
        """The month's allowance spent and held as last seen, less the wallet's room last seen: a
        lease is sized against what both accounts have left (leases.ask_nanos)."""
        spent = self.gate.leases.seen_spent(self.uid, self.month)
        if spent is None or self.wallet is None:
            return spent
        return spent - (self.wallet.room_nanos or 0)

    def _split(self, total: int) -> list[int]:
        """The ask over [allowance, wallet], from what this instance last saw of each."""
        if self.wallet is None:
            return [total, 0]
        spent = self.gate.leases.seen_spent(self.uid, self.month)
        budget = self.budget.monthly_budget_nanos or 0
        return ceiling.split_ask(total, [budget - (spent or 0), self.wallet.room_nanos])

    def _take_lease(self) -> Admission | None:
        lease = self.gate.leases.take(self.uid, self.month, self.budget, self.amount, self.now.timestamp(),
                                      self.lease_minute)
        if lease is None:
            return None
        return _from_lease(lease, self.budget, self.month, self.day, self.amount, self.alerts_sent,
                           self.counted_as(), self.uid)

    def _counters(self) -> tuple:
        counters = []
        if self.budget.requests_per_minute:  # no limit, no counter: one write less on a hot user's path
            counters.append(reservations.Counter(
                self.minute_ref, {"user_id": self.uid, "expire_at": self.now + MINUTE_DOC_TTL}, "requests",
                self.asked_requests - (1 if self.counted_minute else 0)))
        if self.count_free:
            counters.append(reservations.Counter(self.day_ref, {"user_id": self.uid, "month": self.month,
                                                                "day": self.day}, "free_requests", 1))
        return tuple(counters)

    def _undo(self, batch) -> None:
        """A refused call's increments back, but for the one request it was (a renewal was none)."""
        if self.count_free:
            batch.set(self.day_ref, {"free_requests": firestore.Increment(-1)}, merge=True)
        made = 0 if self.renewing else 1
        if self.budget.requests_per_minute and self.asked_requests > made:
            batch.set(self.minute_ref, {"requests": firestore.Increment(made - self.asked_requests)}, merge=True)

    def _undo_all(self, batch) -> None:
        """A guessed commit's increments back, the request included: the call goes through again."""
        self._undo(batch)
        if self.budget.requests_per_minute:
            batch.set(self.minute_ref, {"requests": firestore.Increment(-1)}, merge=True)

    def _hold(self, asks: list[int], leasing: bool, returned) -> tuple:
        """The one commit: every account's ask and the counters, read back."""
        counters = self._counters()
        credits = asks[ceiling.CREDITS] if self.wallet is not None and asks[ceiling.CREDITS] else None
        try:
            reservation, totals, sharded, counted = reservations.reserve_and_read(
                self.db, self.uid, self.month, asks[ceiling.ALLOWANCE], self.now, self.settings.reservation_ttl_s,
                counters, lease_admit_s=leases.ADMIT_S if leasing else 0, returned=returned, credits_nanos=credits)
        except reservations.ReturnedGone:
            raise
        except FIRESTORE_ERRORS as exc:
            raise _Unreachable() from exc
        self.counted_minute = True
        counted = {c.field: value for c, value in zip(counters, counted)}
        if sharded:
            try:
                totals = reservations.with_shards(self.db, self.uid, self.month, totals, reservation.shard,
                                                  retry=QUICK_RETRY)
            except FIRESTORE_ERRORS as exc:
                _give_back(self.db, reservation, self._undo)
                raise _Unreachable() from exc
        return reservation, totals, counted

    def _over_limits(self, reservation, totals: reservations.MonthTotals, counted: dict) -> bool:
        """Rate limit (429) and free quota (429), raised with the hold given back; True: try again
        (expired reservations of this user were just released)."""
        refusal = limits.check(counted.get("requests", 0) - (self.asked_requests - 1), totals.in_flight,
                               self.budget, self.now)
        if refusal is not None and refusal.limit_name == limits.IN_FLIGHT and not self.swept:
            # Slots of crashed calls come back when their reservations expire: free this user's
            # now rather than at the next scheduled check (a query, on this refusal path only).
            self.swept = True
            if _sweep_expired(self.db, self.uid, self.now):
                _give_back(self.db, reservation, self._undo)
                return True
        if refusal is not None:
            _give_back(self.db, reservation, self._undo)
            if not self.renewing:
                self.gate.limiter.remember(self.uid, refusal, self.now)
            raise refusal
        if self.count_free and counted["free_requests"] > self.budget.free_daily_requests:
            _give_back(self.db, reservation, self._undo)
            raise FreeQuotaExceeded(self.budget.free_daily_requests, rules.seconds_to_next_day(self.now))
        return False

    def _rooms(self, totals: reservations.MonthTotals, asks: list[int]) -> list[ceiling.Room]:
        """Each account as the commit read it back: what is left for this call, what was asked."""
        budget = self.budget.monthly_budget_nanos or 0
        spent = totals.allowance_spent_nanos
        allowance = ceiling.Room(budget - spent - (totals.reserved_nanos - asks[0]), asks[0], budget - spent)
        if totals.wallet is not None:
            balance, held = totals.wallet.balance_nanos, totals.wallet.held_nanos
            return [allowance, ceiling.Room(balance - (held - asks[1]), asks[1], balance)]
        if self.wallet is not None:  # not asked, not read: it may give what the allowance lacks
            return [allowance, ceiling.Room(UNKNOWN_ROOM, 0, UNKNOWN_ROOM)]
        return [allowance, ceiling.Room(0, 0, 0)]

    def _saw(self, totals: reservations.MonthTotals, asks: list[int], kept: list[int] | None) -> None:
        kept = kept or [0, 0]
        self.gate.leases.saw(self.uid, self.month, totals.allowance_spent_nanos,
                             totals.reserved_nanos - asks[0] + kept[0])
        if totals.wallet is not None and self.wallet is not None:
            self.wallet.room_nanos = totals.wallet.balance_nanos - (totals.wallet.held_nanos - asks[1] + kept[1])

    def _low_balance(self, totals: reservations.MonthTotals, asks: list[int], kept: list[int]) -> None:
        """The low-balance alert, once per crossing, when the wallet this commit read back is below
        the user's threshold (else TOKENLEDGER_LOW_CREDITS_USD) with this call's hold in it."""
        wallet, seen = totals.wallet, self.wallet
        if wallet is None or seen is None or seen.alerted_epoch == wallet.low_alert_epoch:
            return
        threshold = seen.low_nanos if seen.low_nanos is not None else money.to_nanos(self.settings.low_credits_usd)
        available = wallet.balance_nanos - (wallet.held_nanos - asks[ceiling.CREDITS] + kept[ceiling.CREDITS])
        if available >= threshold:
            return
        try:
            if alerts.write_low_credits(self.db, self.uid, wallet.low_alert_epoch, available, threshold,
                                        self.budget.email, self.now, self.settings.mail_enabled):
                logs.credits_low_balance(user_id=self.uid, balance_nanos=available, threshold_nanos=threshold)
        except FIRESTORE_ERRORS:
            return  # the call goes on; the next one tries again
        seen.alerted_epoch = wallet.low_alert_epoch

    def _retry_asks(self, rooms: list[ceiling.Room], asks: list[int], totals: reservations.MonthTotals,
                    deadline: float, pause: float) -> list[int] | None:
        """After a refusal, everything given back: asks split as the commit read the accounts
        (asked again at once), or None after a pause (other calls' holds stand in the way), or
        BudgetExceeded / credits_exhausted."""
        refit = ceiling.refit(rooms, self.amount)
        if refit is not None and refit != asks and self.refits < MAX_REFITS:
            self.refits += 1
            return refit
        if self.wallet is None and self.amount and not self.wallet_checked:
            self.wallet_checked = True
            seen = read_wallet(self.db, self.gate, self.uid, self.now)
            if seen is not None and seen.exists:  # credits bought since this instance last looked
                self.wallet = seen
                self.refits += 1
                return ceiling.split_ask(self.amount, [max(rooms[0].room_nanos, 0), None])
        others = sum(r.free_nanos - r.room_nanos for r in rooms if r.free_nanos != UNKNOWN_ROOM)
        if not ceiling.fits_alone(rooms, self.amount) or others <= 0 or time.monotonic() + pause > deadline:
            raise self._exceeded(totals, asks)
        time.sleep(pause * (0.5 + random.random()))
        return None

    def _exceeded(self, totals: reservations.MonthTotals, asks: list[int]) -> BudgetExceeded:
        wallet = None
        if totals.wallet is not None:
            wallet = reservations.WalletTotals(totals.wallet.balance_nanos, totals.wallet.held_nanos - asks[1])
        elif self.wallet is not None:
            wallet = reservations.WalletTotals(self.wallet.room_nanos or 0, 0)
        return BudgetExceeded(totals.allowance_spent_nanos, totals.reserved_nanos - asks[0],
                              self.budget.monthly_budget_nanos or 0, self.amount, wallet)

    def _admitted(self, reservation, totals: reservations.MonthTotals, asks: list[int], kept: list[int],
                  leasing: bool, counted: dict) -> Admission:
        others = replace(totals, reserved_nanos=totals.reserved_nanos - asks[0], alerts_sent=self.alerts_sent,
                         wallet=None)
        if leasing:
            reservation, lease = lease_gate.keep(
                self.db, self.gate, reservation, self.budget, (totals.allowance_spent_nanos, others.reserved_nanos),
                asks, kept, (counted.get("requests", 0), self.asked_requests), self.lease_minute, self.now,
                self.settings.reservation_ttl_s)
            if lease is not None:
                holds = lease_gate.call_holds(lease, self.amount)
                return Admission(self.budget, self.month, self.day, totals=others, reserved_nanos=holds[0],
                                 credits_reserved_nanos=holds[1], feature=self.counted_as(), uid=self.uid,
                                 lease=lease)
        free_today = counted["free_requests"] if self.count_free else None
        return Admission(self.budget, self.month, self.day, reservation, free_requests_today=free_today,
                         totals=replace(others, reserved_nanos=others.reserved_nanos + reservation.amount_nanos),
                         reserved_nanos=reservation.amount_nanos, credits_reserved_nanos=reservation.credits_nanos,
                         feature=self.counted_as(), uid=self.uid)


def _from_lease(lease: leases.Lease, budget: rules.Budget, month: str, day: str, amount: int,
                alerts_sent: dict | None, feature: str | None, uid: str) -> Admission:
    """Admitted in memory against this instance's lease: no write, no read. Its totals are the
    month as the lease last saw it, other calls' and instances' reservations only."""
    holds = lease_gate.call_holds(lease, amount)
    others = reservations.MonthTotals(lease.cost_nanos, lease.reserved_nanos - lease.nanos, alerts_sent)
    return Admission(budget, month, day, totals=others, reserved_nanos=holds[0], credits_reserved_nanos=holds[1],
                     feature=feature, uid=uid, lease=lease)


def _sweep_expired(db, uid: str, now: datetime) -> int:
    try:
        released, _ = reservations.release_expired(db, now, page_size=50, user_id=uid)
    except FIRESTORE_ERRORS:
        return 0
    return released


def _give_back(db, reservation: reservations.Reservation, undo=None) -> None:
    """Best effort: if Firestore is down the release fails too, and the budget check releases
    the reservation when it expires."""
    try:
        reservations.release(db, reservation, also=undo)
    except FIRESTORE_ERRORS as exc:
        logs.reservation_release_failed(reservation_id=reservation.reservation_id, error=type(exc).__name__)
