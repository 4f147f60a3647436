"""Which month document a user's write goes to (metering/hot_users.py): the base documents at up
to 0.8 writes a second on average in bursts of up to 4, the rest spread round as many shards as
their rate needs, from where this instance's range starts."""
from tokenledger.metering.hot_users import HotUsers


def table(**kwargs) -> HotUsers:
    """A table whose users' ranges start at the first shard (the live one starts at random)."""
    return HotUsers(first_shard=lambda count: 0, **kwargs)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def picks(hot: HotUsers, clock: Clock, uid: str, calls: int, gap_s: float, month: str = "2026-11") -> list[int]:
    out = []
    for _ in range(calls):
        out.append(hot.shard_for(uid, month))
        clock.now += gap_s
    return out


def test_a_user_calling_every_1_25_s_or_slower_always_writes_the_base_documents():
    clock = Clock()
    assert picks(table(shards=24, clock=clock), clock, "alice", 50, 1.25) == [0] * 50


def test_a_burst_of_four_calls_at_once_stays_on_the_base_documents():
    clock = Clock()
    hot = table(shards=24, clock=clock)
    assert picks(hot, clock, "carol", 4, 0.0) == [0, 0, 0, 0]
    clock.now += 5.0  # refilled: 5 s x 0.8 = 4 calls
    assert picks(hot, clock, "carol", 4, 0.0) == [0, 0, 0, 0]


def test_a_hot_user_is_spread_round_robin_after_the_burst_and_the_base_keeps_its_share():
    clock = Clock()
    hot = table(shards=4, clock=clock)
    # A call every 60 ms: the burst of 4 on the base (0.144 refilled meanwhile), then shards 1,
    # 2, 3, 1, ... and the base again once 0.048 a call has refilled a whole call: 18 calls later.
    got = picks(hot, clock, "bob", 31, 0.06)
    base = [i for i, shard in enumerate(got) if shard == 0]
    assert base == [0, 1, 2, 3, 21]
    assert [shard for shard in got if shard] == [1 + k % 3 for k in range(26)]


def test_the_first_call_of_a_new_month_goes_to_the_base_document():
    clock = Clock()
    hot = table(shards=4, clock=clock)
    assert picks(hot, clock, "bob", 6, 0.0) == [0, 0, 0, 0, 1, 2]
    assert hot.shard_for("bob", "2026-12") == 0


def test_only_the_first_spread_call_asks_for_the_sharded_mark():
    clock = Clock()
    hot = table(shards=4, clock=clock)
    marks = []
    for _ in range(8):
        shard, mark = hot.place("dan", "2026-11")
        marks.append(mark)
        if mark:
            hot.marked("dan", "2026-11")  # its batch committed
    assert marks == [False] * 4 + [True, False, False, False]


def test_spread_calls_ask_for_the_mark_until_a_batch_carrying_it_committed():
    """A first spread batch that failed (never reported) must not leave later shard writes
    unmarked: the next spread calls carry the mark again, until one is reported committed."""
    clock = Clock()
    hot = table(shards=4, clock=clock)
    marks = [hot.place("eve", "2026-11")[1] for _ in range(7)]
    assert marks == [False] * 4 + [True, True, True]
    hot.marked("eve", "2026-11")
    assert [hot.place("eve", "2026-11")[1] for _ in range(2)] == [False, False]
    assert hot.place("eve", "2026-12") == (0, False)  # another month: its own bucket and mark


def test_users_are_tracked_apart_and_the_table_stays_bounded():
    clock = Clock()
    hot = table(shards=4, clock=clock, max_users=2)
    assert [hot.shard_for(u, "2026-11") for u in ("a", "b") * 5] == [0] * 8 + [1, 1]
    hot.shard_for("c", "2026-11")  # pushes out the least recently seen user ("a")
    assert hot.shard_for("a", "2026-11") == 0  # forgotten: a full bucket again
    assert len(hot._last) == 2


def test_one_shard_means_no_spreading():
    clock = Clock()
    assert picks(table(shards=1, clock=clock), clock, "a", 10, 0.0) == [0] * 10


def test_the_shards_a_user_goes_round_grow_with_the_rate_not_past_a_write_a_second_each():
    clock = Clock()
    hot = table(shards=48, clock=clock)
    # 3.3 calls a second: ~2.5 spread a second, which five shards hold at 0.5 a second each.
    assert set(picks(hot, clock, "erin", 200, 0.3)) == {0, 1, 2, 3, 4, 5}
    # 40 writes a second (an enforced user at 20 calls/s: reservation + rollups) for 60 s: every
    # shard in use, none written more than once a second on average.
    clock = Clock()
    hot = table(shards=48, clock=clock)
    writes = picks(hot, clock, "fay", 2400, 0.025)
    per_shard = {shard: writes.count(shard) / 60 for shard in set(writes)}
    assert set(per_shard) == set(range(48))
    assert max(per_shard.values()) <= 1.0


def test_each_instance_starts_a_users_range_where_its_table_says():
    clock = Clock()
    hot = HotUsers(shards=48, clock=clock, first_shard=lambda count: 40)
    assert set(picks(hot, clock, "gus", 200, 0.3)) - {0} == {41, 42, 43, 44, 45}  # five shards from the 41st
    clock = Clock()
    hot = HotUsers(shards=48, clock=clock, first_shard=lambda count: 45)
    assert set(picks(hot, clock, "hal", 200, 0.3)) - {0} == {46, 47, 1, 2, 3}  # and round past the last
