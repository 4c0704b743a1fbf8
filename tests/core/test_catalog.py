"""Tests for socialguard.core.catalog: parsing catalogue files and classifying host names."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from socialguard.core.catalog import CATEGORIES, NO_MATCH, Catalog, parse_catalog, parse_catalogs
from socialguard.core.problems import ConfigError
from socialguard.files.catalog_file import embedded_catalog_path, load_catalog
from socialguard.files.yamlfile import parse_yaml

BASE = """\
version: 1
services:
  facebook:
    name: Facebook
    category: social-networking
    domains: [facebook.com, fbcdn.net, fb.me]
    reviewed: 2026-11-01
  instagram:
    name: Instagram
    category: multimedia-sharing
    domains: [instagram.com, cdn.fbcdn.net]
  wikipedia:
    name: Wikipedia
    category: information-sharing
    domains: [wikipedia.org]
  nhs-forum:
    name: An NHS-hosted forum
    category: forums
    domains: [forum.nhs.uk, deep.forum.nhs.uk]
never_block: [nhs.uk, work.facebook.com]
"""


def parse(text: str, source: str = "catalog.yaml") -> Catalog:
    return parse_catalog(parse_yaml(textwrap.dedent(text), source), source)


def built(text: str = BASE) -> Catalog:
    return parse(text)


def extended(base: str, text: str, source: str = "extra.yaml") -> Catalog:
    """The catalogue `base` makes, extended by a practice's extra file."""
    return parse_catalogs(
        [
            (parse_yaml(textwrap.dedent(base), "catalog.yaml"), "catalog.yaml"),
            (parse_yaml(textwrap.dedent(text), source), source),
        ]
    )


@pytest.mark.parametrize(
    ("host", "service", "domain"),
    [
        ("facebook.com", "facebook", "facebook.com"),
        ("www.facebook.com", "facebook", "facebook.com"),
        ("a.b.c.facebook.com", "facebook", "facebook.com"),
        ("a.b.fbcdn.net", "facebook", "fbcdn.net"),
        ("fbcdn.net", "facebook", "fbcdn.net"),
        ("cdn.fbcdn.net", "instagram", "cdn.fbcdn.net"),
        ("x.cdn.fbcdn.net", "instagram", "cdn.fbcdn.net"),
        ("en.wikipedia.org", "wikipedia", "wikipedia.org"),
    ],
)
def test_lookup_matches_on_label_boundaries(host: str, service: str, domain: str) -> None:
    """A host matches an entry equal to it or a parent domain; the most specific entry wins."""
    match = built().lookup(host)
    assert match.service is not None
    assert match.service.id == service
    assert match.domain == domain
    assert match.protected_by is None


@pytest.mark.parametrize(
    "host",
    [
        "notfacebook.com",
        "facebook.co",
        "facebook.com.evil.example",
        "xfbcdn.net",
        "com",
        "net",
        "example.org",
        "acebook.com",
    ],
)
def test_lookup_does_not_match_across_label_boundaries(host: str) -> None:
    """Names that merely contain or end with a catalogued string are not social media."""
    assert built().lookup(host) == NO_MATCH


@pytest.mark.parametrize(
    ("host", "protected_by"),
    [
        ("nhs.uk", "nhs.uk"),
        ("forum.nhs.uk", "nhs.uk"),
        ("deep.forum.nhs.uk", "nhs.uk"),
        ("work.facebook.com", "work.facebook.com"),
        ("x.work.facebook.com", "work.facebook.com"),
    ],
)
def test_never_block_wins(host: str, protected_by: str) -> None:
    """A never-block entry protects itself and everything under it, over any service entry."""
    match = built().lookup(host)
    assert match.service is None
    assert match.protected_by == protected_by


def test_never_block_shadows_entries_at_or_under_it() -> None:
    """Service domains at or under a never-block domain are dropped and listed as shadowed."""
    catalog = built()
    assert sorted(catalog.shadowed) == [
        ("deep.forum.nhs.uk", "nhs-forum"),
        ("forum.nhs.uk", "nhs-forum"),
    ]
    assert "forum.nhs.uk" not in catalog.index
    # A never-block entry under a service domain shadows nothing above it.
    assert catalog.lookup("www.facebook.com").service is not None


