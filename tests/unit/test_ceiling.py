"""The ceiling primitive's pure planner (budgets/ceiling.py) and the Stripe payment decision
(credits/payments.py): expected values worked out by hand in each test."""
from __future__ import annotations

from decimal import Decimal

from tokenledger.budgets import ceiling
from tokenledger.budgets.ceiling import Room
from tokenledger.config import Settings
from tokenledger.credits import payments
from tokenledger.metering.usage import UsageRecord

W = 1_000_000  # one call's worst case, nanos


def test_an_ask_goes_to_the_allowance_first_and_the_wallet_takes_the_rest():
    assert ceiling.split_ask(8 * W, [3 * W, 100 * W]) == [3 * W, 5 * W]
    assert ceiling.split_ask(8 * W, [10 * W, 100 * W]) == [8 * W, 0]
    assert ceiling.split_ask(8 * W, [0, None]) == [0, 8 * W]  # pure prepaid: budget 0
    assert ceiling.split_ask(8 * W, [-2 * W, None]) == [0, 8 * W]  # allowance overspent
    assert ceiling.split_ask(8 * W, [None, 5 * W]) == [8 * W, 0]  # allowance not seen: asked whole
    assert ceiling.split_ask(8 * W, [2 * W, 1 * W]) == [2 * W, 6 * W]  # the last account takes the rest


def test_a_lease_is_kept_only_with_headroom_on_every_account_it_asked():
    asked = [2 * W, 6 * W]
    roomy = [Room(8 * W, 2 * W, 8 * W), Room(24 * W, 6 * W, 24 * W)]
    assert ceiling.keep(roomy, W, lease=True) == asked
    tight_wallet = [Room(8 * W, 2 * W, 8 * W), Room(24 * W - 1, 6 * W, 24 * W)]
    # near the wallet's ceiling: the call's own worst case, allowance first
    assert ceiling.keep(tight_wallet, W, lease=True) == [W, 0]
    unasked_wallet = [Room(8 * W, 8 * W, 8 * W), Room(0, 0, 0)]
    assert ceiling.keep(unasked_wallet, W, lease=True) == [W, 0]  # 8 W < 4 x 8 W: no lease


def test_a_call_straddling_the_two_accounts_holds_what_each_has():
    rooms = [Room(300, 300, 300), Room(5_000, 700, 5_000)]
    assert ceiling.keep(rooms, 1_000, lease=False) == [300, 700]


def test_a_call_that_fits_neither_is_refused_and_refit_tells_when_a_new_split_would_fit():
    # the allowance was asked but ran out; the wallet was not asked
    rooms = [Room(0, 1_000, 0), Room(5_000, 0, 5_000)]
    assert ceiling.keep(rooms, 1_000, lease=False) is None
    assert ceiling.refit(rooms, 1_000) == [0, 1_000]
    broke = [Room(200, 1_000, 200), Room(700, 0, 700)]
    assert ceiling.refit(broke, 1_000) is None
    assert ceiling.fits_alone(broke, 1_000) is False  # 200 + 700 < 1,000: refuse at once
    busy = [Room(200, 1_000, 600), Room(100, 0, 500)]  # others hold 400 + 400
    assert ceiling.fits_alone(busy, 1_000) is True  # wait for them


def test_a_charge_is_split_allowance_first_and_never_takes_more_credits_than_held():
    assert ceiling.split_charge(500, [300, 700]) == [300, 200]
    assert ceiling.split_charge(200, [300, 700]) == [200, 0]
    assert ceiling.split_charge(1_000, [300, 700]) == [300, 700]
    # billed past the worst case: the excess falls on the allowance, the wallet pays what it held
    assert ceiling.split_charge(1_250, [300, 700]) == [550, 700]
    assert ceiling.split_charge(0, [0, 0]) == [0, 0]


def test_a_lease_covers_a_call_from_its_allowance_then_its_credits():
    assert ceiling.call_holds(W, [W // 4, 10 * W]) == [W // 4, W - W // 4]


def _row(cost: int, credits: int) -> UsageRecord:
    from datetime import datetime, timezone
    return UsageRecord("g", "u", "m", "m", None, 1, 1, 2, 0, 0, 0, cost, cost, "openrouter", False, None, 1, "/", None,
                       "ok", "stop", datetime(2030, 1, 1, tzinfo=timezone.utc), credits_nanos=credits)


def test_the_row_carries_the_split_adding_up_to_the_cost():
    row = _row(500, 200).row()
    assert (row["allowance_nanos"], row["credits_nanos"], row["cost_nanos"]) == (300, 200, 500)


SETTINGS = Settings()


def payment(**fields) -> dict:
    return {"status": "succeeded", "currency": "usd", "amount_received": 500, "metadata": {}, **fields}


def test_a_succeeded_usd_payment_grants_its_amount_at_the_configured_rate():
    assert payments.decide(payment(), SETTINGS) == payments.Decision(5_000_000_000, "granted")
    doubled = Settings(credits_per_usd=Decimal("2"))
    assert payments.decide(payment(amount_received=1), doubled) == payments.Decision(20_000_000, "granted")


def test_only_succeeded_payments_grant_and_other_currencies_are_left_for_an_admin():
    for status in ("processing", "requires_payment_method", "canceled", None):
        assert payments.decide(payment(status=status), SETTINGS).nanos is None
    assert payments.decide(payment(currency="eur"), SETTINGS) == payments.Decision(None, "not_usd")
    for bad in (0, -5, "500", True, 1.5):
        assert payments.decide(payment(amount_received=bad), SETTINGS) == payments.Decision(None, "invalid_amount")


def test_metadata_credits_are_honoured_up_to_what_the_payment_is_worth():
    assert payments.decide(payment(metadata={"tokenledger_credits": "4.5"}), SETTINGS) == payments.Decision(
        4_500_000_000, "granted")
    # a client-chosen checkout metadata claiming more than was paid grants what was paid
    assert payments.decide(payment(metadata={"tokenledger_credits": "1000"}), SETTINGS) == payments.Decision(
        5_000_000_000, "capped")
    for junk in ("abc", "-3", "NaN", "Infinity", ""):
        assert payments.decide(payment(metadata={"tokenledger_credits": junk}), SETTINGS) == payments.Decision(
            5_000_000_000, "granted")
