"""The per-instance plan copy (plan_book.py): one query per cache time whatever the calls, an
unknown plan costs no read per call and is logged once, an admin change clears it."""
from __future__ import annotations

from types import SimpleNamespace

from tokenledger import logs
from tokenledger.budgets import plan_book
from tokenledger.budgets.plan_book import PlanBook


class Plans:
    """The `plans` collection as the book queries it; counts the queries."""

    def __init__(self, docs: dict):
        self.docs = docs
        self.queries = 0

    def collection(self, name):
        assert name == "plans"
        return self

    def limit(self, n):
        return self

    def stream(self, **kwargs):
        self.queries += 1
        return [SimpleNamespace(id=k, to_dict=lambda v=v: dict(v)) for k, v in self.docs.items()]


def test_one_query_per_cache_time_whatever_the_calls(monkeypatch):
    db = Plans({"pro": {"monthly_budget": 20.0}, "free": {}})
    book = PlanBook(ttl_s=60, default_plan="free")
    for k in range(1000):
        assert book.plan_for(db, "pro", 1000.0 + k * 0.05).plan_id == "pro"
        assert book.plan_for(db, None, 1000.0 + k * 0.05).plan_id == "free"
    assert db.queries == 1  # 2,000 calls over 50 s
    book.plan_for(db, "pro", 1060.0)
    assert db.queries == 2  # the copy is 60 s old: read again


def test_an_unknown_plan_falls_back_costs_at_most_one_reload_per_5_s_and_is_logged_once(monkeypatch):
    seen = []
    monkeypatch.setattr(logs, "plan_unknown", lambda plan_id, fallback: seen.append((plan_id, fallback)))
    db = Plans({"free": {}})
    book = PlanBook(ttl_s=60, default_plan="free")
    for k in range(100):
        assert book.plan_for(db, "gold", 1000.0 + k * 0.01).plan_id == "free"
    assert db.queries == 1 and seen == [("gold", "free")]
    assert book.plan_for(db, "gold", 1000.0 + plan_book.MISS_RELOAD_S).plan_id == "free"
    assert db.queries == 2 and seen == [("gold", "free")]
    db.docs["gold"] = {}
    assert book.plan_for(db, "gold", 1000.0 + 2 * plan_book.MISS_RELOAD_S).plan_id == "gold"  # created meanwhile


def test_forget_reloads_at_once_and_no_plans_means_none():
    db = Plans({})
    book = PlanBook(ttl_s=60, default_plan="free")
    assert book.plan_for(db, None, 1000.0) is None  # out of the box: no plan, the defaults
    db.docs["free"] = {"monthly_budget": 5.0}
    book.forget()  # an admin PUT on this instance
    assert book.plan_for(db, None, 1000.1).fields["monthly_budget"] == 5.0
