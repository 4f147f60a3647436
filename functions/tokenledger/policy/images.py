"""Prompt tokens one image can cost, per model family, at the largest size the provider keeps
(pure). From each provider's documented formula:

  OpenAI tile models    base + per tile x 8 tiles (an image is scaled to fit 2,048 x 2,048, then
                        its shortest side to 768 px: at most 4 x 2 tiles of 512 px); detail
                        "low" is the base alone. gpt-4o-mini 2,833 + 5,667 x 8 = 48,169 (low
                        2,833); gpt-4o / gpt-4.1 / gpt-4.5 / o1 / o3 85 + 170 x 8 = 1,445;
                        gpt-5 70 + 140 x 8 = 1,190
  OpenAI patch models   at most 1,536 patches of 32 px times the model's multiplier, whatever
                        the detail: gpt-4.1-mini / gpt-5-mini 1.62 (2,489), gpt-4.1-nano /
                        gpt-5-nano 2.46 (3,779), o4-mini 1.72 (2,642)
  Anthropic             about 1,600 (images are scaled to 1.15 megapixels; w x h / 750)
  Qwen-VL               16,384 (max_pixels / 28 x 28 patches)
  any other family      `TOKENLEDGER_IMAGE_PROMPT_TOKENS` (16,384 by default): Gemini tiles
                        large images into 258-token tiles with no documented size bound
"""
from __future__ import annotations

import functools
import re

TILES = 8  # the most 512-px tiles OpenAI's scaling leaves
TILE_MODELS = (  # (pattern on the model name, base tokens, tokens per tile)
    (re.compile(r"gpt-4o-mini"), 2833, 5667),
    (re.compile(r"gpt-5"), 70, 140),
    (re.compile(r"gpt-4o|gpt-4\.1|gpt-4\.5|^o1|^o3"), 85, 170),
)
# Patch models: any gpt-4.1 / gpt-5 "mini" or "nano" (gpt-5.1-codex-mini too), and o4-mini:
# (pattern, tokens at 1,536 patches x multiplier, rounded up). Checked before the tile models.
PATCH_MODELS = (
    (re.compile(r"(gpt-4\.1|gpt-5).*nano"), 3779),
    (re.compile(r"(gpt-4\.1|gpt-5).*mini"), 2489),
    (re.compile(r"^o4-mini"), 2642),
)
ANTHROPIC_MAX = 1600
QWEN_VL = re.compile(r"qwen.*vl")
QWEN_VL_MAX = 16_384


@functools.lru_cache(maxsize=4096)
def family_tokens(model_id: str) -> tuple[int, int] | None:
    """(tokens at detail high/auto, at detail low) for a known family; None when unknown."""
    if not model_id.startswith(("openai/", "anthropic/", "qwen/")):
        return None
    name = model_id.split("/", 1)[1].split(":", 1)[0]
    if model_id.startswith("anthropic/"):
        return ANTHROPIC_MAX, ANTHROPIC_MAX
    if model_id.startswith("qwen/"):
        return (QWEN_VL_MAX, QWEN_VL_MAX) if QWEN_VL.search(name) else None
    for pattern, tokens in PATCH_MODELS:
        if pattern.search(name):
            return tokens, tokens
    for pattern, base, per_tile in TILE_MODELS:
        if pattern.search(name):
            return base + per_tile * TILES, base
    return None


def image_tokens(model_ids: tuple[str, ...], images: int, low_detail: int, unknown: int) -> int:
    """Prompt tokens of `images` images (`low_detail` of them sent with detail "low") on the
    dearest-reading of the models that may serve the call."""
    if not images:
        return 0
    worst = 0
    for model_id in model_ids:
        high, low = family_tokens(model_id) or (unknown, unknown)
        worst = max(worst, (images - low_detail) * high + low_detail * low)
    return worst
