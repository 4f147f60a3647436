"""Acceptance 2 and bad input: a user reads only their own usage, admin routes need the
claim, exports never carry another user's rows; bad dates and ranges are clear 400s."""
from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from scripts.devkit import workload
from tokenledger import money
from tokenledger.analytics import figures, summaries
from tokenledger.config import Settings
from tokenledger.metering import ledger


@pytest.fixture(scope="module")
def two_users(api, auth):
    alice, bob = auth.create_user("alice"), auth.create_user("bob")
    for who, model in ((alice, "openai/gpt-4o-mini"), (bob, "anthropic/claude-sonnet-4"), (bob, "openai/gpt-4o-mini")):
        response = api.chat(who, model=model)
        assert response.status_code == 200, response.text
    return alice, bob


@pytest.fixture(scope="module")
def admin(auth):
    return auth.create_user("admin", admin=True)


def test_usage_without_a_token_is_401(api):
    response = api.request("GET", "/v1/usage")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


def test_a_user_sees_only_their_own_usage(api, two_users):
    alice, bob = two_users
    mine = api.request("GET", "/v1/usage", alice).json()
    assert mine["user_id"] == alice.uid and mine["totals"]["calls"] == 1
    assert list(mine["by_model"]) == ["openai/gpt-4o-mini"]
    other = api.request("GET", f"/v1/usage?user={bob.uid}", alice)
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/v1/admin/usage/{bob}", "/v1/admin/top-users", "/v1/admin/totals"])
def test_admin_routes_answer_403_without_the_claim(api, two_users, path):
    alice, bob = two_users
    response = api.request("GET", path.format(bob=bob.uid), alice)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert "calls" not in response.text


def test_admin_reads_any_user(api, two_users, admin):
    _, bob = two_users
    seen = api.request("GET", f"/v1/admin/usage/{bob.uid}", admin)
    assert seen.status_code == 200 and seen.json()["totals"]["calls"] == 2


def _csv(response):
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_exports_never_include_other_users_rows(api, two_users, admin):
    alice, bob = two_users
    own = _csv(api.request("GET", "/v1/usage/export", alice))
    assert len(own) == 1 and {r["user_id"] for r in own} == {alice.uid}
    refused = api.request("GET", f"/v1/usage/export?user={bob.uid}", alice)
    assert refused.status_code == 403 and bob.uid not in refused.text
    everyone = api.request("GET", "/v1/usage/export?user=*", alice)
    assert everyone.status_code == 403
    bobs = _csv(api.request("GET", f"/v1/usage/export?user={bob.uid}", admin))
    assert len(bobs) == 2 and {r["user_id"] for r in bobs} == {bob.uid}
    assert "attachment" in api.request("GET", "/v1/usage/export", alice).headers["Content-Disposition"]


def test_export_is_streamed_with_a_header_naming_the_row_fields(api, two_users):
    alice, _ = two_users
    response = api.request("GET", "/v1/usage/export?format=csv", alice)
    # Streamed as it is read, page by page: no length known up front.
    assert response.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in response.headers
    header = response.text.splitlines()[0].split(",")
    for column in ("generation_id", "user_id", "timestamp", "model", "feature", "prompt_tokens",
                   "completion_tokens", "total_tokens", "cost", "cost_source"):
        assert column in header


@pytest.mark.parametrize(
    "query, code",
    [
        ("from=2026-13-01", "invalid_date"),
        ("from=yesterday", "invalid_date"),
        ("to=2026-02-30", "invalid_date"),
        ("from=2026-11-20&to=2026-11-01", "invalid_range"),
        ("from=2024-01-01&to=2026-01-01", "range_too_long"),
        ("granularity=week", "invalid_granularity"),
    ],
)
def test_bad_dates_and_ranges_are_400(api, user, query, code):
    paths = ("/v1/usage",) if code == "invalid_granularity" else ("/v1/usage", "/v1/usage/export")
    for path in paths:
        response = api.request("GET", f"{path}?{query}", user)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == code and response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path, code",
    [
        ("/v1/admin/top-users?limit=0", "invalid_limit"),
        ("/v1/admin/top-users?limit=many", "invalid_limit"),
        ("/v1/admin/top-users?month=2026-1", "invalid_month"),
        ("/v1/admin/totals?month=November", "invalid_month"),
        ("/v1/usage/export?format=xml", "invalid_format"),
    ],
)
def test_bad_admin_and_export_parameters_are_400(api, admin, path, code):
    response = api.request("GET", path, admin)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_the_longest_range_is_configurable_and_answered(api, user):
    # Settings() default: 366 days; exactly that many is fine, one more is not.
    start = datetime(2025, 1, 1).date()
    ok = api.request("GET", f"/v1/usage?from={start}&to={start + timedelta(days=365)}&granularity=month", user)
    assert ok.status_code == 200 and ok.json()["totals"]["calls"] == 0
    assert len(ok.json()["series"]) == 13
    too_long = api.request("GET", f"/v1/usage?from={start}&to={start + timedelta(days=366)}", user)
    assert too_long.status_code == 400


