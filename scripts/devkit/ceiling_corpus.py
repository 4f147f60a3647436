"""The ceiling corpus: request shapes run through the request policy and then through the
stand-in's billing with the exact upstream body the policy produced, so the charge can be held
against the reservation (tests/unit/test_policy_ceiling.py asserts charge <= worst case;
`make bench ARGS=policy` prints how conservative the ceiling is).

Each shape comes with what the stand-in is scripted to do: the documented ways OpenRouter bills
more than the request names — the first model down so a paid fallback serves, the model
searching as often as it likes, a completion as long as max_tokens allows.
"""
from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "functions", ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from openrouter_standin import create_app  # noqa: E402

from tokenledger.config import Settings  # noqa: E402
from tokenledger.policy import plan_call  # noqa: E402
from tokenledger.pricing.prices import Catalog, parse_catalog  # noqa: E402

KEY = "sk-or-v1-corpus"
AUTH = {"Authorization": f"Bearer {KEY}"}
FREE = "meta-llama/llama-3.3-70b-instruct:free"
LONG = "Summarise the quarterly report for the board, with risks and next steps. " * 6
LONGEST = 10**6  # scripted completion length: the stand-in clamps it to the max_tokens sent
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 " + b"quarterly figures " * 400).decode()
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.test/chart.png"}}
TOOLS = [{"type": "function", "function": {
    "name": f"tool_{i}", "description": "Looks up a record by id and returns its fields. " * 4,
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}, "limit": {"type": "integer"}}}}}
    for i in range(12)]
BIG_TOOLS = [{"type": "function", "function": {"name": f"t{i}", "description": "d" * 1580}} for i in range(120)]
HISTORY = [
    {"role": "user", "content": "What is the weather in Paris and in Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "tool_0", "arguments": '{"id": "paris"}'}},
        {"id": "c2", "type": "function", "function": {"name": "tool_0", "arguments": '{"id": "rome"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 14, "sky": "cloudy"}'},
    {"role": "tool", "tool_call_id": "c2", "content": '{"temp": 19, "sky": "clear"}'},
]
SEARCH_MODELS = ("openai/o4-mini-deep-research", "perplexity/sonar-deep-research")  # search previews need no listing
SETTINGS = Settings(allow_web_search=True, search_models=SEARCH_MODELS)
WIDE = [2048, 768]  # the image gpt-4o-mini bills most for: 8 tiles after its scaling


@dataclass(frozen=True)
class Shape:
    name: str
    body: dict
    behaviour: dict  # what the stand-in is scripted to do for this call
    pricing: dict | None = None  # {model: prices merged into its /models entry} for this shape


def user(text: str = "Hello, how are you today?") -> list[dict]:
    return [{"role": "user", "content": text}]


def shapes() -> list[Shape]:
    mini = "openai/gpt-4o-mini"
    return [
        Shape("plain, max_tokens 64", {"model": mini, "messages": user(LONG), "max_tokens": 64}, {}),
        Shape("plain, max_tokens 200", {"model": mini, "messages": user(), "max_tokens": 200}, {}),
        Shape("plain, longest answer", {"model": mini, "messages": user(), "max_tokens": 300},
              {"usage": {"completion_tokens": LONGEST}}),
        Shape("no max_tokens, longest answer", {"model": mini, "messages": user(LONG)},
              {"usage": {"completion_tokens": LONGEST}}),
        Shape("LangChain: max_completion_tokens", {"model": "anthropic/claude-3.5-haiku", "messages": user(LONG),
              "max_completion_tokens": 120, "stream": False, "stream_options": {"include_usage": True}}, {}),
        Shape("max_tokens 1 + max_completion_tokens 4000",
              {"model": mini, "messages": user(), "max_tokens": 1, "max_completion_tokens": 4000},
              {"usage": {"completion_tokens": LONGEST}}),
        Shape(":free with a paid fallback (free one down)",
              {"model": FREE, "models": ["openai/gpt-4o"], "messages": user(LONG), "max_tokens": 100},
              {"unavailable": [FREE]}),
        Shape("fallback chain, longest answer",
              {"model": mini, "models": ["anthropic/claude-sonnet-4", "openai/gpt-4o"], "messages": user(LONG),
               "max_tokens": 150}, {"unavailable": [mini], "usage": {"completion_tokens": LONGEST}}),
        Shape("router openrouter/auto", {"model": "openrouter/auto", "messages": user(LONG), "max_tokens": 100}, {}),
        Shape("router pinned to openai/*",
              {"model": "openrouter/auto", "messages": user(LONG), "max_tokens": 100,
               "plugins": [{"id": "auto-router", "allowed_models": ["openai/*"]}]}, {}),
        Shape("variant :nitro", {"model": "openai/gpt-4o-mini:nitro", "messages": user(LONG), "max_tokens": 80}, {}),
        Shape("variant :floor", {"model": "anthropic/claude-sonnet-4:floor", "messages": user(LONG),
                                  "max_tokens": 80}, {}),
        Shape("variant :exacto", {"model": "openai/gpt-4o:exacto", "messages": user(LONG), "max_tokens": 80}, {}),
        Shape("reasoning model, budget", {"model": "deepseek/deepseek-r1", "messages": user(LONG), "max_tokens": 400,
                                          "reasoning": {"max_tokens": 300}}, {"usage": {"completion_tokens": LONGEST}}),
        Shape("reasoning effort, no max_tokens", {"model": "deepseek/deepseek-r1", "messages": user(),
                                                  "reasoning": {"effort": "high"}}, {}),
        Shape("web plugin on a free model", {"model": FREE, "messages": user(), "plugins": [{"id": "web"}]}, {}),
        Shape(":online on a paid model", {"model": "openai/gpt-4o-mini:online", "messages": user(),
                                          "max_tokens": 100}, {}),
        Shape("web server tool, 10 searches asked",
              {"model": FREE, "messages": user(), "tools": [{"type": "openrouter:web_search"}]},
              {"web_searches": 10}),
        Shape("12 function tools", {"model": mini, "messages": user(), "tools": TOOLS, "tool_choice": "auto",
                                    "max_tokens": 100}, {}),
        Shape("185 KB of tools", {"model": mini, "messages": user(), "tools": BIG_TOOLS, "max_tokens": 50}, {}),
        Shape("tool calls and results", {"model": mini, "messages": HISTORY, "tools": TOOLS[:1], "max_tokens": 100},
              {}),
        Shape("two images", {"model": "google/gemini-2.5-flash", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Compare these charts."}, IMAGE, IMAGE]}],
            "max_tokens": 200}, {}),
        Shape("a PDF", {"model": mini, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Summarise this."},
                                         {"type": "file", "file": {"filename": "q3.pdf", "file_data": PDF}}]}],
            "max_tokens": 200}, {}),
        Shape("structured output", {"model": mini, "messages": user(LONG), "max_tokens": 100, "response_format": {
            "type": "json_schema", "json_schema": {"name": "summary", "schema": {
                "type": "object", "properties": {"risks": {"type": "array"}, "steps": {"type": "array"}}}}}}, {}),
        Shape("cache write on a long prefix", {"model": "anthropic/claude-3.5-haiku", "messages": [
            {"role": "system", "content": LONG * 2}, {"role": "user", "content": "And the risks?"}],
            "max_tokens": 100}, {}),
        Shape("per-request price", {"model": "perplexity/sonar", "messages": user(), "max_tokens": 100}, {}),
        Shape("discounted model", {"model": "mistralai/mistral-small-3.2-24b-instruct", "messages": user(LONG),
                                   "max_tokens": 100}, {}),
        Shape("free model", {"model": FREE, "messages": user(), "max_tokens": 100}, {}),
    ] + issue16_shapes()


