"""The cap on distinct `feature` names per user and month (TOKENLEDGER_MAX_FEATURES).

Every name is a key of the month and day documents' `by_feature` maps; unbounded, a user could
grow their month document to Firestore's 1 MiB limit (about 8,000 names) and every later write
of theirs would fail. Past the cap, new names are counted under `other` (the row keeps the name
asked for in `metadata.feature_requested`).

Deciding needs the names the month already has. FeatureBook keeps them per instance (bounded),
so a name already seen costs nothing; a name new to the instance is checked against the month
document: in the read the shared gate makes anyway, or one read of `by_feature` for a call that
skips the gate. Instances racing on new names can pass the cap by at most the calls they admit
at the same moment, which keeps the map bounded.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

OTHER = "other"
MAX_MONTHS = 10_000  # (user, month) entries kept per instance


def choose(feature: str | None, known: set | frozenset, cap: int) -> str | None:
    """The name a call is counted under (pure). None (no feature) is always its own key."""
    if feature is None or feature in known or not cap or len(known) < cap:
        return feature
    return OTHER


class FeatureBook:
    def __init__(self, max_entries: int = MAX_MONTHS):
        self.max_entries = max_entries
        self._known: OrderedDict[tuple[str, str], set] = OrderedDict()
        self._lock = threading.Lock()

    def needs_read(self, uid: str, month: str, feature: str | None, cap: int) -> bool:
        if feature is None or not cap:
            return False
        known = self._known.get((uid, month))
        return known is None or (feature not in known and len(known) < cap)

    def learn(self, uid: str, month: str, names) -> None:
        with self._lock:
            known = self._known.setdefault((uid, month), set())
            known.update(names)
            self._known.move_to_end((uid, month))
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)

    def choose(self, uid: str, month: str, feature: str | None, cap: int) -> str | None:
        chosen = choose(feature, self._known.get((uid, month), set()), cap)
        if chosen is not None:
            self.learn(uid, month, [chosen])
        return chosen