def test_export_pages_with_a_cursor_and_never_repeats_a_row(db):
    """The export's paging, on the emulator with a tiny page: every row once, oldest first."""
    uid = f"pager-{datetime.now(timezone.utc).timestamp():.0f}"
    base = datetime(2025, 3, 31, 23, 0, tzinfo=timezone.utc)
    records = [workload.record(uid, "openai/gpt-4o-mini", base + timedelta(minutes=20 * i)) for i in range(7)]
    for rec in records:
        ledger.record_usage(db, rec, Settings(), replay=True)
    span = figures.DateRange(datetime(2025, 3, 1).date(), datetime(2025, 4, 30).date())
    pages = list(summaries.export_pages(db, uid, span, page_size=3))
    assert [len(p) for p in pages] == [3, 3, 1]
    ids = [doc_id for page in pages for doc_id, _ in page]
    assert ids == [rec.generation_id for rec in records]  # chronological, across the month boundary
    only_april = figures.DateRange(datetime(2025, 4, 1).date(), datetime(2025, 4, 1).date())
    april = [d["day"] for page in summaries.export_pages(db, uid, only_april, page_size=2) for _, d in page]
    assert april and set(april) == {"2025-04-01"}


def _catalog_price(api, user, model):
    models = api.request("GET", "/v1/models", user).json()["data"]
    return next(m for m in models if m["id"] == model)["pricing"]


def test_estimate_is_labelled_and_priced_from_the_catalog(api, user):
    text = "Summarise the attached meeting notes in five bullet points, please."
    body = {"model": "anthropic/claude-sonnet-4", "messages": [{"role": "user", "content": text}], "max_tokens": 400}
    response = api.request("POST", "/v1/estimate", user, json=body)
    assert response.status_code == 200, response.text
    estimate = response.json()
    assert estimate["estimate"] is True and "estimate" in estimate["note"].lower()
    assert estimate["is_free"] is False and estimate["model"] == "anthropic/claude-sonnet-4"
    prompt_tokens = math.ceil(len(text) / 3) + 8 + 1  # ~3 characters a token, plus per-message overhead
    assert estimate["prompt_tokens_estimate"] == prompt_tokens
    price = _catalog_price(api, user, "anthropic/claude-sonnet-4")
    low = prompt_tokens * Decimal(price["prompt"])
    # max_cost is the chat call's reservation (the request policy's worst case): the message's
    # JSON bytes + 8 prompt tokens at the dearest input price (the cache write), every
    # completion token at the completion price
    bound = len(json.dumps(body["messages"][0], separators=(",", ":"))) + 8
    assert bound == 103
    high = bound * Decimal(price["input_cache_write"]) + 400 * Decimal(price["completion"])
    assert (estimate["min_cost_nanos"], estimate["max_cost_nanos"]) == (money.to_nanos(low), money.to_nanos(high))
    assert estimate["min_cost"] == money.usd_float(money.to_nanos(low)) < estimate["max_cost"]


def test_estimate_of_a_free_model_is_zero_and_a_router_is_priced_at_its_dearest_target(api, user):
    free = api.request("POST", "/v1/estimate", user, json={
        "model": "meta-llama/llama-3.3-70b-instruct:free", "messages": [{"role": "user", "content": "hi"}]}).json()
    assert (free["is_free"], free["min_cost_nanos"], free["max_cost_nanos"]) == (True, 0, 0)
    router = api.request("POST", "/v1/estimate", user, json={
        "model": "openrouter/auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}).json()
    # no lower end; the upper end is the worst case over every model the router may pick (no
    # allowlist: the whole catalog): '{"role":"user","content":"hi"}' is 30 bytes + 8 = 38 prompt
    # tokens x $0.0000075 (claude-sonnet-4.5's cache write in its long-context tier: 1.25 x $6/M)
    # + 10 x $0.0000225 (that tier's completion) + $0.005 (perplexity/sonar's per-request price)
    assert router["variable_price"] is True and router["min_cost"] is None and router["note"]
    assert router["max_cost_nanos"] == 38 * 7_500 + 10 * 22_500 + 5_000_000 == 5_510_000


@pytest.mark.parametrize(
    "body, code",
    [
        ({"model": "no/such-model", "messages": [{"role": "user", "content": "hi"}]}, "model_not_found"),
        ({"model": "openai/gpt-4o"}, "invalid_request"),
        ({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**7}, "max_tokens_too_large"),
        ({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}, "invalid_request"),
    ],
)
def test_estimate_bad_input_is_400(api, user, body, code):
    response = api.request("POST", "/v1/estimate", user, json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_estimate_needs_a_signed_in_user(api):
    response = api.request("POST", "/v1/estimate", json={"model": "openai/gpt-4o", "messages": []})
    assert response.status_code == 401


def test_json_export_is_one_valid_document(api, two_users):
    _, bob = two_users
    body = json.loads(api.request("GET", "/v1/usage/export?format=json", bob).text)
    assert body["export"]["user"] == bob.uid and body["count"] == len(body["rows"]) == 2
    assert sum(r["cost_nanos"] for r in body["rows"]) == api.request("GET", "/v1/usage", bob).json()["totals"]["cost_nanos"]
