"""Deterministic token counts and exact (Decimal) cost maths.

Everything here is pure so the rules can be read in one place:
  prompt_tokens     = sum over messages of 4 + ceil(len(text) / 4)
                      (+ ceil(len(JSON of its other fields, e.g. tool_calls) / 4))
                      + ceil(len(JSON of tools) / 4) + 346 when tools are sent
                      + ceil(len(JSON of response_format) / 4)
                      + 300 when response_format asks for JSON (structured-output framing)
                      + per image, the model family's documented formula (images.py)
                      + ceil(len(file data) / 4) per file
                      + per web search result ceil(characters / 4) + 50 (result_tokens)
  agent loops       the server tool and models that search by themselves make one model call
                    per search plus the answer; each re-reads everything so far (loop_prompt)
                    and may write up to max_tokens
  (a prompt over the served model's context_length is refused, as OpenRouter does)
  web search        = $0.004 per result (Exa), billed even on free models
  file parsing      = mistral-ocr (OpenRouter's default engine): $0.002 per 3,000 bytes (a
                      "page"); pdf-text: free
  completion_tokens = min(max_tokens or 256, 16 + len(last message text) // 8)
  reasoning_tokens  = completion_tokens // 2 for reasoning models (part of completion)
  cost = ((prompt - cached - cache_write) * prompt + cached * cache_read
          + cache_write * cache_write_price (input_cache_write_1h when a part asks
            cache_control ttl "1h") + images * image + request
          + (completion - reasoning) * completion + reasoning * internal_reasoning)
         * (1 - discount)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from decimal import Decimal

from .catalog import ZERO, Prices

DEFAULT_MAX_TOKENS = 256
TOOLS_OVERHEAD_TOKENS = 346
WEB_RESULT_PRICE = Decimal("0.004")
WEB_DEFAULT_RESULTS = 5
WEB_RESULT_FRAME_TOKENS = 50  # a result's title and URL
ADAPTIVE_RESULT_CHARS = 4000  # Exa's adaptive highlights: typically 2,000-4,000 characters a result
CONTEXT_SIZE_CHARS = {"low": 5000, "medium": 15000, "high": 30000}  # Exa, per result
MAX_TOOL_CALLS = 30  # server-tool agent steps: OpenRouter's default and maximum
STRUCTURED_OUTPUT_TOKENS = 300  # the framing a provider adds around a response_format schema
OCR_PAGE_PRICE = Decimal("0.002")
OCR_PAGE_BYTES = 3000
FLOOR_FACTOR = Decimal("0.8")  # a :floor call may land on a cheaper flex tier


def message_text(message: dict) -> tuple[str, int]:
    """(text, image count) of one chat message."""
    content = message.get("content")
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0  # e.g. an assistant tool-call message with content null
    texts, images = [], 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url" or "image_url" in part:
            images += 1
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "".join(texts), images


def count_prompt(messages: list[dict]) -> tuple[int, int]:
    """(prompt tokens, images) for a list of messages."""
    tokens = images = 0
    for message in messages:
        text, n_images = message_text(message)
        tokens += 4 + math.ceil(len(text) / 4)
        images += n_images
    return tokens, images


def _json_len(value) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True)
class RequestPrompt:
    tokens: int
    images: int
    files: int
    file_bytes: int
    image_details: tuple = ()  # each image's `detail` (None when not given)


def request_prompt(body: dict) -> RequestPrompt:
    """Prompt tokens of the whole request: messages (their text, tool calls and every other
    field), tools, response format, images and file parts, as OpenRouter bills them."""
    messages = body.get("messages") or []
    tokens, images = count_prompt(messages)
    files = file_bytes = 0
    details = []
    for message in messages:
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        if extra:
            tokens += math.ceil(_json_len(extra) / 4)
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and (part.get("type") == "image_url" or "image_url" in part):
                image = part.get("image_url")
                details.append(image.get("detail") if isinstance(image, dict) else None)
            if isinstance(part, dict) and part.get("type") == "file":
                data = str((part.get("file") or {}).get("file_data") or "")
                files += 1
                file_bytes += len(data)
                tokens += math.ceil(len(data) / 4)
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        tokens += math.ceil(_json_len(tools) / 4) + TOOLS_OVERHEAD_TOKENS
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        tokens += math.ceil(_json_len(response_format) / 4)
        if response_format.get("type") in ("json_object", "json_schema"):
            tokens += STRUCTURED_OUTPUT_TOKENS
    return RequestPrompt(tokens, images, files, file_bytes, tuple(details))


@dataclass(frozen=True)
class WebSearch:
    searches: int
    results: int
    plugin_tokens: int = 0  # result tokens the web plugin / :online adds to the one call
    steps: tuple[int, ...] = ()  # server-tool loop: tokens each search adds before the next step

    @property
    def cost(self) -> Decimal:
        return self.results * WEB_RESULT_PRICE

    @property
    def tokens(self) -> int:
        return self.plugin_tokens + sum(self.steps)


def result_tokens(params: dict) -> int:
    """Prompt tokens of one Exa result: its content (`max_characters` when set, else the
    `search_context_size` characters, else Exa's adaptive highlights) plus title and URL."""
    chars = params.get("max_characters")
    if not isinstance(chars, int) or isinstance(chars, bool) or chars < 1:
        chars = CONTEXT_SIZE_CHARS.get(params.get("search_context_size"), ADAPTIVE_RESULT_CHARS)
    return math.ceil(chars / 4) + WEB_RESULT_FRAME_TOKENS


def web_search(body: dict, online: bool, searches_wanted: int, found: int | None = None) -> WebSearch:
    """Searches run for a request: the web plugin (or a `:online` model) searches once for
    max_results (default 5) results; the openrouter:web_search server tool runs an agent loop in
    which the model searches as often as it asks (`searches_wanted`, at most the request's
    `max_tool_calls`, default and most 30), each search returning up to max_results results
    (`found` when the domains allowed hold fewer), up to max_total_results in all."""
    searches = results = plugin_tokens = 0
    steps: list[int] = []
    plugins = body.get("plugins") if isinstance(body.get("plugins"), list) else []
    web = next((p for p in plugins if isinstance(p, dict) and p.get("id") == "web"), None)
    if web is not None or online:
        searches, results = 1, int((web or {}).get("max_results") or WEB_DEFAULT_RESULTS)
        plugin_tokens = results * result_tokens({})
    cap = body.get("max_tool_calls")
    cap = cap if isinstance(cap, int) and not isinstance(cap, bool) and 0 < cap <= MAX_TOOL_CALLS else MAX_TOOL_CALLS
    for tool in body.get("tools") if isinstance(body.get("tools"), list) else ():
        if isinstance(tool, dict) and tool.get("type") == "openrouter:web_search":
            params = tool.get("parameters") or {}
            per_search = int(params.get("max_results") or WEB_DEFAULT_RESULTS)
            if found is not None:
                per_search = min(per_search, found)
            left = params.get("max_total_results")
            left = int(left) if left is not None else 10**9
            for _ in range(min(searches_wanted, cap)):
                got = min(per_search, left)
                left -= got
                searches += 1
                results += got
                steps.append(got * result_tokens(params))
    return WebSearch(searches, results, plugin_tokens, tuple(steps))


def loop_prompt(first: int, steps: tuple[int, ...], completion: int, context: int | None) -> int:
    """Prompt tokens of an agent loop (server tools, a model that searches by itself): one model
    call per step plus the final answer; each call re-reads the request, every result so far and
    the model's own earlier turns (at most the model's context)."""
    total, grown = 0, first
    for i in range(len(steps) + 1):
        if i:
            grown += steps[i - 1] + completion
        total += min(grown, context) if context else grown
    return total


def file_parse_cost(body: dict, prompt: RequestPrompt) -> Decimal:
    if not prompt.files:
        return ZERO
    plugins = body.get("plugins") if isinstance(body.get("plugins"), list) else []
    parser = next((p for p in plugins if isinstance(p, dict) and p.get("id") == "file-parser"), {})
    engine = (parser.get("pdf") or {}).get("engine") if isinstance(parser.get("pdf"), dict) else None
    if engine == "pdf-text":
        return ZERO
    return math.ceil(prompt.file_bytes / OCR_PAGE_BYTES) * OCR_PAGE_PRICE


def wants_1h_cache(messages: list) -> bool:
    """A content part marked cache_control {"type": "ephemeral", "ttl": "1h"} asks for the
    1-hour cache, whose writes Anthropic bills at 2x the prompt price (5-minute: 1.25x)."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            control = part.get("cache_control") if isinstance(part, dict) else None
            if isinstance(control, dict) and control.get("ttl") == "1h":
                return True
    return False


def prefix_key(messages: list[dict]) -> str:
    """Stable identity of a message prefix, for the prompt-cache simulation."""
    blob = json.dumps(messages, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Completion:
    content: str
    completion_tokens: int
    reasoning_tokens: int
    finish_reason: str  # "stop" or "length"


def plan_completion(messages: list[dict], max_tokens: int | None, reasoning: bool) -> Completion:
    last_text, _ = message_text(messages[-1])
    user_texts = [message_text(m)[0] for m in messages if m.get("role") == "user"]
    echoed = user_texts[-1] if user_texts else last_text
    natural = 16 + len(last_text) // 8
    limit = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    tokens = min(limit, natural)
    # Collapse whitespace so the streamed word chunks re-join to exactly this text.
    snippet = " ".join(echoed[:40].split())
    content = f"Echo: {snippet}" if snippet else "Echo:"
    return Completion(
        content=content,
        completion_tokens=tokens,
        reasoning_tokens=tokens // 2 if reasoning else 0,
        finish_reason="length" if tokens < natural else "stop",
    )


@dataclass(frozen=True)
class Tokens:
    prompt: int
    completion: int
    reasoning: int = 0
    cached: int = 0
    cache_write: int = 0
    images: int = 0

    def with_completion(self, completion: int, reasoning: int) -> "Tokens":
        return replace(self, completion=completion, reasoning=reasoning)


@dataclass(frozen=True)
class Cost:
    prompt: Decimal  # after discount; includes request and image prices
    completion: Decimal  # after discount; includes reasoning
    cache_discount: Decimal | None  # saving from cache reads minus cache-write premium

    @property
    def total(self) -> Decimal:
        return self.prompt + self.completion


def compute_cost(prices: Prices, tokens: Tokens, extras: Decimal = ZERO) -> Cost:
    """`extras`: per-call charges beside tokens (web search results, PDF parsing), never
    discounted."""
    cache_read = prices.cache_read if prices.cache_read is not None else prices.prompt
    cache_write = prices.cache_write if prices.cache_write is not None else prices.prompt
    reasoning_price = (
        prices.internal_reasoning if prices.internal_reasoning is not None else prices.completion
    )
    uncached = tokens.prompt - tokens.cached - tokens.cache_write
    prompt = (
        uncached * prices.prompt
        + tokens.cached * cache_read
        + tokens.cache_write * cache_write
        + tokens.images * (prices.image or ZERO)
        + prices.request
    )
    completion = (
        (tokens.completion - tokens.reasoning) * prices.completion
        + tokens.reasoning * reasoning_price
    )
    keep = 1 - prices.discount
    cache_discount = None
    if tokens.cached or tokens.cache_write:
        saved = tokens.cached * (prices.prompt - cache_read)
        saved += tokens.cache_write * (prices.prompt - cache_write)
        cache_discount = saved * keep
    return Cost(prompt=prompt * keep + extras, completion=completion * keep, cache_discount=cache_discount)


_PIECE = re.compile(r"\s*\S+")


def stream_pieces(content: str) -> list[str]:
    """Split content into one-word deltas that concatenate back to content."""
    return _PIECE.findall(content) or [content]


def partial_completion(completion: int, reasoning: int, sent: int, pieces: int) -> int:
    """Completion tokens billed when a stream dies after `sent` of `pieces` deltas.

    Reasoning happens before the visible answer, so it is billed in full; the
    visible part is billed pro rata.
    """
    visible = completion - reasoning
    return reasoning + visible * min(sent, pieces) // max(pieces, 1)


def native_finish_reason(provider: str, finish_reason: str | None) -> str | None:
    """What the upstream provider itself called the finish reason."""
    if finish_reason is None:
        return None
    table = {
        "Anthropic": {"stop": "end_turn", "length": "max_tokens"},
        "Google": {"stop": "STOP", "length": "MAX_TOKENS"},
    }
    return table.get(provider, {}).get(finish_reason, finish_reason)