def test_build_index_can_be_rerun_after_adding_never_block() -> None:
    """Rebuilding the index after adding a never-block domain applies it."""
    catalog = built()
    catalog.never_block = catalog.never_block | {"facebook.com"}
    catalog.build_index()
    assert catalog.lookup("m.facebook.com").protected_by == "facebook.com"
    assert ("facebook.com", "facebook") in catalog.shadowed


def test_service_fields_are_parsed() -> None:
    """A service keeps its name, category, domains in order and reviewed date."""
    service = built().services["facebook"]
    assert service.name == "Facebook"
    assert service.category == "social-networking"
    assert service.domains == ("facebook.com", "fbcdn.net", "fb.me")
    assert service.reviewed is not None
    assert service.reviewed.isoformat() == "2026-11-01"


def test_domains_are_lower_cased_and_lose_trailing_dot() -> None:
    """Catalogue domains are stored in the same form normalise_host produces."""
    catalog = built(
        """
        services:
          x:
            name: X
            category: social-networking
            domains: [X.COM, twitter.com., " t.co "]
        never_block: [intranet.example]
        """
    )
    assert catalog.services["x"].domains == ("x.com", "twitter.com", "t.co")
    assert catalog.lookup("www.x.com").service is not None


def test_categories_are_the_documented_eight() -> None:
    """The catalogue offers exactly the policy's eight categories, and every service is in one."""
    assert len(set(CATEGORIES)) == 8
    assert {s.category for s in built().services.values()} <= set(CATEGORIES)


def test_extra_file_adds_domains_to_existing_service() -> None:
    """An extra file may add domains to a service; existing domains are kept and not repeated."""
    catalog = extended(
        BASE,
        """
        services:
          facebook:
            name: Facebook
            category: social-networking
            domains: [facebook.net, facebook.com, messenger.com]
        never_block: [intranet.example]
        """,
        source="extra.yaml",
    )
    assert catalog.services["facebook"].domains == (
        "facebook.com",
        "fbcdn.net",
        "fb.me",
        "facebook.net",
        "messenger.com",
    )
    match = catalog.lookup("www.messenger.com")
    assert match.service is not None
    assert match.service.id == "facebook"


def test_extra_file_adds_new_service_and_never_block() -> None:
    """An extra file may add services and never-block domains to those already loaded."""
    catalog = extended(
        BASE,
        """
        services:
          mastodon-social:
            name: mastodon.social
            category: social-networking
            domains: [mastodon.social]
        never_block: [intranet.example]
        """,
        source="extra.yaml",
    )
    assert catalog.lookup("mastodon.social").service is not None
    assert catalog.never_block >= {"nhs.uk", "work.facebook.com", "intranet.example"}


def test_extra_file_cannot_move_service_to_another_category() -> None:
    """Moving an existing service to another category is an error naming the file and line."""
    with pytest.raises(ConfigError) as caught:
        extended(
            BASE,
            """\
            services:
              facebook:
                category: dating
                domains: [facebook.net]
            never_block: [intranet.example]
            """,
            source="extra.yaml",
        )
    [problem] = caught.value.problems
    assert problem.source == "extra.yaml"
    assert problem.line == 2
    assert "already defined in category 'social-networking'" in problem.message


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("'*.facebook.com'", "wildcard"),
        ("https://facebook.com", "scheme"),
        ("facebook.com/groups", "path"),
        ("facebook", "no dot"),
        ("-facebook.com", "leading hyphen"),
        ("face book.com", "space"),
        ("facebook..com", "empty label"),
        ("bücher.example", "non-ASCII"),
    ],
)
def test_bad_domains_name_file_and_line(bad: str, what: str) -> None:
    """A domain that is not a plain name is a problem on its own line, with a hint."""
    text = f"""\
services:
  facebook:
    name: Facebook
    category: social-networking
    domains:
      - facebook.com
      - {bad}
never_block: [nhs.uk]
"""
    with pytest.raises(ConfigError) as caught:
        parse(text, source="cat.yaml")
    [problem] = caught.value.problems
    assert (problem.source, problem.line) == ("cat.yaml", 7), what
    assert "services.facebook.domains[1]" in problem.message
    assert "no scheme, path or wildcard" in problem.message
    assert str(problem).startswith("cat.yaml:7: ")