def images(n: int, detail: str | None = None) -> list[dict]:
    image = {"type": "image_url", "image_url": {"url": "https://example.test/chart.png",
                                                **({"detail": detail} if detail else {})}}
    return [{"role": "user", "content": [{"type": "text", "text": "Compare these charts."}] + [image] * n}]


def cached_pdf(ttl: str | None) -> list[dict]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "q3.pdf", "file_data": PDF}, "cache_control": control},
        {"type": "text", "text": "Summarise this."}]}]


def issue16_shapes() -> list[Shape]:
    """Issue 16: models that search by themselves, server-tool loops, image tokens per model,
    cache-write prices that fall through, the structured-output framing."""
    mini = "openai/gpt-4o-mini"
    most = SETTINGS.max_searches_per_call  # OpenRouter documents no bound: the operator's (see docs)
    search_tool = {"type": "openrouter:web_search"}
    whole_context = {"prompt_tokens": 200_000, "cache_write_tokens": 200_000, "completion_tokens": LONGEST}
    long_tier = {"prompt_tokens": 900_000, "cache_write_tokens": 900_000, "completion_tokens": LONGEST}
    return [
        Shape("deep research (o4-mini), searches it decides", {
            "model": "openai/o4-mini-deep-research", "messages": user(LONG), "max_tokens": 500},
            {"web_searches": most, "usage": {"completion_tokens": LONGEST}}),
        Shape("deep research (sonar), searches it decides", {
            "model": "perplexity/sonar-deep-research", "messages": user(LONG), "max_tokens": 500},
            {"web_searches": most, "usage": {"completion_tokens": LONGEST}}),
        Shape("search preview model", {"model": "openai/gpt-4o-mini-search-preview", "messages": user(),
                                       "max_tokens": 200}, {"usage": {"completion_tokens": LONGEST}}),
        Shape("server tool, context size low, 30 searches asked", {
            "model": mini, "messages": user(LONG), "max_tokens": 300,
            "tools": [{"type": "openrouter:web_search", "parameters": {"search_context_size": "low"}}]},
            {"web_searches": 30, "usage": {"completion_tokens": LONGEST}}),
        Shape("server tool, allowed_domains with nothing on them", {
            "model": "anthropic/claude-sonnet-4", "messages": user(LONG), "max_tokens": 300,
            "tools": [{"type": "openrouter:web_search", "parameters": {"allowed_domains": ["empty.example"]}}]},
            {"web_searches": 30, "web_results_found": 0, "usage": {"completion_tokens": LONGEST}}),
        Shape("server tool on a free model, longest loop", {"model": FREE, "messages": user(), "tools": [search_tool]},
              {"web_searches": 30, "usage": {"completion_tokens": LONGEST}}),
        Shape("two 8-tile images on gpt-4o-mini", {"model": mini, "messages": images(2, "high"), "max_tokens": 100},
              {"image_size": WIDE}),
        Shape("16 images on gpt-4.1-nano", {"model": "openai/gpt-4.1-nano", "messages": images(16),
                                            "max_tokens": 100}, {"image_size": [4000, 4000]}),
        Shape("an image on Qwen-VL", {"model": "qwen/qwen2.5-vl-72b-instruct", "messages": images(1),
                                         "max_tokens": 100}, {"image_size": [8000, 8000]}),
        Shape("image on Claude", {"model": "anthropic/claude-sonnet-4", "messages": images(1), "max_tokens": 100},
              {"image_size": [8000, 8000]}),
        Shape("1-hour cache write, catalog without its price", {
            "model": "anthropic/claude-sonnet-4", "messages": cached_pdf("1h"), "max_tokens": 100},
            {"usage": whole_context}, {"anthropic/claude-sonnet-4": {"input_cache_write_1h": None}}),
        Shape("long-context tier, 5-minute cache write", {
            "model": "anthropic/claude-sonnet-4.5", "messages": cached_pdf(None), "max_tokens": 100},
            {"usage": long_tier}),
        Shape("long-context tier, 1-hour cache write", {
            "model": "anthropic/claude-sonnet-4.5", "messages": cached_pdf("1h"), "max_tokens": 100},
            {"usage": long_tier}),
        Shape("json_object on a short prompt", {"model": mini, "messages": user("Hi"), "max_tokens": 1,
                                                "response_format": {"type": "json_object"}}, {}),
    ]


