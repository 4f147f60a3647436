"""Prompt tokens of one image, per model family, as each provider documents its formula.

  OpenAI tile models   the image is scaled to fit 2,048 x 2,048, then its shortest side to 768;
                       tokens = base + per tile x 512-px tiles (detail "low": base only).
                       gpt-4o-mini 2,833 + 5,667; gpt-4o / gpt-4.1 / gpt-4.5 / o1 / o3 85 + 170;
                       gpt-5 70 + 140
  OpenAI patch models  32-px patches, at most 1,536 (the image is scaled down to fit), times a
                       multiplier: gpt-4.1-mini / gpt-5-mini 1.62, gpt-4.1-nano / gpt-5-nano 2.46,
                       o4-mini 1.72 (detail does not lower it)
  Anthropic            scaled to a long edge of 1,568 px and 1.15 megapixels; w x h / 750, at most 1,600
  Google Gemini        258 for an image of at most 384 x 384, else 258 per 768-px tile (the stand-in
                       assumes images are first scaled to fit 3,072 x 3,072: *unverified*)
  Qwen-VL              one token per 28 x 28 patch, at most 16,384 (max_pixels)
  any other model      the gpt-4o formula
An image whose size the caller does not script is 1,024 x 1,024.
"""
from __future__ import annotations

import math
import re

DEFAULT_SIZE = (1024, 1024)
TILE_MODELS = (  # (pattern on the model name, base tokens, tokens per tile); after the patch models
    (r"gpt-4o-mini", 2833, 5667),
    (r"gpt-5", 70, 140),
    (r"gpt-4o|gpt-4\.1|gpt-4\.5|^o1|^o3", 85, 170),
)
PATCH_MODELS = ((r"(gpt-4\.1|gpt-5).*nano", 2.46), (r"(gpt-4\.1|gpt-5).*mini", 1.62), (r"^o4-mini", 1.72))
PATCH_CAP = 1536


def _name(model_id: str) -> str:
    return model_id.split("/", 1)[-1].split(":", 1)[0]


def _fit(width: float, height: float, box: float) -> tuple[float, float]:
    scale = min(1.0, box / max(width, height))
    return width * scale, height * scale


def openai_tiles(width: int, height: int) -> int:
    w, h = _fit(width, height, 2048)
    shortest = min(w, h)
    if shortest > 768:
        w, h = w * 768 / shortest, h * 768 / shortest
    return math.ceil(w / 512) * math.ceil(h / 512)


def openai_patches(width: int, height: int) -> int:
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches <= PATCH_CAP:
        return patches
    scale = math.sqrt(PATCH_CAP * 32 * 32 / (width * height))
    return min(PATCH_CAP, math.ceil(width * scale / 32) * math.ceil(height * scale / 32))


def anthropic_tokens(width: int, height: int) -> int:
    w, h = _fit(width, height, 1568)
    if w * h > 1_150_000:
        scale = math.sqrt(1_150_000 / (w * h))
        w, h = w * scale, h * scale
    return min(1600, math.ceil(w * h / 750))


def gemini_tokens(width: int, height: int) -> int:
    if width <= 384 and height <= 384:
        return 258
    w, h = _fit(width, height, 3072)
    return 258 * math.ceil(w / 768) * math.ceil(h / 768)


def image_tokens(model_id: str, detail: str | None, size: tuple[int, int] | None = None) -> int:
    width, height = size or DEFAULT_SIZE
    name = _name(model_id)
    for pattern, multiplier in PATCH_MODELS:
        if re.search(pattern, name):
            return math.ceil(openai_patches(width, height) * multiplier)
    if model_id.startswith("anthropic/"):
        return anthropic_tokens(width, height)
    if model_id.startswith("google/"):
        return gemini_tokens(width, height)
    if re.search(r"qwen.*vl", name):
        return min(16_384, math.ceil(width / 28) * math.ceil(height / 28))
    base, per_tile = next(((b, t) for p, b, t in TILE_MODELS if re.search(p, name)), (85, 170))
    return base if detail == "low" else base + per_tile * openai_tiles(width, height)
