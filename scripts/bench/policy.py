"""Bench section 'policy' (issue 8): how conservative the ceiling is, and what the request
policy costs in CPU. Runs in-process (the stand-in's billing and plan_call); no stack needed.

  worst case / charge per corpus shape (scripts/devkit/ceiling_corpus.py): the reservation
  over what the stand-in billed when scripted to bill as much as OpenRouter may; target
  median <= 3x, never below 1x (that would be a ceiling that does not hold).
  CPU per call of plan_call (time.process_time over many calls) beside the checks it replaced
  (pydantic body model + prompt estimate + worst case); target < 1 ms.
"""
from __future__ import annotations

import statistics
import time

from scripts.devkit.ceiling_corpus import SETTINGS, Corpus, shapes
from scripts.devkit.table import print_table, usd
from tokenledger.api.validation import ChatRequest
from tokenledger.budgets import rules
from tokenledger.metering import usage
from tokenledger.policy import plan_call
from tokenledger.pricing.prices import Catalog, fallback_price, parse_catalog

ITERATIONS = 2000


def before_policy(corpus: Corpus, shape) -> str:
    """What the same shape did before the policy: the body forwarded as sent, reserved by the
    old rule (prompt characters / 3, max_tokens, the requested model's price; free: nothing)."""
    body = shape.body
    price = corpus.catalog.get(body["model"])
    if price is None:
        return "400 (unknown model)"
    reserved = 0 if price.is_free else rules.worst_case_nanos(
        price, fallback_price(price.model_id, SETTINGS.fallback_prompt_price, SETTINGS.fallback_completion_price),
        usage.estimate_prompt_tokens(body), body.get("max_tokens") or body.get("max_completion_tokens"), SETTINGS)
    charged = corpus.bill(body, shape.behaviour)
    return f"{usd(reserved)} / {usd(int(charged))}" + ("  OVER" if charged > reserved else "")


def bench_ratios(corpus: Corpus) -> tuple[list[list], list[float], int]:
    rows, ratios, over_before = [], [], 0
    for shape in shapes():
        outcome = corpus.run(shape)
        ratio = outcome.ratio
        if ratio is not None:
            ratios.append(ratio)
        before = before_policy(corpus, shape)
        over_before += before.endswith("OVER")
        rows.append([shape.name, usd(outcome.worst_nanos), usd(int(outcome.charge_nanos)),
                     "free" if ratio is None else f"{ratio:.2f}x", before])
    return rows, ratios, over_before


def cpu_us(fn, iterations: int = ITERATIONS) -> float:
    started = time.process_time()
    for _ in range(iterations):
        fn()
    return (time.process_time() - started) / iterations * 1e6


def old_checks(body: dict, catalog) -> None:
    """What prepare_call did before the policy: pydantic model, prompt estimate, worst case."""
    chat = ChatRequest.model_validate(body)
    price = catalog.get(chat.model) or fallback_price(chat.model, SETTINGS.fallback_prompt_price,
                                                      SETTINGS.fallback_completion_price)
    rules.worst_case_nanos(price, price, usage.estimate_prompt_tokens(body), chat.max_tokens, SETTINGS)


def bench_cpu(corpus: Corpus) -> list[list]:
    rows = []
    samples = []
    for shape in shapes():
        policy = cpu_us(lambda: plan_call(shape.body, corpus.catalog, SETTINGS), 300)
        samples.append(policy)
        rows.append((shape.name, policy))
    typical = {"model": "openai/gpt-4o-mini", "max_tokens": 200,
               "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi " * 50}]}
    policy = cpu_us(lambda: plan_call(typical, corpus.catalog, SETTINGS))
    before = cpu_us(lambda: old_checks(typical, corpus.catalog))
    worst_name, worst = max(rows, key=lambda row: row[1])
    big = large_catalog(corpus.catalog)
    routers = cpu_us(lambda: plan_call(ROUTERS_BODY, big, SETTINGS), 50)
    one_router = cpu_us(lambda: plan_call({**ROUTERS_BODY, "models": None}, big, SETTINGS), 50)
    return [
        ["typical chat body (2 messages)", f"{policy:.1f}", f"{before:.1f}", f"{policy - before:+.1f}"],
        ["corpus median", f"{statistics.median(samples):.1f}", "", ""],
        [f"corpus max ({worst_name})", f"{worst:.1f}", "", ""],
        [f"auto + 8 routers + 99 globs, {len(big.models)} models", f"{routers:.1f}",
         f"{one_router:.1f} (one router)", f"{routers / one_router:.2f}x"],
    ]


# Issue 16: the auto router plus 8 more routers in `models`, its pool pinned by 99 globs.
ROUTERS_BODY = {"model": "openrouter/auto", "models": ["openrouter/auto"] * 8, "max_tokens": 100,
                "messages": [{"role": "user", "content": "Hi"}],
                "plugins": [{"id": "auto-router", "allowed_models": [f"vendor{i}/*-{i}" for i in range(98)]
                             + ["openai/*"]}]}


def large_catalog(catalog) -> Catalog:
    """The corpus catalog plus synthetic models, about as many as OpenRouter lists (600)."""
    extra = {"data": [{"id": f"vendor{i % 100}/model-{i}", "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                       "context_length": 32_000} for i in range(600 - len(catalog.models))]}
    return Catalog({**catalog.models, **parse_catalog(extra, "openrouter").models}, "openrouter")


def run(stack=None) -> None:
    corpus = Corpus()
    print("\n== Request policy and the ceiling (issue 8) ==")
    rows, ratios, over_before = bench_ratios(corpus)
    print_table(["shape", "worst case", "charged", "worst/charged", "before the policy: reserved / charged"], rows,
                title="Reservation vs what the stand-in billed (scripted to bill as much as OpenRouter may)",
                numparse=False)
    print(f"ceiling corpus: median worst/charged over {len(ratios)} paid shapes: {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x); charged over the reservation: "
          f"{sum(r < 1 for r in ratios)} now, {over_before} before the policy")
    print_table(["body", "plan_call CPU µs", "old checks µs", "added µs"], bench_cpu(corpus),
                title="CPU per call of the request policy (time.process_time)", numparse=False)
