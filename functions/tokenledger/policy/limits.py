"""Shape limits of a parsed body: nesting depth and element count (pure)."""
from __future__ import annotations

from tokenledger.policy.errors import PolicyError


def check_shape(body: object, max_depth: int, max_elements: int) -> None:
    """Refuse bodies nested deeper than `max_depth` (400) or with more than `max_elements`
    values in all (413). Iterative, so a hostile body cannot exhaust the stack here."""
    stack = [(body, 1)]
    elements = 0
    while stack:
        value, depth = stack.pop()
        elements += 1
        if elements > max_elements:
            raise PolicyError(413, "too_many_elements",
                              f"The request body holds more than {max_elements} JSON values.")
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= max_depth and children:
            raise PolicyError(400, "body_too_deep", f"The request body is nested deeper than {max_depth} levels.")
        stack.extend((child, depth + 1) for child in children)
