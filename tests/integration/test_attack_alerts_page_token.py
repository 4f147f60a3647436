"""Red-team probe of GET /v1/alerts and /v1/admin/alerts: `page_token` is text from the client
and becomes a Firestore document id. Whatever it holds, the answer is a 400
`invalid_page_token` (never a 500, never another user's alert)."""
from __future__ import annotations

import pytest

from .budget_helpers import put_budget

TOKENS = [
    "a/b",  # a path: budget_alerts/a/b would be a collection
    "a/b/c",  # a path to a document in a subcollection
    "/",
    "a//b",
    ".",
    "..",
    "__reserved__",
    "x" * 1600,  # over Firestore's 1,500-byte document id limit
]


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


@pytest.mark.parametrize("token", TOKENS, ids=lambda t: repr(t[:20]))
def test_a_page_token_that_names_no_alert_is_a_400(api, admin, user, token):
    put_budget(api, admin, user.uid, monthly_budget=1, enforce=False)
    for path, who in (("/v1/alerts", user), ("/v1/admin/alerts", admin)):
        response = api.request("GET", path, who, params={"page_token": token})
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.json()["error"]["code"] == "invalid_page_token"


def test_another_users_alert_id_is_refused_like_a_missing_one(api, admin, auth, user, db):
    """Alert ids are `{uid}_{YYYY-MM}_{threshold}`: anyone who knows a uid can guess them. A page
    token naming another user's alert must answer exactly as one naming no alert, or the answer
    tells whether that user has crossed 80% of their budget this month."""
    other = auth.create_user("other")
    put_budget(api, admin, other.uid, monthly_budget=0.000001, enforce=False)
    # gpt-4o-mini, "Hello there": 7 x 150 + 17 x 600 = 11,250 nanos, over both thresholds of $0.000001
    assert api.chat(other, max_tokens=50).status_code == 200
    month = api.request("GET", "/v1/budget", other).json()["month"]
    crossed = f"{other.uid}_{month}_0.8"
    assert db.collection("budget_alerts").document(crossed).get().exists
    never = f"{other.uid}_{month}_0.5"  # no such threshold: no such alert
    answers = [api.request("GET", "/v1/alerts", user, params={"page_token": token}) for token in (crossed, never)]
    assert [r.status_code for r in answers] == [400, 400], [r.text for r in answers]
    assert [r.json()["error"]["code"] for r in answers] == ["invalid_page_token"] * 2
