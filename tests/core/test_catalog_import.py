"""Tests for socialguard.core.catalog_import: reading public list formats into catalogue entries."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from socialguard.core.catalog import Catalog, parse_catalog
from socialguard.core.catalog_import import (
    ImportResult,
    ListFormat,
    Skip,
    detect_format,
    import_list,
    import_v2fly,
    parse_list,
    parse_v2fly,
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
        ("# c\ninclude:other\na.example\n", ListFormat.V2FLY),
        ("a.example\nfull:b.a.example\n", ListFormat.V2FLY),
        ("a.example @ads\n", ListFormat.V2FLY),
        ("".join(f"n{i}.example\n" for i in range(40)) + "full:x.example\n", ListFormat.V2FLY),
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
    # edge.bigcdn.example is a specific host under shared infrastructure: it may be listed,
    # but only as itself, never as a suffix that would cover other sites' hosts under it.
    assert result.domains == ["new-social.example"]
    assert result.exact == ["edge.bigcdn.example"]
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


V2FLY = Path(__file__).resolve().parents[1] / "data" / "v2fly"


def read_v2fly(name: str) -> str | None:
    """How the command line follows `include:`: the file of that name beside the first."""
    path = V2FLY / name
    return path.read_text(encoding="utf-8") if path.is_file() else None


def test_v2fly_rules_keep_their_kind_attributes_list_and_section() -> None:
    """domain: and bare names cover their subdomains, full: one host; includes are followed,
    selectively where they carry attributes, and a loop is not followed twice."""
    rules, result = parse_v2fly(
        read_v2fly("example-social") or "", name="example-social", include=read_v2fly
    )
    by_name = {r.name: r for r in rules}
    assert list(by_name) == [
        "example-social-cdn.example",
        "video.example-social-cdn.example",
        "media.bigcdn.example",
        "corp-outside-china.example",
        "example-social.example",
        "example-social.co.example",
        "example-social.net.example",
        "exsoc.example",
        "app-api.bigcdn.example",
        "only-this-host.example",
        "bigcdn.example",
        "nhs.uk",
    ]
    assert by_name["video.example-social-cdn.example"].section == "CDN"
    assert by_name["video.example-social-cdn.example"].list_name == "example-social-cdn"
    assert by_name["corp-outside-china.example"].attributes == frozenset({"!cn"})
    assert by_name["only-this-host.example"].full
    assert not by_name["example-social.example"].full
    assert by_name["example-social.example"].section == ""
    assert (by_name["exsoc.example"].list_name, by_name["exsoc.example"].line) == (
        "example-social",
        11,
    )
    assert result.skipped[Skip.INCLUDE] == 3  # missing, itself, and the loop back from -cdn
    assert result.skipped[Skip.REGEXP] == 1
    assert result.skipped[Skip.KEYWORD] == 1
    assert result.skipped[Skip.TOP_LEVEL] == 1
    assert result.skipped[Skip.ATTRIBUTE] == 2
    assert result.skipped[Skip.COMMENT] == 4
    assert result.lines == 22
    assert (5, "include:example-social-missing") in result.examples[Skip.INCLUDE]
    assert (5, "example-social-cdn: include:example-social") in result.examples[Skip.INCLUDE]


def test_v2fly_without_a_reader_counts_every_include() -> None:
    """Read on its own (as `import_list` does), a list's includes are skipped and counted."""
    rules, result = parse_v2fly(read_v2fly("example-social") or "")
    assert "example-social-cdn.example" not in {r.name for r in rules}
    assert result.skipped[Skip.INCLUDE] == 4


def test_v2fly_left_out_attributes_are_the_callers_choice() -> None:
    """@ads rules are left out by default; a caller that wants them passes no attribute."""
    text = "a.example\nads.b.example @ads\n"
    assert [r.name for r in parse_v2fly(text)[0]] == ["a.example"]
    kept = parse_v2fly(text, left_out_attributes=frozenset())[0]
    assert [r.name for r in kept] == ["a.example", "ads.b.example"]


def test_import_v2fly_claims_shared_infrastructure_only_as_exact_hosts() -> None:
    """full: rules and names under shared infrastructure become exact hosts; never-block,
    shared infrastructure itself and names under another kept name are skipped."""
    result = import_v2fly(
        read_v2fly("example-social") or "",
        name="example-social",
        include=read_v2fly,
        catalog=catalog(),
    )
    assert result.format is ListFormat.V2FLY
    assert result.domains == [
        "corp-outside-china.example",
        "example-social-cdn.example",
        "example-social.co.example",
        "example-social.example",
        "example-social.net.example",
        "exsoc.example",
    ]
    assert result.exact == [
        "app-api.bigcdn.example",
        "media.bigcdn.example",
        "only-this-host.example",
    ]
    assert result.skipped[Skip.SHARED] == 1
    assert result.skipped[Skip.NEVER_BLOCK] == 1
    assert result.skipped[Skip.REDUNDANT] == 1


def test_import_v2fly_exact_hosts_skip_what_is_covered_or_protected() -> None:
    """A full: host under a kept or catalogued domain, at never-block, or repeated, is dropped;
    one above a never-block domain is kept, since an exact host covers nothing under it."""
    text = "\n".join(
        [
            "new.example",
            "full:www.new.example",
            "full:cdn.fbcdn.net",
            "full:www.nhs.uk",
            "full:example-mail.com",
            "full:bigcdn.example",
            "full:solo.example",
            "full:solo.example",
            "new.example",
        ]
    )
    result = import_v2fly(text, catalog=catalog())
    assert result.domains == ["new.example"]
    assert result.exact == ["example-mail.com", "solo.example"]
    assert result.skipped[Skip.REDUNDANT] == 1
    assert result.skipped[Skip.CATALOGUED] == 1
    assert result.skipped[Skip.NEVER_BLOCK] == 1
    assert result.skipped[Skip.SHARED] == 1
    assert result.skipped[Skip.DUPLICATE] == 2


def test_import_list_reads_v2fly_without_following_includes() -> None:
    """`catalog import --format v2fly` without a reader still imports the list's own rules."""
    text = read_v2fly("example-social") or ""
    result = import_list(text.splitlines(), ListFormat.V2FLY, catalog())
    assert "exsoc.example" in result.domains
    assert "example-social-cdn.example" not in result.domains
    assert result.skipped[Skip.INCLUDE] == 4


def test_render_catalog_writes_exact_hosts_that_load_as_exact() -> None:
    """Exact hosts are written under `exact:` and load as hosts that cover nothing below."""
    result = ImportResult(
        format=ListFormat.V2FLY, domains=["a.example"], exact=["edge.bigcdn.example"]
    )
    text = render_catalog(
        result,
        service_id="imported-v2fly",
        name="v",
        category="forums",
        source="example-social",
        today=dt.date(2026, 11, 24),
    )
    parsed = parse_catalog(parse_yaml(text, "out.yaml"), "out.yaml")
    service = parsed.services["imported-v2fly"]
    assert service.exact == ("edge.bigcdn.example",)
    assert parsed.lookup("edge.bigcdn.example").service is service
    assert parsed.lookup("x.edge.bigcdn.example").service is None
    assert "1 domains, 1 exact hosts" in text
