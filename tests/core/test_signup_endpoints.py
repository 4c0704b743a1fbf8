"""The signup guard's known endpoints: the practice's own file added to the shipped one."""

from __future__ import annotations

import datetime as dt

import pytest

from socialguard.core.problems import ConfigError
from socialguard.core.signup import Rule, SignupRequest, examine
from socialguard.core.signup_endpoints import (
    Endpoint,
    Kind,
    parse_endpoints,
    parse_practice_endpoints,
)
from socialguard.files.yamlfile import parse_yaml

SHIPPED_TEXT = """\
sites:
  amazon:
    name: Amazon
    hosts: [amazon.co.uk]
    checked: 2026-12-01
    registration: [/ap/register]
    email_change: [/ap/cnep]
  etsy:
    name: Etsy
    hosts: [etsy.com]
    checked: 2026-12-01
    registration: [/join]
"""
SHIPPED = parse_endpoints(parse_yaml(SHIPPED_TEXT, "shipped.yaml"), "shipped.yaml")

PRACTICE_TEXT = """\
sites:
  riverside-supplies:
    name: Riverside Medical Supplies
    hosts: [supplies.example, Shop.Riverside.Example.]
    checked: 2027-01-10
    how: the trade account form, seen by the practice manager
    registration:
      - /trade/apply
      - /trade/wizard?step=account
  amazon:
    name: Amazon
    hosts: [amazon.co.uk]
    checked: 2027-01-12
    registration: [/ax/open]
"""


def practice(text: str = PRACTICE_TEXT) -> tuple[Endpoint, ...]:
    return parse_practice_endpoints(parse_yaml(text, "mine.yaml"), "mine.yaml", SHIPPED)


def where(endpoints: tuple[Endpoint, ...]) -> list[tuple[str, str, str, int]]:
    return [(e.site_id, e.path, e.source, e.line) for e in endpoints]


def test_each_shipped_endpoint_knows_its_site_file_and_line() -> None:
    assert where(SHIPPED) == [
        ("amazon", "/ap/register", "shipped.yaml", 6),
        ("amazon", "/ap/cnep", "shipped.yaml", 7),
        ("etsy", "/join", "shipped.yaml", 12),
    ]
    assert SHIPPED[1].kind is Kind.EMAIL_CHANGE
    assert SHIPPED[2].written_at == "shipped.yaml:12"


def test_the_practices_sites_are_added_and_a_shipped_id_is_replaced_whole() -> None:
    """The practice's entries come first; amazon's shipped paths (both of them) are gone."""
    assert where(practice()) == [
        ("riverside-supplies", "/trade/apply", "mine.yaml", 8),
        ("riverside-supplies", "/trade/wizard", "mine.yaml", 9),
        ("amazon", "/ax/open", "mine.yaml", 14),
        ("etsy", "/join", "shipped.yaml", 12),
    ]
    own = practice()[0]
    assert own.hosts == ("supplies.example", "shop.riverside.example")
    assert own.checked == dt.date(2027, 1, 10)
    assert practice()[1].query == "step=account"


def test_no_practice_sites_leaves_the_shipped_ones() -> None:
    assert practice("sites: {}\n") == SHIPPED


def test_an_entry_with_no_paths_takes_a_shipped_sites_paths_away() -> None:
    """A shipped path that now signs people in, say: the heuristic alone judges the site."""
    text = "sites:\n  etsy: {name: Etsy, hosts: [etsy.com], checked: 2027-01-12}\n"
    assert where(practice(text)) == [(e.site_id, e.path, e.source, e.line) for e in SHIPPED[:2]]


def verdict(endpoints: tuple[Endpoint, ...], host: str, path: str) -> Rule:
    request = SignupRequest(host=host, path=path, body=b"email=jo%40nhs.net&company=Surgery")
    hosts = ("supplies.example", "amazon.co.uk")
    return examine(request, hosts, ("nhs.net",), endpoints).rule


