"""Which addresses the proxy may reach: the defaults, IT's exceptions and IT's denials."""

from __future__ import annotations

import ipaddress

import pytest

from socialguard.core.destinations import Destinations, parse_address, refused_because


def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    parsed = parse_address(text)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "169.254.169.254", "fe80::1",
     "0.0.0.0", "::", "0.1.2.3", "224.0.0.1", "ff02::1"],  # noqa: S104 - a destination
)  # fmt: skip
def test_the_gateway_and_addresses_no_site_lives_on_are_refused(text: str) -> None:
    assert refused_because(address(text), Destinations()) is not None


@pytest.mark.parametrize("text", ["93.184.216.34", "10.1.2.3", "192.168.1.20", "2001:db8::1"])
def test_ordinary_addresses_pass(text: str) -> None:
    assert refused_because(address(text), Destinations()) is None


def test_allow_opens_exceptions_and_deny_wins() -> None:
    loopback = ipaddress.ip_network("127.0.0.0/8")
    denied = ipaddress.ip_network("127.0.0.2/32")
    rules = Destinations(allow=(loopback,), deny=(denied,))
    assert refused_because(address("127.0.0.1"), rules) is None
    assert "denies" in (refused_because(address("127.0.0.2"), rules) or "")


def test_own_addresses_and_a_zone_s_denials() -> None:
    own = frozenset({address("10.0.0.1")})
    assert "gateway itself" in (refused_because(address("10.0.0.1"), Destinations(), own) or "")
    zone = (ipaddress.ip_network("10.10.0.0/24"),)
    assert "zone" in (refused_because(address("10.10.0.5"), Destinations(), own, zone) or "")
