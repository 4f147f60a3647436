"""Webhook targets (pure): TOKENLEDGER_ALERT_WEBHOOKS parsed into what delivery needs.

A target is known on an alert document only by its id (`slack-<12 hex>` / `webhook-<12 hex>`,
from a SHA-256 of the URL): a Slack incoming-webhook URL is a credential, and users may read
their own alert documents, so the URL itself is never stored, logged or shown.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

SLACK = "slack"
WEBHOOK = "webhook"
SLACK_PREFIX = "slack+"
SLACK_HOST = "hooks.slack.com"


@dataclass(frozen=True)
class Target:
    id: str  # the key under `deliveries` on the alert document
    url: str  # what is requested (without a `slack+` prefix)
    kind: str  # SLACK | WEBHOOK
    scheme: str
    host: str  # lower-case, without brackets for an IPv6 literal
    port: int

    @property
    def host_port(self) -> str:
        """As TOKENLEDGER_WEBHOOK_ALLOW_HTTP lists it: `host:port` (`[::1]:8080` for IPv6)."""
        return f"{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}"


class BadTarget(ValueError):
    pass


def target_id(kind: str, written: str) -> str:
    return f"{kind}-{hashlib.sha256(written.encode('utf-8')).hexdigest()[:12]}"


def parse(written: str) -> Target:
    """One URL as configured. Raises BadTarget for what cannot be a webhook URL at all."""
    written = written.strip()
    url, kind = written, WEBHOOK
    if url.lower().startswith(SLACK_PREFIX):
        url, kind = url[len(SLACK_PREFIX):], SLACK
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BadTarget(f"not a URL: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadTarget(f"scheme {scheme or '(none)'} is not http or https")
    host = (parts.hostname or "").lower()
    if not host:
        raise BadTarget("no host")
    if parts.username or parts.password:
        raise BadTarget("credentials in the URL")
    if host == SLACK_HOST:
        kind = SLACK
    return Target(id=target_id(kind, written), url=url, kind=kind, scheme=scheme, host=host,
                  port=port or (443 if scheme == "https" else 80))


def parse_all(urls) -> tuple[list[Target], list[tuple[str, str]]]:
    """(targets, [(target id, why unusable)]): a malformed entry is reported, never fatal."""
    good, bad, seen = [], [], set()
    for written in urls:
        try:
            target = parse(written)
        except BadTarget as e:
            bad.append((target_id(WEBHOOK, written.strip()), str(e)))
            continue
        if target.id not in seen:
            seen.add(target.id)
            good.append(target)
    return good, bad