@pytest.mark.parametrize(
    ("host", "path", "shipped_only", "with_practice"),
    [
        ("supplies.example", "/trade/apply", Rule.NOT_REGISTRATION, Rule.KNOWN_ENDPOINT),
        ("www.supplies.example", "/trade/apply/2", Rule.NOT_REGISTRATION, Rule.KNOWN_ENDPOINT),
        ("supplies.example", "/trade/login", Rule.NOT_REGISTRATION, Rule.NOT_REGISTRATION),
        ("www.amazon.co.uk", "/ax/open", Rule.NOT_REGISTRATION, Rule.KNOWN_ENDPOINT),
        # Replaced: the shipped path is no longer a known endpoint (its word still counts).
        ("www.amazon.co.uk", "/ap/cnep", Rule.KNOWN_ENDPOINT, Rule.NOT_REGISTRATION),
        ("www.amazon.co.uk", "/ap/register", Rule.KNOWN_ENDPOINT, Rule.PATH_WORD),
    ],
)
def test_the_guard_asks_the_combined_list(
    host: str, path: str, shipped_only: Rule, with_practice: Rule
) -> None:
    assert verdict(SHIPPED, host, path) is shipped_only
    assert verdict(practice(), host, path) is with_practice


def test_the_verdict_names_the_endpoint_that_matched() -> None:
    request = SignupRequest(host="supplies.example", path="/trade/apply", body=b"e=a%40nhs.net")
    found = examine(request, ("supplies.example",), ("nhs.net",), practice())
    assert found.endpoint is not None
    assert (found.endpoint.site_id, found.endpoint.written_at) == (
        "riverside-supplies",
        "mine.yaml:8",
    )
    assert "Riverside Medical Supplies's registration endpoint /trade/apply" in found.why
    assert "(checked 10 January 2027)" in found.why


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("sites: [a]\n", 1, "must hold 'sites:'"),
        ("", 1, "must hold 'sites:'"),
        ("site: {}\n", 1, "must hold 'sites:'"),
        ("sites: {}\nextra: 1\n", 2, "unknown key 'extra'"),
        ("sites:\n  shop: [a]\n", 2, "sites.shop: must be a mapping"),
        (
            "sites:\n  shop:\n    hosts: [shop.example]\n    checked: 2027-01-10\n"
            "    registraton: [/join]\n",
            5,
            "sites.shop: unknown key 'registraton' — did you mean 'registration'?",
        ),
        (
            "sites:\n  shop:\n    hosts: [shop.example]\n    registration: [/join]\n",
            2,
            "sites.shop.checked: the day the endpoints were checked, written like 2026-12-01",
        ),
        (
            "sites:\n  shop:\n    hosts: [shop.example]\n    checked: 10/01/2027\n"
            "    registration: [/join]\n",
            4,
            "sites.shop.checked",
        ),
        (
            "sites:\n  shop:\n    hosts: shop.example\n    checked: 2027-01-10\n"
            "    registration: [/join]\n",
            3,
            "sites.shop.hosts: a list of host names",
        ),
        (
            "sites:\n  shop:\n    hosts:\n      - shop.example\n      - 'bad host'\n"
            "    checked: 2027-01-10\n    registration: [/join]\n",
            5,
            "sites.shop.hosts: 'bad host' is not a host name",
        ),
        (
            "sites:\n  shop:\n    hosts: [shop.example]\n    checked: 2027-01-10\n"
            "    registration:\n      - /join\n      - https://shop.example/apply\n",
            7,
            "'https://shop.example/apply' must be a path on the site, starting with /",
        ),
        (
            "sites:\n  shop:\n    hosts: [shop.example]\n    checked: 2027-01-10\n"
            "    email_change: /account/email\n",
            5,
            "sites.shop.email_change: a list of paths",
        ),
        (
            "sites:\n  shop:\n    hosts: [shop.example]\n    checked: 2027-01-10\n",
            2,
            "sites.shop: lists no registration or email_change paths — add the paths where "
            "the site registers, e.g. registration: [/account/register] (an entry with none "
            "only takes a shipped site's paths away, under its id: amazon, etsy)",
        ),
    ],
)
def test_a_bad_practice_file_names_the_line_and_the_fix(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        practice(text)
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"mine.yaml:{line}: ") and message in p for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    text = (
        "sites:\n"
        "  one: {hosts: [a.example], checked: 2027-01-10, registration: [join]}\n"
        "  two: {hosts: [b.example], registration: [/join]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        practice(text)
    assert [p.line for p in caught.value.problems] == [2, 3]
