"""One chat call through the HTTPS API -> exactly one row and its rollups, for the token's user."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

from tokenledger import money

from .ledger_checks import actual_rollup, day_doc, expected_rollup, month_doc, rows_for

LONG_CONTEXT = "You are a careful assistant. " * 40  # well over the stand-in's cache threshold


def generation(standin, gen_id):
    matches = [g for g in standin.generations() if g.get("id") == gen_id]
    assert matches, f"the stand-in has no generation {gen_id}"
    return matches[0]


def test_paid_call_with_cache_and_reasoning_records_every_field(api, user, db, standin):
    messages = [{"role": "system", "content": LONG_CONTEXT}, {"role": "user", "content": "first question"}]
    first = api.chat(user, model="anthropic/claude-sonnet-4", messages=messages, feature="support-chat")
    assert first.status_code == 200, first.text
    assert first.json()["usage"]["prompt_tokens_details"]["cache_write_tokens"] > 0

    messages[-1]["content"] = "second question"
    standin.script([{"usage": {"completion_tokens_details": {"reasoning_tokens": 7}}}], user=user.uid)
    second = api.chat(user, model="anthropic/claude-sonnet-4", messages=messages, feature="support-chat", max_tokens=64)
    assert second.status_code == 200, second.text
    body = second.json()
    assert second.headers["X-Usage-Recorded"] == "true"
    usage = body["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] > 0

    row = db.collection("usage_tracking").document(body["id"]).get().to_dict()
    charged = generation(standin, body["id"])
    now = datetime.now(timezone.utc)
    assert row["user_id"] == user.uid
    assert row["model"] == body["model"] == "anthropic/claude-sonnet-4"
    assert row["requested_model"] == "anthropic/claude-sonnet-4"
    assert row["provider"] == body["provider"]
    assert (row["is_free"], row["model_type"]) == (False, "paid")
    assert row["prompt_tokens"] == usage["prompt_tokens"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    assert row["total_tokens"] == usage["total_tokens"]
    assert row["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
    assert row["cache_write_tokens"] == usage["prompt_tokens_details"].get("cache_write_tokens", 0)
    assert row["reasoning_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"] == 7
    # The cost of record is what OpenRouter charged, to the nano-dollar.
    assert row["cost_nanos"] == money.to_nanos(Decimal(str(charged["total_cost"])))
    assert row["cost_nanos"] == money.to_nanos(money.to_decimal(usage["cost"]))
    assert row["cost"] == usage["cost"]
    assert row["cost_source"] == "openrouter"
    assert abs(row["estimated_cost_nanos"] - row["cost_nanos"]) <= row["cost_nanos"] // 100
    assert row["is_byok"] is False
    assert row["upstream_cost"] == usage["cost_details"]["upstream_inference_cost"]
    assert row["latency_ms"] >= 0 and row["endpoint"] == "/v1/chat/completions"
    assert row["feature"] == "support-chat" and row["status"] == "ok"
    assert abs((now - row["timestamp"]).total_seconds()) < 120
    assert row["month"] == now.strftime("%Y-%m") and row["day"] == now.strftime("%Y-%m-%d")
    assert row["metadata"]["message_count"] == 2 and row["metadata"]["max_tokens"] == 64
    assert "second question" not in str(row)  # no prompt text by default
    assert row["expire_at"] > row["timestamp"]

    month = month_doc(db, user.uid, row["month"])
    assert month["calls"] == 2 and month["paid_calls"] == 2
    assert month["cached_tokens"] == row["cached_tokens"]
    assert month["by_feature"]["support-chat"]["calls"] == 2


def test_free_call_is_free(api, user, db):
    response = api.chat(user, model="meta-llama/llama-3.3-70b-instruct:free")
    assert response.status_code == 200, response.text
    row = db.collection("usage_tracking").document(response.json()["id"]).get().to_dict()
    assert (row["is_free"], row["model_type"], row["cost_nanos"], row["flags"]) == (True, "free", 0, [])
    month = month_doc(db, user.uid, row["month"])
    assert (month["free_calls"], month["paid_calls"], month["free_tokens"]) == (1, 0, row["total_tokens"])


def test_auto_router_records_the_served_model(api, user, db, standin):
    response = api.chat(user, model="openrouter/auto")
    assert response.status_code == 200, response.text
    row = db.collection("usage_tracking").document(response.json()["id"]).get().to_dict()
    assert row["requested_model"] == "openrouter/auto"
    assert row["model"] == response.json()["model"] != "openrouter/auto"
    charged = generation(standin, response.json()["id"])["total_cost"]
    assert row["cost_nanos"] == money.to_nanos(money.to_decimal(charged)) and row["cost_source"] == "openrouter"
    assert abs(row["estimated_cost_nanos"] - row["cost_nanos"]) <= max(row["cost_nanos"] // 100, 1)


def test_missing_cost_uses_the_catalog_estimate(api, user, db, standin):
    standin.script([{"omit_cost": True}], user=user.uid)
    response = api.chat(user, model="openai/gpt-4o")
    assert response.status_code == 200, response.text
    assert "cost" not in response.json()["usage"]
    row = db.collection("usage_tracking").document(response.json()["id"]).get().to_dict()
    assert row["cost_source"] == "estimate" and "cost_missing" in row["flags"]
    assert row["cost_nanos"] == row["estimated_cost_nanos"] > 0
    # The estimate is what the stand-in actually billed for those tokens.
    charged = generation(standin, response.json()["id"])
    assert abs(row["cost_nanos"] - money.to_nanos(Decimal(str(charged["total_cost"])))) <= 1


def test_free_model_that_billed_is_recorded_as_paid_and_flagged(api, user, db, standin):
    standin.script([{"cost": 0.0021}], user=user.uid)
    response = api.chat(user, model="deepseek/deepseek-chat-v3-0324:free")
    assert response.status_code == 200, response.text
    row = db.collection("usage_tracking").document(response.json()["id"]).get().to_dict()
    assert (row["model_type"], row["cost_nanos"]) == ("paid", 2_100_000)
    assert "free_model_billed" in row["flags"]


def test_uid_comes_from_the_token_not_the_body(api, auth, db, standin):
    victim = auth.create_user("victim")
    caller = auth.create_user("caller")
    response = api.chat(caller, user_id=victim.uid, user=victim.uid)
    assert response.status_code == 200, response.text
    row = db.collection("usage_tracking").document(response.json()["id"]).get().to_dict()
    assert row["user_id"] == caller.uid
    assert rows_for(db, victim.uid) == []
    sent = [r for r in standin.requests() if r["body"].get("user") == caller.uid]
    assert sent and "user_id" not in sent[-1]["body"] and "feature" not in sent[-1]["body"]
    assert sent[-1]["headers"].get("x-openrouter-title")


def test_rollups_equal_the_rows(api, user, db, standin):
    calls = [
        ("openai/gpt-4o-mini", "search"),
        ("openai/gpt-4o-mini", None),
        ("anthropic/claude-3.5-haiku", "search"),
        ("meta-llama/llama-3.3-70b-instruct:free", "summary"),
        ("deepseek/deepseek-r1", "summary"),
        ("perplexity/sonar", None),
        ("openrouter/free", "search"),
    ]
    for index, (model, feature) in enumerate(calls):
        body = {"model": model, "messages": [{"role": "user", "content": f"question {index} " * (index + 1)}]}
        if feature:
            body["feature"] = feature
        assert api.chat(user, **body).status_code == 200
    rows = rows_for(db, user.uid)
    assert len(rows) == len(calls) and len({r["_id"] for r in rows}) == len(calls)
    month = rows[0]["month"]
    assert actual_rollup(month_doc(db, user.uid, month)) == expected_rollup(rows)
    day = rows[0]["day"]
    assert actual_rollup(day_doc(db, user.uid, day)) == expected_rollup(rows)
    # USD floats are for people; the exact sum lives in cost_nanos.
    assert abs(month_doc(db, user.uid, month)["cost"] - sum(r["cost"] for r in rows)) < 1e-9


def _shard_sums(db, month: str) -> Counter:
    shards = list(db.collection("usage_totals").document(month).collection("shards").stream())
    assert all(s.id.isdigit() for s in shards)
    sums = Counter()
    for shard in shards:
        sums.update({k: v for k, v in shard.to_dict().items() if isinstance(v, int)})
    return sums


def test_global_totals_are_sharded_counters(api, user, db):
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    before = _shard_sums(db, month)
    response = api.chat(user, model="openai/gpt-4o-mini")
    row = db.collection("usage_tracking").document(response.json()["id"]).get().to_dict()
    assert row["month"] == month
    added = _shard_sums(db, month) - before
    # Exactly this call, in every counter the totals keep (tests run one at a time).
    assert dict(added) == {
        "calls": 1, "paid_calls": 1, "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"], "total_tokens": row["total_tokens"],
        "paid_tokens": row["total_tokens"], "cost_nanos": row["cost_nanos"],
    }


def test_models_lists_prices_and_free_flags(api, user):
    response = api.request("GET", "/v1/models", user)
    assert response.status_code == 200, response.text
    data = {m["id"]: m for m in response.json()["data"]}
    assert data["meta-llama/llama-3.3-70b-instruct:free"]["is_free"] is True
    assert data["openai/gpt-4o-mini"]["is_free"] is False
    assert data["openai/gpt-4o-mini"]["pricing"]["prompt"] == "0.00000015"
    assert response.json()["catalog"]["source"] in ("openrouter", "stored")


def test_openai_sdk_works_against_the_api_with_the_id_token(stack, user, db):
    import openai

    client = openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=user.id_token, max_retries=0)
    completion = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "hello from the SDK"}],
        extra_body={"feature": "sdk"},
    )
    assert completion.usage.cost > 0  # OpenRouter's extra usage fields survive the trip
    row = db.collection("usage_tracking").document(completion.id).get().to_dict()
    assert row["user_id"] == user.uid and row["feature"] == "sdk"
