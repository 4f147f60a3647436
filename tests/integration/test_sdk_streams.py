"""The SDKs an app wires tokenledger into still read every stream, now that the usage chunk (or,
with no usage chunk, a last chunk of empty `choices`) carries `usage_recorded` and `budget`: the
openai Python SDK, the openai JavaScript SDK and the Vercel AI SDK (tests/sdk, pinned), for real."""
from __future__ import annotations

import json
import subprocess

import pytest

from .ledger_checks import rows_for
from .served_api import ROOT

MODEL = "openai/gpt-4o-mini"
PROMPT = "Hello from an SDK"
TEXT = f"Echo: {PROMPT}"


def node(sdk: str, stack, user) -> dict:
    script = ROOT / "tests" / "sdk" / "stream_check.mjs"
    done = subprocess.run(["node", str(script), sdk, stack.api_url, user.id_token, MODEL, PROMPT],
                          capture_output=True, text=True, timeout=120, cwd=ROOT / "tests" / "sdk")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def python_sdk(stack, user) -> dict:
    import openai

    client = openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=user.id_token, max_retries=0)
    text, usage, signals = "", None, []
    for chunk in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}],
                                                stream=True, stream_options={"include_usage": True}):
        text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        usage = chunk.usage.model_dump() if chunk.usage is not None else usage
        extra = chunk.model_extra or {}
        if "usage_recorded" in extra:
            signals.append({"usage_recorded": extra["usage_recorded"], "budget": extra.get("budget"),
                            "choices": len(chunk.choices)})
    return {"text": text, "usage": usage, "signals": signals}


def run(sdk: str, stack, user) -> dict:
    return python_sdk(stack, user) if sdk == "python" else node(sdk, stack, user)


@pytest.mark.parametrize("sdk", ["python", "openai", "vercel"])
def test_each_sdk_reads_the_stream_and_its_usage_chunk_says_recorded(sdk, stack, user, standin, db):
    got = run(sdk, stack, user)
    [row] = rows_for(db, user.uid)
    assert got["text"] == TEXT
    assert (got["usage"]["prompt_tokens"], got["usage"]["completion_tokens"]) == (row["prompt_tokens"],
                                                                                   row["completion_tokens"])
    assert got.get("errors", []) == []
    [signal] = got["signals"]  # in the usage chunk, whose `choices` is empty
    assert (signal["usage_recorded"], signal["choices"]) == ("true", 0)
    # The budget object as GET /v1/budget would show it just after the call (the default $1 budget).
    assert signal["budget"]["monthly_budget"] == 1 and signal["budget"]["spent"] == row["cost"]


@pytest.mark.parametrize("sdk", ["python", "openai", "vercel"])
def test_each_sdk_reads_a_stream_that_ends_with_the_signal_chunk(sdk, stack, user, standin, db):
    standin.script([{"stream_no_usage": True}], user=user.uid)  # no usage chunk from upstream
    got = run(sdk, stack, user)
    [row] = rows_for(db, user.uid)
    assert got["text"] == TEXT and row["cost_source"] == "pending"
    assert got.get("errors", []) == []
    [signal] = got["signals"]
    assert (signal["usage_recorded"], signal["choices"]) == ("true", 0)
    assert signal["budget"]["monthly_budget"] == 1
