"""The hot-user table (metering/hot_users.py) with a clock the test sets: a write every `step`
seconds whatever the machine's speed, each user's shard range starting at the first shard."""
from __future__ import annotations

from tokenledger import store
from tokenledger.metering import hot_users
from tokenledger.metering.hot_users import HotUsers


class StepClock:
    """Moves `step` seconds each time it is read (0: a clock that does not move)."""

    def __init__(self, step: float):
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def table(step: float) -> HotUsers:
    return HotUsers(store.USER_SHARDS, clock=StepClock(step), first_shard=lambda count: 0)


def install(monkeypatch, step: float) -> HotUsers:
    """This process's table replaced by one whose writes come `step` seconds apart."""
    placement = table(step)
    monkeypatch.setattr(hot_users, "PLACEMENT", placement)
    return placement
