"""Type and range checks for single request values (pure). Each returns the value to forward
or raises PolicyError naming the field."""
from __future__ import annotations

import math
import re

from tokenledger.policy.errors import bad

# Firestore reserves field names matching __.*__; a feature is a map key in the rollups.
FEATURE_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
RESERVED_NAME = re.compile(r"^__.*__$")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(field: str, value: object, low: float, high: float, low_open: bool = False) -> float | int:
    if not is_number(value):
        raise bad(field, "must be a finite number")
    if value > high or value < low or (low_open and value == low):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise bad(field, f"must be in {interval}; got {value}", "invalid_parameter")
    return value


def integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(field, "must be an integer")
    if not low <= value <= high:
        raise bad(field, f"must be between {low} and {high}; got {value}", "invalid_parameter")
    return value


def boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise bad(field, "must be true or false")
    return value


def string(field: str, value: object, max_length: int = 200, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise bad(field, f"must be a non-empty string of at most {max_length} characters")
    if choices is not None and value not in choices:
        raise bad(field, f"must be one of {', '.join(choices)}; got '{value[:40]}'")
    return value


def obj(field: str, value: object, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        raise bad(field, "must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise bad(f"{field}.{unknown[0]}", f"is not supported here (supported: {', '.join(sorted(allowed))})",
                  "unsupported_field")
    return value


def array(field: str, value: object, max_items: int, min_items: int = 0) -> list:
    if not isinstance(value, list):
        raise bad(field, "must be an array")
    if not min_items <= len(value) <= max_items:
        raise bad(field, f"must hold {min_items} to {max_items} items; got {len(value)}")
    return value


def feature(value: object) -> str:
    if not isinstance(value, str) or not FEATURE_PATTERN.match(value):
        raise bad("feature", "must match [A-Za-z0-9_.:/-]{1,64}")
    if RESERVED_NAME.match(value):
        raise bad("feature", "names of the form __name__ are reserved")
    return value
