"""Which rollup shard a user's call is counted in (metering/hot_users.py)."""
from tokenledger.metering.hot_users import HotUsers


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_user_calling_once_a_second_or_less_always_writes_the_base_documents():
    clock = Clock()
    hot = HotUsers(shards=24, clock=clock)
    picks = []
    for _ in range(10):
        picks.append(hot.shard_for("alice", "2026-11"))
        clock.now += 1.0
    assert picks == [0] * 10


def test_a_hot_user_is_spread_round_robin_over_the_shards_after_the_first_call():
    clock = Clock()
    hot = HotUsers(shards=4, clock=clock)
    picks = []
    for _ in range(8):
        picks.append(hot.shard_for("bob", "2026-11"))
        clock.now += 0.05  # 20 calls a second
    assert picks == [0, 1, 2, 3, 1, 2, 3, 1]


def test_the_first_call_of_a_new_month_goes_to_the_base_document():
    clock = Clock()
    hot = HotUsers(shards=4, clock=clock)
    assert [hot.shard_for("bob", "2026-11") for _ in range(3)] == [0, 1, 2]
    assert hot.shard_for("bob", "2026-12") == 0


def test_users_are_tracked_apart_and_the_table_stays_bounded():
    clock = Clock()
    hot = HotUsers(shards=4, clock=clock, max_users=2)
    assert [hot.shard_for(u, "2026-11") for u in ("a", "b", "a", "b")] == [0, 0, 1, 1]
    hot.shard_for("c", "2026-11")  # pushes out the least recently seen user ("a")
    assert hot.shard_for("a", "2026-11") == 0
    assert len(hot._last) == 2


def test_one_shard_means_no_spreading():
    clock = Clock()
    hot = HotUsers(shards=1, clock=clock)
    assert [hot.shard_for("a", "2026-11") for _ in range(3)] == [0, 0, 0]
