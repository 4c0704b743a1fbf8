"""Tests for socialguard.core.catalog_import: reading public list formats into catalogue entries."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from socialguard.core.catalog import Catalog, parse_catalog
from socialguard.core.catalog_import import (
    ImportResult,
    ListFormat,
    Skip,
    detect_format,
    import_list,
    parse_list,
    render_catalog,
    service_id_for,
)
from socialguard.core.problems import ConfigError
from socialguard.files.yamlfile import parse_yaml

CATALOG = """\
services:
  facebook:
    name: Facebook
    category: social-networking
    domains: [facebook.com, fbcdn.net]
never_block: [nhs.uk, accounts.example-mail.com]
shared_infrastructure_left_out:
  - {domain: bigcdn.example, why: "shared by everyone"}
"""


def catalog() -> Catalog:
    return parse_catalog(parse_yaml(CATALOG, "c.yaml"), "c.yaml")


def lines(text: str) -> list[str]:
    return textwrap.dedent(text).splitlines()


HOSTS = lines(
    """\
    # Title: a hosts file
    127.0.0.1 localhost
    ::1 ip6-localhost ip6-loopback
    0.0.0.0 0.0.0.0
    0.0.0.0 ads.example.com tracker.example.net   # two names and a comment
    0.0.0.0 *.wild.example
    0.0.0.0 bad..name.example
    0.0.0.0 -leading.example
    0.0.0.0 1.2.3.4
    0.0.0.0 ads.example.com
    0.0.0.0 deep.ads.example.com
    0.0.0.0 B\u00fccher.example
    0.0.0.0 Upper.Example.ORG.
    justaname.example
    0.0.0.0
    not-an-address name.example
    """
)


def test_hosts_format_keeps_names_and_counts_every_skip() -> None:
    """Hosts lines keep each name; comments, local names, IPs, wildcards, bad names are counted."""
    result = import_list(HOSTS, ListFormat.HOSTS)
    assert result.domains == [
        "ads.example.com",
        "justaname.example",
        "tracker.example.net",
        "upper.example.org",
        "xn--bcher-kva.example",
    ]
    assert result.skipped == {
        Skip.COMMENT: 1,
        Skip.LOCAL: 3,
        Skip.IP: 3,
        Skip.WILDCARD: 1,
        Skip.INVALID: 3,
        Skip.DUPLICATE: 1,
        Skip.REDUNDANT: 1,
    }
    assert result.lines == len(HOSTS)


def test_skips_name_their_line() -> None:
    """Each reason keeps a few examples with their line numbers, for the report."""
    result = import_list(HOSTS, ListFormat.HOSTS)
    assert result.examples[Skip.WILDCARD] == [(6, "*.wild.example")]
    assert result.examples[Skip.COMMENT] == [(1, "# Title: a hosts file")]
    assert (7, "bad..name.example") in result.examples[Skip.INVALID]
    assert result.examples[Skip.IP][0] == (4, "0.0.0.0")  # noqa: S104 - a hosts-file line


DOMAINS = lines(
    """\
    # plain domains, one a line
    ! another comment style
    example.com
    www.example.com
    Example.com
    sub.domain.example   # trailing comment
    *.wild.example
    192.168.1.1
    2001:db8::1
    has space.example
    nodot
    localhost.localdomain
    """
)


def test_domains_format() -> None:
    """Plain domain lists: one name a line, trailing comments allowed, the rest reported."""
    result = import_list(DOMAINS, ListFormat.DOMAINS)
    assert result.domains == ["example.com", "sub.domain.example"]
    assert result.skipped[Skip.COMMENT] == 2
    assert result.skipped[Skip.WILDCARD] == 1
    assert result.skipped[Skip.IP] == 2
    assert result.skipped[Skip.INVALID] == 2  # "has space.example" and "nodot"
    assert result.skipped[Skip.LOCAL] == 1
    assert result.skipped[Skip.DUPLICATE] == 1  # Example.com
    assert result.skipped[Skip.REDUNDANT] == 1  # www.example.com under example.com


ADBLOCK = lines(
    """\
    [Adblock Plus 2.0]
    ! Title: rules
    ||example.com^
    ||cdn.example.net^$important
    |exact.example.org^
    ||third.example^$third-party
    @@||allowed.example^
    ||*.wild.example^
    ||example.com/path^
    /regex[0-9]+/
    ##.banner
    plain.example
    ||bad_.example-^
    ||192.168.0.1^
    """
)


def test_adblock_format() -> None:
    """`||domain^` (and `|domain^`) rules become domains; other rule kinds are reported."""
    result = import_list(ADBLOCK, ListFormat.ADBLOCK)
    assert result.domains == [
        "cdn.example.net",
        "exact.example.org",
        "example.com",
        "plain.example",
    ]
    assert result.skipped[Skip.COMMENT] == 3  # header, ! comment, ## element rule
    assert result.skipped[Skip.EXCEPTION] == 1
    assert result.skipped[Skip.WILDCARD] == 1
    assert result.skipped[Skip.UNSUPPORTED] == 3  # $third-party, a path, a regex
    assert result.skipped[Skip.INVALID] == 1
    assert result.skipped[Skip.IP] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# c\n0.0.0.0 a.example\n", ListFormat.HOSTS),
        ("127.0.0.1\tb.example\n", ListFormat.HOSTS),
        ("! c\n||a.example^\n", ListFormat.ADBLOCK),
        ("@@||a.example^\n", ListFormat.ADBLOCK),
        ("# c\na.example\nb.example\n", ListFormat.DOMAINS),
        ("", ListFormat.DOMAINS),
    ],
)
def test_detect_format(text: str, expected: ListFormat) -> None:
    """The format is guessed from the first lines that are not comments."""
    assert detect_format(text.splitlines()) is expected


def test_catalogue_never_block_and_shared_are_skipped() -> None:
    """Catalogued, never-block (under or above) and shared names are skipped."""
    listed = [
        "www.facebook.com",
        "facebook.com",
        "static.xx.fbcdn.net",
        "nhs.uk",
        "digital.nhs.uk",
        "example-mail.com",
        "bigcdn.example",
        "edge.bigcdn.example",
        "new-social.example",
    ]
    result = import_list(listed, ListFormat.DOMAINS, catalog())
    # edge.bigcdn.example is a specific host under shared infrastructure: it may be listed.
    assert result.domains == ["edge.bigcdn.example", "new-social.example"]
    assert result.skipped[Skip.CATALOGUED] == 3
    assert result.skipped[Skip.NEVER_BLOCK] == 2
    assert result.skipped[Skip.ABOVE_NEVER_BLOCK] == 1
    assert result.skipped[Skip.SHARED] == 1
    assert ("www.facebook.com (service facebook)") in [
        t for _, t in result.examples[Skip.CATALOGUED]
    ]


def test_parse_list_keeps_repeats_in_order() -> None:
    """parse_list returns names as listed, so duplicates can be counted later."""
    names, result = parse_list(["a.example", "b.example", "a.example"], ListFormat.DOMAINS)
    assert names == ["a.example", "b.example", "a.example"]
    assert not result.skipped


def test_render_catalog_round_trips_through_the_catalogue_parser() -> None:
    """The written file is a valid extra catalogue holding exactly the kept domains."""
    result = ImportResult(format=ListFormat.HOSTS, domains=["a.example", "b.example"])
    text = render_catalog(
        result,
        service_id="imported-list",
        name='A "quoted": name',
        category="forums",
        source="list #1.txt",
        today=dt.date(2026, 11, 24),
    )
    parsed = parse_catalog(parse_yaml(text, "out.yaml"), "out.yaml")
    service = parsed.services["imported-list"]
    assert service.domains == ("a.example", "b.example")
    assert service.category == "forums"
    assert service.name == 'A "quoted": name'
    assert service.added == dt.date(2026, 11, 24)
    assert "imported from list #1.txt (hosts format) on 2026-11-24" in service.source


def test_render_catalog_bad_domain_line_is_reported_at_its_line() -> None:
    """A hand-edited bad line in a written file is named by its own line number."""
    text = render_catalog(
        ImportResult(format=ListFormat.DOMAINS, domains=["a.example", "b.example"]),
        service_id="x",
        name="x",
        category="forums",
        source="l.txt",
        today=dt.date(2026, 11, 24),
    ).replace("b.example", "not a domain")
    with pytest.raises(ConfigError, match="not a domain") as caught:
        parse_catalog(parse_yaml(text, "out.yaml"), "out.yaml")
    problem = caught.value.problems[0]
    assert text.splitlines()[problem.line - 1].strip() == "not a domain"


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("AdGuard Social", "imported-adguard-social"),
        ("hosts", "imported-hosts"),
        ("___", "imported-list"),
    ],
)
def test_service_id_for(stem: str, expected: str) -> None:
    """A file name becomes a valid, recognisable service id."""
    assert service_id_for(stem) == expected
