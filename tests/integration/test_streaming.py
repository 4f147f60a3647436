"""Streamed chat calls through the real `api` function in the emulator: relayed as they come,
recorded once with the charged cost, and recorded (pending) when no usage chunk arrives."""
from __future__ import annotations

import time

from scripts.devkit.sse import events
from tokenledger import money

from .ledger_checks import actual_rollup, expected_rollup, month_doc, rows_for

LONG_TEXT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"


def stream(api, user, **body):
    body.setdefault("model", "openai/gpt-4o-mini")
    body.setdefault("messages", [{"role": "user", "content": LONG_TEXT}])
    return api.http.post(
        f"{api.base}/v1/chat/completions", headers=user.headers, json={**body, "stream": True}, stream=True, timeout=60
    )


def generation(standin, gen_id):
    return next(g for g in standin.generations() if g["id"] == gen_id)


def assert_rollups_match_rows(db, uid):
    rows = rows_for(db, uid)
    assert actual_rollup(month_doc(db, uid, rows[0]["month"])) == expected_rollup(rows)


def test_streamed_call_is_relayed_and_recorded_once_with_the_charged_cost(api, user, standin, db):
    response = stream(api, user, feature="chat-ui")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    received = list(events(response))

    assert received[0].is_comment  # ": OPENROUTER PROCESSING" is passed on
    assert received[-1].done
    chunks = [e.data for e in received if e.data is not None]
    usage_chunks = [c for c in chunks if c.get("usage")]
    assert len(usage_chunks) == 1 and usage_chunks[0]["choices"] == []  # empty choices, kept
    assert chunks[-1] is usage_chunks[0]  # the last chunk before [DONE]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.startswith("Echo: one two")

    gen_id = chunks[0]["id"]
    assert response.headers["X-Generation-Id"] == gen_id
    charged = usage_chunks[0]["usage"]["cost"]
    rows = rows_for(db, user.uid)
    assert [r["_id"] for r in rows] == [gen_id]
    row = rows[0]
    assert row["cost_nanos"] == money.to_nanos(money.to_decimal(charged)) > 0
    assert row["cost_nanos"] == money.to_nanos(money.to_decimal(generation(standin, gen_id)["total_cost"]))
    assert row["cost_source"] == "openrouter" and row["status"] == "ok"
    assert row["prompt_tokens"] == usage_chunks[0]["usage"]["prompt_tokens"]
    assert row["completion_tokens"] == usage_chunks[0]["usage"]["completion_tokens"]
    assert row["feature"] == "chat-ui" and row["metadata"]["stream"] is True
    assert row["estimated_cost_nanos"] == row["cost_nanos"]  # the catalog knows this model's prices
    assert_rollups_match_rows(db, user.uid)


def test_chunks_reach_the_client_while_the_upstream_is_still_generating(api, user, standin, db):
    # The stand-in sends two chunks and then holds the stream open, sending nothing: the
    # client can only see those chunks if they were forwarded before the upstream finished.
    standin.configure(stream_stall_s=30)
    standin.script([{"stream_stall_after": 2}], user=user.uid)
    response = stream(api, user)
    received = []
    for event in events(response):
        received.append(event)
        if sum(1 for e in received if e.data is not None) == 2:
            break
    contents = [e.data["choices"][0]["delta"]["content"] for e in received if e.data is not None]
    assert contents[0].startswith("Echo:")
    assert len(contents) == 2
    assert rows_for(db, user.uid) == []  # nothing recorded yet: the call is still running
    response.close()
    standin.reset()  # frees the stalled upstream: it ends without usage
    deadline = time.monotonic() + 20
    while not rows_for(db, user.uid) and time.monotonic() < deadline:
        time.sleep(0.2)
    [row] = rows_for(db, user.uid)
    assert row["cost_source"] == "pending" and row["status"] in ("incomplete", "aborted")


def test_upstream_error_mid_stream_is_forwarded_and_recorded_pending(api, user, standin, db):
    standin.script([{"stream_error_after": 2, "status": 502, "message": "Provider returned error"}], user=user.uid)
    response = stream(api, user)
    assert response.status_code == 200
    received = list(events(response))
    chunks = [e.data for e in received if e.data is not None]
    errors = [c for c in chunks if c.get("error")]
    assert len(errors) == 1
    assert errors[0]["error"]["message"] == "Provider returned error"
    assert errors[0]["choices"][0]["finish_reason"] == "error"
    assert received[-1].done

    gen_id = chunks[0]["id"]
    [row] = rows_for(db, user.uid)
    assert row["_id"] == gen_id
    assert row["status"] == "error"
    # No usage chunk came: what was billed (the part generated) is settled by reconcile_usage.
    assert row["cost_source"] == "pending" and row["cost_nanos"] == row["estimated_cost_nanos"] > 0
    assert "pending_settlement" in row["flags"]
    assert_rollups_match_rows(db, user.uid)


def test_stream_without_usage_is_recorded_incomplete_at_an_estimate(api, user, standin, db):
    standin.script([{"stream_no_usage": True}], user=user.uid)
    response = stream(api, user)
    received = list(events(response))
    assert received[-1].done
    assert not any(e.data and e.data.get("usage") for e in received)

    [row] = rows_for(db, user.uid)
    gen_id = received[1].data["id"]
    assert row["_id"] == row["generation_id"] == gen_id
    assert row["status"] == "incomplete" and row["cost_source"] == "pending"
    assert row["cost_nanos"] > 0  # an estimate, never a silent $0
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert_rollups_match_rows(db, user.uid)


def test_streaming_validation_errors_are_plain_json_and_write_nothing(api, user, standin, db):
    response = stream(api, user, model="no/such-model")
    assert response.status_code == 400
    assert response.json()["error"]["code"]
    assert rows_for(db, user.uid) == []


def test_upstream_refusal_before_streaming_is_an_error_response(api, user, standin, db):
    standin.script([{"status": 429, "retry_after": 7}], user=user.uid)
    response = stream(api, user)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers.get("Retry-After") == "7"
    assert rows_for(db, user.uid) == []


def test_openai_sdk_streams_through_the_api_and_reads_the_usage_chunk(stack, user, standin, db):
    import openai

    client = openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=user.id_token, max_retries=0)
    chunks = list(client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hello SDK"}], stream=True,
    ))
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
    [row] = rows_for(db, user.uid)
    assert row["_id"] == chunks[0].id
    assert row["cost_nanos"] == money.to_nanos(money.to_decimal(usage_chunks[0].usage.cost))


def test_openai_sdk_raises_on_a_mid_stream_error(stack, user, standin, db):
    import openai
    import pytest

    standin.script([{"stream_error_after": 1, "status": 502}], user=user.uid)
    client = openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=user.id_token, max_retries=0)
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": LONG_TEXT}], stream=True,
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    [row] = rows_for(db, user.uid)
    assert row["status"] == "error" and row["cost_source"] == "pending"
