from decimal import Decimal

from tokenledger import money


def test_float_costs_keep_their_shortest_decimal():
    assert money.to_decimal(0.00014) == Decimal("0.00014")
    assert money.to_decimal(1.2345e-05) == Decimal("0.000012345")
    assert money.to_decimal("0.0000001") == Decimal("0.0000001")


def test_not_numbers_are_none():
    for value in (None, True, "abc", float("nan"), float("inf"), {}):
        assert money.to_decimal(value) is None


def test_sub_micro_dollar_costs_survive_in_nanos():
    assert money.to_nanos(Decimal("0.0000000375")) == 38  # half-even of 37.5
    assert money.to_nanos(Decimal("0.0000000365")) == 36
    assert money.to_nanos(Decimal("0.00014")) == 140_000
    assert money.from_nanos(140_000) == Decimal("0.00014")


def test_summing_nanos_has_no_float_drift():
    nanos = sum(money.to_nanos(money.to_decimal(0.1)) for _ in range(1000))
    assert nanos == 100 * 1_000_000_000
    assert sum(0.1 for _ in range(1000)) != 100.0  # what float sums would have recorded
