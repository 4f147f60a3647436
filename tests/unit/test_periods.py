"""The one sum of a period's documents (periods.summed) and the fold's planner (fold.fold_delta):
pure, checked against hand-written totals."""
from tokenledger import periods
from tokenledger.metering import fold

BASE = {
    "user_id": "u1", "month": "2026-12", "sharded": True, "shard_count": 48,
    "calls": 3, "free_calls": 1, "paid_calls": 2, "free_tokens": 40, "paid_tokens": 300,
    "cost_nanos": 1_000_000_007, "cost": 1.000000007, "reserved_nanos": 5, "in_flight": 1,
    "by_model": {"openai/gpt-4o": {"calls": 2, "tokens": 300, "cost_nanos": 1_000_000_007}},
    "alerts_sent": {"t80": True},
    "budget_copy": {"monthly_budget_nanos": 9_000_000_000, "exists": True},
}
SHARD_3 = {
    "user_id": "u1", "month": "2026-12", "shard": 3,
    "calls": 2, "paid_calls": 2, "paid_tokens": 70, "cost_nanos": 333, "cost": 3.33e-07,
    "reserved_nanos": -5, "in_flight": -1,
    "by_model": {"openai/gpt-4o": {"calls": 1, "tokens": 50, "cost_nanos": 300},
                 "perplexity/sonar": {"calls": 1, "tokens": 20, "cost_nanos": 33}},
}
SHARD_17 = {"user_id": "u1", "month": "2026-12", "shard": 17, "calls": 1, "free_calls": 1, "free_tokens": 9}


def test_a_period_is_its_base_plus_every_shard_counter_by_counter():
    whole = periods.summed([BASE, SHARD_3, SHARD_17])
    assert (whole["calls"], whole["free_calls"], whole["paid_calls"]) == (6, 2, 4)
    assert (whole["free_tokens"], whole["paid_tokens"]) == (49, 370)
    assert whole["cost_nanos"] == 1_000_000_340 and whole["cost"] == 1.00000034  # from the nanos, not the floats
    assert (whole["reserved_nanos"], whole["in_flight"]) == (0, 0)
    assert whole["by_model"] == {"openai/gpt-4o": {"calls": 3, "tokens": 350, "cost_nanos": 1_000_000_307},
                                 "perplexity/sonar": {"calls": 1, "tokens": 20, "cost_nanos": 33}}
    # Not counters: the base's, never added up (a shard's number least of all).
    assert "shard" not in whole and whole["shard_count"] == 48
    assert whole["budget_copy"] == BASE["budget_copy"] and whole["alerts_sent"] == {"t80": True}
    assert (whole["user_id"], whole["month"], whole["sharded"]) == ("u1", "2026-12", True)


def test_a_period_without_documents_is_empty_and_a_missing_document_adds_nothing():
    assert periods.summed([]) == {}
    assert periods.summed([None, SHARD_17]) == {"user_id": "u1", "month": "2026-12", "calls": 1, "free_calls": 1,
                                                "free_tokens": 9}


def test_the_fold_moves_every_counter_of_the_shards_and_nothing_else():
    delta = fold.fold_delta([SHARD_3, SHARD_17])
    assert delta == {
        "calls": 3, "free_calls": 1, "paid_calls": 2, "free_tokens": 9, "paid_tokens": 70,
        "cost_nanos": 333, "cost": 3.33e-07, "reserved_nanos": -5, "reserved": -5e-09, "in_flight": -1,
        "by_model": {"openai/gpt-4o": {"calls": 1, "tokens": 50, "cost_nanos": 300},
                     "perplexity/sonar": {"calls": 1, "tokens": 20, "cost_nanos": 33}},
    }  # the USD twins from the exact nanos
    # Base + delta is the period: what the fold leaves in the base equals the sum before it.
    after = periods.summed([BASE, delta])
    assert after == periods.summed([BASE, SHARD_3, SHARD_17])


def test_the_month_before_the_first_is_december_of_the_year_before():
    assert fold.previous_month("2027-01") == "2026-12" and fold.previous_month("2026-12") == "2026-11"
