"""Which addresses the proxy may connect to for a client: never the gateway itself, nor the
addresses no web site lives on, nor what IT denies.

Pure: the proxy resolves names and knows its own addresses; this module only answers for an
address already in hand. Refused unless IT allows it: loopback (the gateway's own services,
such as the metrics port), link-local (169.254/16, fe80::/10, where cloud metadata services
live), unspecified (0.0.0.0, ::, which reach the gateway itself) and multicast. IT's `allow`
list opens exceptions to those; IT's `deny` list, and a zone's own, refuse more. A deny
always wins over an allow.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from socialguard.core.hosts import unmapped

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


@dataclass(frozen=True, slots=True, kw_only=True)
class Destinations:
    """IT's exceptions (`allow`) and extra refusals (`deny`), from policy.yaml."""

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()


def parse_address(text: str) -> IPAddress | None:
    """An IP address (IPv4-mapped IPv6 as IPv4, a zone index dropped), else None."""
    try:
        return unmapped(ipaddress.ip_address(text.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def refused_because(
    address: IPAddress,
    destinations: Destinations,
    own: frozenset[IPAddress] = frozenset(),
    zone_deny: tuple[IPNetwork, ...] = (),
) -> str | None:
    """Why the proxy may not connect to `address` for this client (None: it may)."""
    if any(address in network for network in zone_deny):
        return f"{address} is in a network this zone may not reach"
    if any(address in network for network in destinations.deny):
        return f"{address} is in a network the policy denies"
    if any(address in network for network in destinations.allow):
        return None
    if address in own:
        return f"{address} is the gateway itself"
    if address in _THIS_NETWORK:
        return f"{address} is in 0.0.0.0/8, which names this host"
    for test, what in (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_unspecified, "unspecified"),
        (address.is_multicast, "multicast"),
    ):
        if test:
            return f"{address} is a {what} address"
    return None
