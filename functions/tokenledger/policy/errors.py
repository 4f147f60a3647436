"""The one error the request policy raises; api/ turns it into a JSON 4xx."""
from __future__ import annotations


class PolicyError(Exception):
    """A request the policy refuses: HTTP status, a stable code, a sentence, the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 missing_models: tuple[str, ...] = ()):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        # Models the catalog does not know (a catalog refresh may find them: api retries once).
        self.missing_models = missing_models


def bad(field: str, message: str, code: str = "invalid_request") -> PolicyError:
    return PolicyError(400, code, f"{field}: {message}", field)
