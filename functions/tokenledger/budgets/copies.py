"""The copy of a user's budget kept on their base month document (`budget_copy`), so the
scheduled check reads one document per active user: the month document carries both the spend
and the budget it is checked against.

    budget_copy: {"exists": true,  "fields": {the user_budgets fields}, "updated_at": <its updated_at>}
                 {"exists": false}   no budget document: the configured default, as configured
                                     at the time of the check

Only the fields a user_budgets document stores are copied (an omitted field still follows the
configuration), so `budget_of(copy)` is `rules.budget_from_doc(document)`. Used only by the
scheduled check: the chat path never enforces from a copy.

Why a copy is never stale (never older than the budget document it stands for):
- PUT /v1/admin/budgets (the only writer of user_budgets) writes the budget document and the
  copy in the current month's base document in ONE batch (`write_budget`): both or neither,
  and two PUTs land on both documents in the same order. In the last minutes of a month the
  batch writes the next month's copy too (`copy_months`): a PUT landing just after midnight
  by its clock of just before must not leave the new month's copy older than it.
- The check writes a missing copy in a transaction that reads the budget document
  (`fill`). The commit succeeds only if the budget document did not change since that read,
  so a PUT committed in between aborts the transaction, which is retried and reads the PUT's
  budget; a PUT committed after it overwrites the copy with its own. If the transaction cannot
  commit (contention), the check uses the budget it read and writes no copy: the next run tries
  again.
- `updated_at` is the budget document's own `updated_at` (PUT writes both from the same server
  timestamp), so a copy can be compared with its document: equal means the same PUT.
A month's copy is written while that month is current (by the PUT's clock) or when the check
first meets the user in that month; a check run for a month that has already ended uses the
budget as it was then, not a PUT made after it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore

from tokenledger import store
from tokenledger.budgets import rules
from tokenledger.config import Settings

FIELD = "budget_copy"
COPIED = rules.BUDGET_FIELDS + ("monthly_budget_nanos",)
READ_FIELDS = list(COPIED) + ["updated_at"]  # what the check reads of a budget document
ATTEMPTS = 3
# A PUT's batch may land this long after it read its clock (PUT_RETRY's 30 s, a slow request,
# instance clocks a little apart): in a month's last COPY_AHEAD, the next month's copy too.
COPY_AHEAD = timedelta(minutes=5)
# A PUT meeting the check's transaction on its budget document waits for it: the write is refused
# (ABORTED, nothing written) while the transaction holds the document, and tried again.
PUT_RETRY = gretry.Retry(predicate=gretry.if_exception_type(gexc.Aborted, gexc.ServiceUnavailable),
                         initial=0.1, maximum=1.0, multiplier=2.0, timeout=30.0)


def copy_of(doc: dict | None) -> dict:
    """The copy for a budget document's data (None: no document)."""
    if doc is None:
        return {"exists": False}
    return {"exists": True, "fields": {k: doc[k] for k in COPIED if k in doc}, "updated_at": doc.get("updated_at")}


def budget_of(copy: dict, settings: Settings, plan=None) -> rules.Budget:
    """The budget a copy stands for: what rules.budget_from_doc makes of the document (on the
    user's plan, when they have one)."""
    if not copy.get("exists"):
        return rules.budget_from_doc(None, settings, plan)
    return rules.budget_from_doc({"updated_at": copy.get("updated_at"), **(copy.get("fields") or {})}, settings, plan)


def _month_write(db, uid: str, month: str, copy: dict) -> tuple:
    """set() arguments replacing the whole copy (merge on the field path, not into the map:
    fields a new budget omits must not survive from the old copy)."""
    return (store.user_month_doc(db, uid, month), {FIELD: copy, "user_id": uid, "month": month},
            [FIELD, "user_id", "month"])


def copy_months(now: datetime) -> list[str]:
    """The months whose base documents a PUT at `now` (its instance's clock) writes the copy
    into: this month, and the next one too in the last COPY_AHEAD of a month. A PUT that read
    its clock just before midnight may land after the new month's first check filled that
    month's copy from the budget it read (the older one); nothing would correct that copy for
    the whole month."""
    months = [now.strftime("%Y-%m")]
    ahead = (now + COPY_AHEAD).strftime("%Y-%m")
    return months if ahead == months[0] else months + [ahead]


def write_budget(db, uid: str, months: list[str], budget_doc: dict, created: bool, also=None) -> None:
    """PUT's write: the budget document (`budget_doc` holds every budget field, omitted ones
    as DELETE_FIELD, and `updated_at` as SERVER_TIMESTAMP) and its copy in the base document of
    each of `months` (copy_months), in one batch. `created`: create() the document
    (AlreadyExists, and nothing written, when it is there), else replace its budget fields."""
    ref = store.budget_doc(db, uid)
    stored = {k: v for k, v in budget_doc.items() if v is not firestore.DELETE_FIELD}
    batch = db.batch()
    if created:
        batch.create(ref, stored | {"created_at": firestore.SERVER_TIMESTAMP})
    else:
        batch.set(ref, budget_doc, merge=True)
    for month in months:
        month_ref, data, paths = _month_write(db, uid, month, copy_of(stored))
        batch.set(month_ref, data, merge=paths)
    if also is not None:  # e.g. the audit log's entry of this change: in the same commit
        also(batch)
    batch.commit(retry=PUT_RETRY)


def fill(db, uids: list[str], month: str) -> tuple[dict[str, dict], int, bool]:
    """Read these users' budget documents and write each one's copy into their base month
    document, in one transaction (see the module's docstring for why that is safe).

    Returns ({uid: copy}, documents read, whether the copies were written). A document that does
    not exist is a read too, and each retried attempt reads again."""
    refs = [store.budget_doc(db, uid) for uid in uids]
    reads = 0

    def read(transaction=None) -> dict[str, dict]:
        nonlocal reads
        reads += len(refs)
        snaps = {s.id: s for s in db.get_all(refs, field_paths=READ_FIELDS, transaction=transaction)}
        return {uid: copy_of(snaps[uid].to_dict() if uid in snaps and snaps[uid].exists else None) for uid in uids}

    @firestore.transactional
    def write(transaction) -> dict[str, dict]:
        found = read(transaction)
        for uid, copy in found.items():
            ref, data, paths = _month_write(db, uid, month, copy)
            transaction.set(ref, data, merge=paths)
        return found

    try:
        return write(db.transaction(max_attempts=ATTEMPTS)), reads, True
    except (gexc.Aborted, gexc.DeadlineExceeded, gexc.ServiceUnavailable, ValueError):
        # Contention (another check filling the same copies, PUTs): check with a fresh read,
        # write no copy; the next run fills them.
        return read(), reads, False
