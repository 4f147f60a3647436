"""A user's first call on an instance (nothing cached): the gate's commit goes out beside the
read of their budget document instead of after it, so the call waits one round trip, not two.

The commit is built on a guess: the budget a user without a document has on their plan (the
deployment's default; most users of an app have no document of their own). What the commit does
depends on the budget only through its shape (`shape`): whether it holds money, counts a free
call, counts the minute's requests (a small grant, GUESSED_GRANT: the lease's renewal brings the full one). When the document read beside it comes back:
  * same shape: the call is decided on the budget READ (its amounts, limits, wallet) from what
    the commit read back — exactly as if the read had come first;
  * a budget that gates nothing: what the commit asked is given back off the call's path;
  * another shape: the call goes through the gate again on the budget read, and that commit
    also gives back everything the first one took (two round trips, as before this path).
Nothing is sent upstream before the commit and the read are both back and the decision is made.
"""
from __future__ import annotations

from dataclasses import dataclass

from tokenledger.budgets import rules
from tokenledger.budgets.plans import Plan
from tokenledger.config import Settings


@dataclass(frozen=True)
class Learned:
    """The user's budget document as the read beside the commit found it."""
    budget: rules.Budget  # resolved on the caller's plan
    alerts_sent: dict
    wallet: object | None  # admitted.WalletSeen


class GuessWrong(Exception):
    """The budget read does not fit the commit built on the guess. What that commit took is given
    back: already, or (`returned`, a reservations.Returned) in the commit that gates the call again
    on the budget read — one commit, not two."""

    def __init__(self, learned: Learned, returned=None):
        super().__init__("budget guessed wrong")
        self.learned = learned
        self.returned = returned


def guess(settings: Settings, plan: Plan | None, is_free: bool) -> rules.Budget | None:
    """The budget to build a cold call's commit on, or None when it would gate nothing (then the
    document is read first: a user with no document needs no commit at all)."""
    budget = rules.budget_from_doc(None, settings, plan)
    return budget if budget.gated(is_free) else None


# Requests of the minute a guessed commit's lease asks (the call's own and one more), not a whole
# grant of 8: until the budget read comes back, the guesses of other cold instances count against
# the user's limit, and a small limit of their own (12 a minute, say) would refuse a real call for
# requests never made. Two: a user's second call on the instance needs no commit; from then on
# the lease is renewed ahead with its budget's grant (renewal.py). A one-time caller costs nothing more.
GUESSED_GRANT = 2


def shape(budget: rules.Budget, is_free: bool, worst_nanos: int) -> tuple:
    """What of a budget the gate's commit is built from (gate_call.GateCall.__init__, _counters).
    The size of a per-minute limit is not part of it: a guessed commit asks GUESSED_GRANT requests,
    and the lease keeps what the limit allows of them (leases.kept_requests)."""
    holds_money = bool(worst_nanos) and not is_free and budget.enforced
    counts_free = is_free and budget.free_daily_requests is not None
    return holds_money, counts_free, bool(budget.requests_per_minute)
