"""The plans of many users at once, for the scheduled check (budgets/check.py): a chat call knows
its caller's plan from the ID token; the check has only uids, so it asks Firebase Auth for the
users' custom claims — one lookup per 100 users — and resolves them on the plans it read once
per run (one query). Without plan documents nothing is looked up: the check runs as before."""
from __future__ import annotations

from firebase_admin import auth as fb_auth

from tokenledger import logs, store
from tokenledger.budgets import plans
from tokenledger.budgets.plans import Plan
from tokenledger.config import Settings

AUTH_BATCH = 100  # users per Auth lookup (the Admin SDK's limit)


def read_plans(db) -> dict[str, Plan]:
    return {s.id: plans.plan_from_doc(s.id, s.to_dict()) for s in db.collection(store.PLANS).limit(500).stream()}


def plans_of(book: dict[str, Plan], uids: list[str], settings: Settings, lookup=None) -> dict[str, Plan | None]:
    """{uid: the plan a call of theirs would be held to}. A user Auth does not know, or a lookup
    that fails, gets the default plan (logged)."""
    default, _ = plans.choose(book, None, settings.default_plan)
    if not book:
        return {uid: None for uid in uids}
    lookup = lookup or fb_auth.get_users
    found: dict[str, Plan | None] = {}
    for start in range(0, len(uids), AUTH_BATCH):
        chunk = uids[start:start + AUTH_BATCH]
        try:
            result = lookup([fb_auth.UidIdentifier(uid) for uid in chunk])
        except Exception as exc:  # noqa: BLE001 - Auth down: the default plan, said in the logs
            logs.plans_read_failed(error=f"auth lookup: {type(exc).__name__}")
            continue
        for user in result.users:
            claimed = plans.claimed_plan(user.custom_claims or {}, settings.plan_claim)
            found[user.uid] = plans.choose(book, claimed, settings.default_plan)[0]
    return {uid: found.get(uid, default) for uid in uids}


def any_dollar_budget(book: dict[str, Plan]) -> bool:
    return any(p.fields.get("monthly_budget_nanos") is not None or p.fields.get("monthly_budget") is not None
               for p in book.values())