def test_bad_never_block_domain_names_line() -> None:
    """A bad never-block entry is reported at its own line."""
    text = "services: {}\nnever_block:\n  - nhs.uk\n  - '*.example.com'\n"
    with pytest.raises(ConfigError) as caught:
        parse(text)
    [problem] = caught.value.problems
    assert problem.line == 4
    assert problem.message.startswith("never_block[1]:")


def test_all_problems_are_reported_at_once() -> None:
    """ConfigError.problems lists every problem in the file, each with its line."""
    text = """\
version: 1
colour: blue
services:
  facebook:
    name: Facebook
    category: social-networking
    domains: [facebook.com]
    owner: meta
  Bad_Id:
    category: nonsense
    domains: []
  other:
    category: forums
    domains: [http://forum.example]
  notamapping: 3
never_block: nhs.uk
"""
    with pytest.raises(ConfigError) as caught:
        parse(text, source="c.yaml")
    found = [(p.line, p.message) for p in caught.value.problems]
    messages = "\n".join(m for _, m in found)
    assert any(ln == 2 and m.startswith("unknown key 'colour'") for ln, m in found)
    assert any(ln == 8 and "services.facebook: unknown key 'owner'" in m for ln, m in found)
    assert any(ln == 9 and "ids are lower case" in m for ln, m in found)
    assert any(ln == 10 and "'nonsense' is not one of" in m for ln, m in found)
    assert any(ln == 11 and "non-empty list of domains" in m for ln, m in found)
    assert any(ln == 14 and "services.other.domains[0]" in m for ln, m in found)
    assert any(ln == 15 and "services.notamapping: must be a mapping" in m for ln, m in found)
    assert any(ln == 16 and "never_block: must be a list" in m for ln, m in found)
    assert len(found) == 8, messages
    assert str(caught.value).count("\n") == 7


@pytest.mark.parametrize("data", ["just a string", "- a\n- b\n", "42"])
def test_catalogue_must_be_a_mapping(data: str) -> None:
    """A file that is not a mapping is one problem on line 1."""
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert [p.line for p in caught.value.problems] == [1]


def test_services_must_be_a_mapping() -> None:
    """services: given as a list is a problem at its key's line."""
    with pytest.raises(ConfigError) as caught:
        parse("version: 1\nservices:\n  - facebook\nnever_block: [nhs.uk]\n")
    [problem] = caught.value.problems
    assert problem.line == 2
    assert "services: must be a mapping" in problem.message


def test_service_name_defaults_to_id() -> None:
    """A service without a name is shown by its id."""
    catalog = parse(
        "services:\n  myspace:\n    category: social-networking\n    domains: [myspace.com]\n"
        "never_block: [nhs.uk]\n"
    )
    assert catalog.services["myspace"].name == "myspace"