@dataclass(frozen=True)
class Outcome:
    name: str
    worst_nanos: int
    charge_nanos: Decimal  # exact: what the stand-in billed, in nano-dollars
    is_free: bool

    @property
    def ratio(self) -> float | None:
        return None if self.charge_nanos == 0 else float(Decimal(self.worst_nanos) / self.charge_nanos)


class Corpus:
    """The stand-in in-process (Flask test client) and the catalog it publishes."""

    def __init__(self):
        self.app = create_app(api_key=KEY)
        self.client = self.app.test_client()
        self.catalog: Catalog = self.listing()

    def listing(self) -> Catalog:
        return parse_catalog(json.loads(self.client.get("/api/v1/models?output_modalities=all", headers=AUTH).data),
                             "openrouter")

    def catalog_for(self, shape: Shape) -> Catalog:
        """The catalog the policy sees for this shape (the stand-in's, with the shape's prices)."""
        if not shape.pricing:
            return self.catalog
        self.reset(shape.pricing)
        return self.listing()

    def reset(self, pricing: dict | None) -> None:
        self.client.post("/_control/reset")
        for model, prices in (pricing or {}).items():
            self.client.post("/_control/pricing", json={"model": model, "pricing": prices})

    def run(self, shape: Shape, settings: Settings = SETTINGS) -> Outcome:
        plan = plan_call(shape.body, self.catalog_for(shape), settings)
        charge = self.bill(plan.upstream_body, shape.behaviour, shape.pricing)
        return Outcome(shape.name, plan.worst_case_nanos, charge, plan.is_free)

    def bill(self, upstream_body: dict, behaviour: dict, pricing: dict | None = None) -> Decimal:
        """What the stand-in charges for this body (nano-dollars, exact), scripted as given."""
        self.reset(pricing)
        if behaviour:
            self.client.post("/_control/script", json={"user": None, "responses": [behaviour]})
        response = self.client.post("/api/v1/chat/completions", json={**upstream_body, "user": "corpus"},
                                    headers=AUTH)
        if response.status_code != 200:
            raise AssertionError(f"the stand-in answered {response.status_code}: {response.data[:300]!r}")
        return Decimal(json.loads(response.data, parse_float=Decimal)["usage"]["cost"]) * 10**9
