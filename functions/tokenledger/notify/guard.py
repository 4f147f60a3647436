"""The SSRF guard's decision (pure): may a request go to this target, given the addresses its host
resolves to right now?

* https only; plain http only for a `host:port` listed exactly in TOKENLEDGER_WEBHOOK_ALLOW_HTTP;
* every resolved address must be public: loopback, private (RFC 1918, 100.64/10), link-local
  (169.254/16: the metadata server), unique-local (fc00::/7), unspecified, multicast and
  reserved addresses are refused, and an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is judged
  by the IPv4 address inside it. One refused address refuses the target (a name resolving to a
  public and a private address could be connected to the private one);
* a listed `host:port` may be on any address (a receiver on the developer's machine).
The worker (deliver.py) resolves, asks here, and never follows a redirect.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from tokenledger.notify.targets import Target


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""


ALLOWED = Verdict(True)


def listed(target: Target, allow_http) -> bool:
    return target.host_port in {entry.strip().lower() for entry in allow_http}


def scheme_verdict(target: Target, allow_http) -> Verdict:
    if target.scheme == "https" or listed(target, allow_http):
        return ALLOWED
    return Verdict(False, f"http to {target.host_port} is not in TOKENLEDGER_WEBHOOK_ALLOW_HTTP (https only)")


def address_problem(address: str) -> str | None:
    """Why this address must not be reached, or None for a public one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is dropped
    except ValueError:
        return f"{address} is not an IP address"
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        problem = address_problem(str(mapped))
        return f"{ip} is IPv4-mapped: {problem}" if problem else None
    for test, name in ((ip.is_unspecified, "unspecified"), (ip.is_loopback, "loopback"),
                       (ip.is_link_local, "link-local"), (ip.is_multicast, "multicast")):
        if test:
            return f"{ip} is {name}"
    if ip.version == 6 and ip in ipaddress.ip_network("fc00::/7"):
        return f"{ip} is unique-local"
    if ip.is_private:
        return f"{ip} is private"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def decide(target: Target, addresses, allow_http) -> Verdict:
    """The whole decision before a request: scheme, then every resolved address."""
    verdict = scheme_verdict(target, allow_http)
    if not verdict.allowed:
        return verdict
    if listed(target, allow_http):
        return ALLOWED
    addresses = list(addresses)
    if not addresses:
        return Verdict(False, f"{target.host} resolves to no address")
    for address in addresses:
        problem = address_problem(address)
        if problem:
            return Verdict(False, f"{target.host} resolves to {problem}")
    return ALLOWED
