"""Playground: models from /v1/models, the estimate, a streamed answer painted piece by piece,
then the cost of the usage chunk, equal to the ledger row's."""
from __future__ import annotations

import re
from decimal import Decimal

from scripts.devkit import browser, sse

from .helpers import rows_of, usd

MODEL = "openai/gpt-4o-mini"
PROMPT = "Write a haiku about careful bookkeeping."

# Records the answer's text at every DOM change, with the animation frame it happened in.
OBSERVE = """() => {
  window.__frame = 0;
  const tick = () => { window.__frame++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__paints = [];
  const answer = document.querySelector('#answer');
  new MutationObserver(() => window.__paints.push([answer.textContent, window.__frame]))
    .observe(answer, {childList: true, characterData: true, subtree: true});
}"""


def reference_stream(api, auth) -> list[str]:
    """The content deltas the API streams for the same request, read directly."""
    other = auth.create_user("reference")
    response = api.request("POST", "/v1/chat/completions", other, stream=True, json={
        "model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 200, "stream": True})
    assert response.status_code == 200
    pieces = []
    for event in sse.events(response):
        for choice in (event.data or {}).get("choices", []):
            if choice.get("delta", {}).get("content"):
                pieces.append(choice["delta"]["content"])
    return pieces


def test_models_and_estimate_come_from_the_api(page, app_url, auth, api):
    user = auth.create_user("models")
    browser.sign_in(page, app_url, user, "#/playground")
    page.locator("#main[data-ready]").wait_for()
    listed = api.request("GET", "/v1/models", user).json()["data"]
    options = page.eval_on_selector_all("#model option", "os => os.map(o => [o.value, o.textContent])")
    assert [value for value, _ in options] == [m["id"] for m in listed]
    labels = dict(options)
    assert labels["meta-llama/llama-3.3-70b-instruct:free"] == "meta-llama/llama-3.3-70b-instruct:free (free)"
    price = next(m for m in listed if m["id"] == MODEL)["pricing"]
    per_m = lambda p: Decimal(p) * 10**6  # noqa: E731
    assert labels[MODEL] == f"{MODEL} (${per_m(price['prompt']):.3f}/M in, ${per_m(price['completion']):.3f}/M out)"

    estimate = api.request("POST", "/v1/estimate", user, json={
        "model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 200}).json()
    expected = (f"Estimated cost: {usd(estimate['min_cost_nanos'])} to {usd(estimate['max_cost_nanos'])} "
                f"(about {estimate['prompt_tokens_estimate']:,} prompt tokens, at most "
                f"{estimate['max_completion_tokens']:,} completion tokens).")
    page.wait_for_function("t => document.querySelector('#estimate').textContent === t", arg=expected)


def test_stream_is_painted_as_it_arrives_and_cost_equals_the_ledger(page, app_url, auth, api, db, standin, shots):
    standin.configure(stream_chunk_delay_ms=40)
    pieces = reference_stream(api, auth)
    assert len(pieces) > 3  # the stand-in streams one word per chunk

    user = auth.create_user("playground")
    browser.sign_in(page, app_url, user, "#/playground")
    page.locator("#main[data-ready]").wait_for()
    page.evaluate(OBSERVE)
    page.get_by_label("Message").fill(PROMPT)
    page.get_by_role("button", name="Send").click()
    page.locator("#call-usage:not(:empty)").wait_for()

    answer = "".join(pieces)
    assert page.text_content("#answer") == answer
    # One paint per streamed piece, each showing the answer so far.
    prefixes = ["".join(pieces[: i + 1]) for i in range(len(pieces))]
    changes = [(text, frame) for text, frame in page.evaluate("window.__paints") if text]
    assert [text for text, _ in changes] == prefixes
    frames = [frame for _, frame in changes]
    assert frames == sorted(set(frames))  # each piece shown in a frame of its own
    assert page.get_attribute("#answer", "data-paints") == str(len(pieces))

    rows = rows_of(db, user.uid)
    assert len(rows) == 1
    row = rows[0]
    shown = page.text_content("#call-usage")
    m = re.fullmatch(r"(\d+) prompt \+ (\d+) completion tokens, cost \$([0-9.]+)", shown)
    assert m, shown
    assert (int(m.group(1)), int(m.group(2))) == (row["prompt_tokens"], row["completion_tokens"])
    assert Decimal(m.group(3)) == Decimal(row["cost_nanos"]).scaleb(-9)
    assert float(page.get_attribute("#call-usage", "data-cost")) == row["cost"]
    page.screenshot(path=str(shots / "web-playground.png"), full_page=True)


def test_rate_limit_is_a_sentence(page, app_url, auth, standin):
    user = auth.create_user("limited")
    standin.script([{"status": 429, "message": "Rate limit exceeded", "retry_after": 17}], user=user.uid)
    browser.sign_in(page, app_url, user, "#/playground")
    page.locator("#main[data-ready]").wait_for()
    page.get_by_role("button", name="Send").click()
    page.wait_for_function("document.querySelector('#problem').textContent !== ''")
    assert page.text_content("#problem") == "Too many requests right now. Please try again in 17 seconds."
    assert page.get_attribute("#problem", "data-code") == "rate_limited"
