"""Credits bought through the official Stripe extension ("Run Payments with Stripe"): it mirrors
each PaymentIntent into `customers/{uid}/payments/{paymentId}` and writes the same document
again on every later event; a Firestore trigger (main.py) hands each write here.

A payment grants credits once, when its document says `succeeded`: the grant's history entry is
keyed by the payment id (wallet.grant: create(), so however often the trigger fires or the
document is rewritten, one grant). `processing` and the other states grant nothing.

How much: `metadata.tokenledger_credits` (USD of credit) when present, else `amount_received`
(cents) converted at TOKENLEDGER_CREDITS_PER_USD, for USD payments only — other currencies are
not converted guessingly: logged, left for an admin. The metadata can be chosen by the paying
client (the extension copies what a client writes into `checkout_sessions`), so it is honoured
only up to what the payment is worth at that rate: a $1 checkout claiming $1,000 of credit
grants $1 and is logged. Clients cannot write `customers/{uid}/payments` at all
(firestore.rules, the extension's own recommended rules).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tokenledger import logs, money
from tokenledger.config import Settings
from tokenledger.credits import wallet

SUCCEEDED = "succeeded"
METADATA_KEY = "tokenledger_credits"
MAX_CREDITS_USD = Decimal(1_000_000)


@dataclass(frozen=True)
class Decision:
    nanos: int | None  # credits to grant (None: none)
    reason: str  # granted | not_succeeded | not_usd | invalid_amount | capped


def decide(doc: dict, settings: Settings) -> Decision:
    """What a payment document grants (pure)."""
    if doc.get("status") != SUCCEEDED:
        return Decision(None, "not_succeeded")
    if str(doc.get("currency") or "").lower() != "usd":
        return Decision(None, "not_usd")
    cents = doc.get("amount_received")
    if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
        return Decision(None, "invalid_amount")
    worth = money.to_nanos(Decimal(cents) / 100 * settings.credits_per_usd)
    claimed = _metadata_credits(doc.get("metadata"))
    if claimed is None:
        return Decision(worth, "granted")
    if claimed > worth:
        return Decision(worth, "capped")
    return Decision(claimed, "granted")


def _metadata_credits(metadata) -> int | None:
    if not isinstance(metadata, dict) or metadata.get(METADATA_KEY) in (None, ""):
        return None
    try:
        value = Decimal(str(metadata[METADATA_KEY]))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or value <= 0 or value > MAX_CREDITS_USD:
        return None
    return money.to_nanos(value)


def on_payment_written(db, uid: str, payment_id: str, doc: dict | None, settings: Settings) -> wallet.Granted | None:
    """A payment document was written (None: deleted): grant its credits once when it succeeded."""
    if not doc:
        return None
    decision = decide(doc, settings)
    if decision.nanos is None:
        if decision.reason != "not_succeeded":
            logs.credits_payment_skipped(user_id=uid, payment_id=payment_id, reason=decision.reason,
                                         currency=str(doc.get("currency") or ""))
        return None
    if decision.reason == "capped":
        logs.credits_payment_skipped(user_id=uid, payment_id=payment_id, reason="metadata_above_payment",
                                     currency="usd")
    granted = wallet.grant(db, uid, decision.nanos, wallet.PAYMENT, wallet.entry_id_for(wallet.PAYMENT, payment_id),
                           {"payment_id": payment_id, "source": "stripe",
                            "amount_received": doc.get("amount_received"), "currency": "usd"},
                           rearm_nanos=money.to_nanos(settings.low_credits_usd))
    if granted.created:
        logs.credits_granted(user_id=uid, amount_nanos=decision.nanos, source="stripe", entry_id=granted.entry["id"])
    return granted