def test_duplicate_key_is_an_error_with_line() -> None:
    """A service defined twice in one file is a YAML problem at the second definition."""
    text = (
        "services:\n"
        "  x:\n    category: forums\n    domains: [a.example]\n"
        "  x:\n    category: forums\n    domains: [b.example]\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text)
    [problem] = caught.value.problems
    assert problem.line == 5
    assert "appears twice" in problem.message


def test_embedded_catalogue_path_is_in_package() -> None:
    """The shipped catalogue lives in the package's data folder."""
    path = embedded_catalog_path()
    assert path.name == "catalog.yaml"
    assert path.parent.name == "data"
    assert path.parent.parent.name == "socialguard"


def test_shipped_catalogue_loads_and_classifies() -> None:
    """The shipped catalogue parses and names facebook.com but not notfacebook.com."""
    catalog, raws = load_catalog()
    assert len(raws) == 1
    assert raws[0]
    match = catalog.lookup("www.facebook.com")
    assert match.service is not None
    assert match.service.category in CATEGORIES
    assert catalog.lookup("notfacebook.com").service is None
    for service in catalog.services.values():
        assert service.category in CATEGORIES
        assert service.domains


def test_load_catalog_adds_extra_files_and_never_block(tmp_path: Path) -> None:
    """load_catalog layers an extra file and extra never-block domains over the shipped one."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "services:\n  sg-test-service:\n    name: T\n    category: forums\n"
        "    domains: [sg-test-forum.example]\nnever_block: [intranet.example]\n",
        encoding="utf-8",
    )
    catalog, raws = load_catalog([extra], extra_never_block=("safe.sg-test-forum.example",))
    assert len(raws) == 2
    assert catalog.lookup("www.sg-test-forum.example").service is not None
    assert catalog.lookup("safe.sg-test-forum.example").protected_by == (
        "safe.sg-test-forum.example"
    )


def test_load_catalog_collects_problems_from_every_file(tmp_path: Path) -> None:
    """Problems in several extra files are all reported together, each naming its file."""
    one = tmp_path / "one.yaml"
    two = tmp_path / "two.yaml"
    missing = tmp_path / "missing.yaml"
    one.write_text("bogus: 1\nnever_block: [a.example]\n", encoding="utf-8")
    two.write_text(
        "services:\n  y:\n    category: nope\n    domains: [y.example]\nnever_block: [a.example]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog([one, two, missing])
    sources = [p.source for p in caught.value.problems]
    assert sources == [str(one), str(two), str(missing)]
    assert "cannot read the file" in caught.value.problems[2].message


@pytest.mark.parametrize("tail", ["", "never_block: []\n"])
def test_never_block_is_optional(tail: str) -> None:
    """A catalogue file without never_block (or with an empty one) is valid."""
    catalog = parse(
        "services:\n  myspace:\n    name: Myspace\n    category: social-networking\n"
        "    domains: [myspace.com]\n" + tail
    )
    assert catalog.never_block == frozenset()
    assert catalog.services["myspace"].domains == ("myspace.com",)


def test_extra_file_adding_domains_keeps_name_and_review_date() -> None:
    """An extra file that only adds domains keeps the service's name and review date."""
    catalog = extended(
        BASE,
        "services:\n  facebook:\n    category: social-networking\n    domains: [messenger.com]\n"
        "never_block: [intranet.example]\n",
        source="extra.yaml",
    )
    service = catalog.services["facebook"]
    assert "messenger.com" in service.domains
    assert service.name == "Facebook"
    assert service.reviewed is not None


KINDS_TEXT = """\
services:
  chat:
    name: Chat
    category: social-networking
    web: [chat.example]
    app: [api.chat.example, chatapi.example]
    cdn: [chatcdn.example]
    short: []
    added: 2025-01-01
  clips:
    name: Clips
    category: multimedia-sharing
    domains: [clips.example, media.chatcdn.example]
never_block: [safe.example]
shared_infrastructure_left_out:
  - {domain: bigcdn.example, used_by: chat, why: "everyone's CDN"}
"""


def test_kinds_are_kept_and_merged_into_domains() -> None:
    """web, app, cdn and short lists all become domains, and each remembers its kind."""
    service = built(KINDS_TEXT).services["chat"]
    assert service.domains == (
        "chat.example",
        "api.chat.example",
        "chatapi.example",
        "chatcdn.example",
    )
    assert service.kind_of("chatapi.example") == "app"
    assert service.kind_of("chatcdn.example") == "cdn"
    assert service.domains_of("short") == ()
    assert service.last_reviewed() == dt.date(2025, 1, 1)


def test_explain_names_entry_kind_and_file() -> None:
    """explain says which entry, of which kind, from which file decided a host."""
    catalog = built(KINDS_TEXT)
    explanation = catalog.explain("x.api.chat.example")
    assert explanation.service is not None
    assert (explanation.service.id, explanation.entry, explanation.kind) == (
        "chat",
        "api.chat.example",
        "app",
    )
    assert explanation.entry_origin == "catalog.yaml"
    protected = catalog.explain("www.safe.example")
    assert (protected.protected_by, protected.protected_origin) == ("safe.example", "catalog.yaml")
    left_out = catalog.explain("a.bigcdn.example").left_out
    assert left_out is not None
    assert (left_out.used_by, left_out.why) == ("chat", "everyone's CDN")
    assert catalog.explain("other.example").service is None


def test_overlaps_duplicates_and_stale() -> None:
    """Another service's entry under one's own is an overlap; a repeat is a duplicate."""
    catalog = extended(
        KINDS_TEXT,
        "services:\n  clips:\n    category: multimedia-sharing\n    domains: [chat.example]\n",
        source="extra.yaml",
    )
    [overlap] = catalog.overlaps()
    assert (overlap.domain, overlap.service, overlap.parent_service) == (
        "media.chatcdn.example",
        "clips",
        "chat",
    )
    [duplicate] = catalog.duplicates
    assert (duplicate.domain, duplicate.first_origin, duplicate.origin) == (
        "chat.example",
        "catalog.yaml",
        "extra.yaml",
    )
    assert catalog.files["extra.yaml"] == [1, 1]
    stale = catalog.stale(dt.date(2026, 11, 24), 365)
    assert [s.id for s in stale] == ["chat", "clips"]
    assert catalog.stale(dt.date(2025, 6, 1), 365) == [catalog.services["clips"]]


def test_never_block_conflicts_in_both_directions() -> None:
    """An entry at, under or above a never-block domain is reported as a conflict."""
    catalog = built(
        "services:\n  a:\n    category: forums\n"
        "    domains: [forum.safe.example, example.org]\n"
        "never_block: [safe.example, login.example.org]\n"
    )
    assert catalog.never_block_conflicts() == [
        ("example.org", "a", "login.example.org"),
        ("forum.safe.example", "a", "safe.example"),
    ]


def test_block_string_domains_report_their_own_line() -> None:
    """`domains: |` holds one domain a line; a bad one is reported at its own line."""
    text = (
        "services:\n  imported:\n    category: forums\n    domains: |\n"
        "      one.example\n      # a comment\n      two.example\n      not valid\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text)
    [problem] = caught.value.problems
    assert problem.line == 8
    assert "'not valid' is not a domain name" in problem.message
    ok = parse(text.replace("      not valid\n", ""))
    assert ok.services["imported"].domains == ("one.example", "two.example")


def test_block_string_lines_are_cleaned_and_counted_like_list_items() -> None:
    """Upper case, a trailing dot, spaces and repeats are read as a list item would be."""
    text = (
        "services:\n  imported:\n    category: forums\n    domains: |\n"
        "      One.Example.\n\n      two.example  \n      one.example\n      x y\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text)
    [problem] = caught.value.problems
    assert (problem.line, problem.message.split(":")[0]) == (9, "services.imported.domains[3]")
    ok = parse(text.replace("      x y\n", ""))
    assert ok.services["imported"].domains == ("one.example", "two.example")
    assert [d.domain for d in ok.duplicates] == []  # a repeat within one entry is folded
    with pytest.raises(ConfigError, match="needs a non-empty list"):
        parse("services:\n  imported:\n    category: forums\n    domains: |\n      # none\n")


def test_origin_is_built_on_use_and_follows_later_files() -> None:
    """origin and duplicates are worked out when asked for, and again after another file."""
    catalog = parse(BASE)
    assert catalog.origin["fbcdn.net"] == ("facebook", "catalog.yaml")
    assert catalog.duplicates == []
    catalog = extended(
        BASE,
        "services:\n  facebook:\n    category: social-networking\n"
        "    domains: [fbcdn.net, facebook.net]\n",
        source="extra.yaml",
    )
    assert catalog.origin["facebook.net"] == ("facebook", "extra.yaml")
    [duplicate] = catalog.duplicates
    assert (duplicate.domain, duplicate.first_origin, duplicate.origin) == (
        "fbcdn.net",
        "catalog.yaml",
        "extra.yaml",
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{domain: '*.x', why: y}", "is not a domain name"),
        ("{domain: x.example}", "say why x.example is left out"),
        ("just-a-string", "write {domain"),
    ],
)
def test_left_out_entries_are_validated(entry: str, message: str) -> None:
    """shared_infrastructure_left_out entries need a domain and a reason."""
    with pytest.raises(ConfigError) as caught:
        parse(f"services: {{}}\nshared_infrastructure_left_out:\n  - {entry}\n")
    [problem] = caught.value.problems
    assert problem.line == 3
    assert message in problem.message


def test_service_with_kinds_but_no_domains_is_an_error() -> None:
    """A service whose kind lists are all empty is a problem, not a silent no-op."""
    with pytest.raises(ConfigError, match="lists no domains at all"):
        parse("services:\n  x:\n    category: forums\n    web: []\n    app: []\n")
    with pytest.raises(ConfigError, match="needs domains"):
        parse("services:\n  x:\n    category: forums\n")


def test_load_catalog_reports_yaml_errors_with_line(tmp_path: Path) -> None:
    """A syntax error in an extra file is explained with its line, as the careful reader does."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("services:\n  x: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalog([broken])
    [problem] = caught.value.problems
    assert problem.source == str(broken)
    assert "not valid YAML" in problem.message


def test_exact_hosts_match_only_themselves_and_yield_to_never_block() -> None:
    """`exact:` names a bare host without claiming what lies under it."""
    text = textwrap.dedent(
        """\
        services:
          tube:
            name: Tube
            category: multimedia-sharing
            web: [www.tube.example]
            exact: [tube.example, accounts.tube.example]
        never_block: [accounts.tube.example]
        """
    )
    catalog = parse_catalog(parse_yaml(text, "c.yaml"), "c.yaml")
    catalog.build_index()
    hit = catalog.lookup("tube.example")
    assert hit.service is not None
    assert hit.service.id == "tube"
    assert hit.service.kind_of("tube.example") == "exact"
    assert catalog.lookup("other.tube.example").service is None
    assert catalog.lookup("accounts.tube.example").protected_by == "accounts.tube.example"
    assert catalog.shadowed == [("accounts.tube.example", "tube")]
    assert catalog.never_block_conflicts() == [
        ("accounts.tube.example", "tube", "accounts.tube.example")
    ]


def test_exact_hosts_are_checked_like_domains() -> None:
    text = (
        "services:\n  t:\n    name: T\n    category: forums\n"
        "    web: [t.example]\n    exact: [bad host]\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_catalog(parse_yaml(text, "c.yaml"), "c.yaml")
    assert "services.t.exact[0]" in str(caught.value.problems[0])


@pytest.mark.parametrize(
    "host",
    [
        "facebook.com",
        "a.b.c.d.e.f.g.facebook.com",
        "x.cdn.fbcdn.net",
        "deep.forum.nhs.uk",
        "work.facebook.com",
        "notfacebook.com",
        "a.b.c.d.e.f.example.org",
        "com",
    ],
)
def test_entry_is_what_lookup_finds(host: str) -> None:
    """`entry` (decide's path) tries only as many labels as the longest entry, same answer."""
    catalog = built()
    assert catalog.depth == 3
    match = catalog.lookup(host)
    expected = match.service or match.protected_by
    assert catalog.entry(host) == expected
    unbuilt = Catalog(index=catalog.index, exact_index=catalog.exact_index)
    assert unbuilt.entry(host) == expected  # no depth known: every suffix is tried


def test_index_built_from_the_largest_services_own_dict_is_the_same_index() -> None:
    """The first listing wins and never-block shadows, whether or not the de-duplicating dict
    of the largest service is reused as the index (it is only on the first build)."""
    catalog = parse(
        "services:\n"
        "  early:\n    category: forums\n    domains: [shared.example]\n"
        "  big:\n    category: blogging\n    domains: |\n"
        "      shared.example\n      a.example\n      b.example\n      x.nhs.uk\n"
        "      c.example\n"
        "  late:\n    category: dating\n    domains: [a.example, d.example]\n"
        "never_block: [nhs.uk]\n"
    )
    catalog.build_index()
    first = (dict(catalog.index), list(catalog.shadowed))
    assert catalog.index["shared.example"] is catalog.services["early"]
    assert catalog.index["a.example"] is catalog.services["big"]
    assert "x.nhs.uk" not in catalog.index
    assert None not in catalog.index.values()
    catalog.build_index()
    assert (dict(catalog.index), list(catalog.shadowed)) == first


def test_unknown_keys_deeper_in_a_catalogue_are_refused() -> None:
    """Left-out entries and category descriptions are checked key by key too."""
    text = """\
services:
  forum:
    name: Forum
    category: forums
    domian: [forum.example]
categories:
  forums: {descripton: Forums}
  fourms: {description: Forums}
shared_infrastructure_left_out:
  - {domain: cdn.example, why: shared, usedby: many}
"""
    with pytest.raises(ConfigError) as caught:
        parse(text, source="c.yaml")
    found = [(p.line, p.message) for p in caught.value.problems]
    assert any(
        ln == 5 and "services.forum: unknown key 'domian' — did you mean 'domains'?" in m
        for ln, m in found
    ), found
    assert any(ln == 7 and "categories.forums: unknown key 'descripton'" in m for ln, m in found)
    assert any(
        ln == 8 and "unknown category 'fourms' — did you mean 'forums'?" in m for ln, m in found
    ), found
    assert any(
        ln == 10 and "unknown key 'usedby' — did you mean 'used_by'?" in m for ln, m in found
    )
