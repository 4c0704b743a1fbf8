"""The shipped catalogue itself: coverage, sources and licences, the never-block guarantee, shared
infrastructure claimed only as exact hosts, and the coverage table (tests/data/catalog_coverage.tsv)
measured directly and decided host by host by `socialguard check`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialguard.cli.app import main
from socialguard.core.catalog import CATEGORIES, KINDS, Catalog
from socialguard.core.catalog_coverage import NEVER_BLOCK, CoverageRow, coverage, read_table
from socialguard.core.hosts import suffixes
from socialguard.core.settings import DEFAULT_ENFORCED
from socialguard.files.catalog_file import load_catalog

PRACTICE_DOMAIN = "greenlane-surgery.co.uk"


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    catalog, _ = load_catalog(extra_never_block=(PRACTICE_DOMAIN,))
    return catalog


def test_at_least_200_services(shipped: Catalog) -> None:
    """The catalogue names at least 200 services."""
    assert len(shipped.services) >= 200


# Every example the policy's definition names, defunct or not, with the host people knew it by.
POLICY_EXAMPLES = {
    "facebook": "www.facebook.com",
    "tiktok": "www.tiktok.com",
    "bebo": "www.bebo.com",
    "myspace": "myspace.com",
    "linkedin": "www.linkedin.com",
    "twitter": "twitter.com",
    "wordpress": "someone.wordpress.com",
    "youtube": "www.youtube.com",
    "flickr": "www.flickr.com",
    "skype": "web.skype.com",
    "wikipedia": "en.wikipedia.org",
    "yahoo-answers": "answers.yahoo.com",
    "mumsnet": "www.mumsnet.com",
    "digitalspy": "forums.digitalspy.com",
    "ivillage": "www.ivillage.co.uk",
}


@pytest.mark.parametrize(("service_id", "host"), POLICY_EXAMPLES.items())
def test_every_example_the_policy_names_is_catalogued(
    shipped: Catalog, service_id: str, host: str
) -> None:
    """Each example in the policy is in the catalogue and names its own host."""
    match = shipped.lookup(host)
    assert match.service is not None
    assert match.service.id == service_id


def test_dating_and_personal_pages_hold_the_services_people_use(shipped: Catalog) -> None:
    """The policy names dating sites and personal web pages as kinds: both are well filled."""
    count = Counter(s.category for s in shipped.services.values())
    assert count["dating"] >= 30
    assert count["personal-pages"] >= 15


# The fediverse, newer networks and the big networks of other countries that staff use.
SERVICES_PEOPLE_USE = (
    "mastodon", "threads", "bluesky", "pixelfed", "lemmy", "misskey",
    "bereal", "lemon8", "discord", "twitch", "snapchat", "telegram", "clubhouse", "nextdoor",
    "tumblr", "quora", "medium", "substack", "strava", "peanut",
    "vk", "ok", "weibo", "wechat", "qq", "douyin", "bilibili", "xiaohongshu", "line",
    "kakaotalk", "naver-blog", "naver-cafe", "sharechat", "moj", "josh", "zalo", "viber",
)  # fmt: skip


@pytest.mark.parametrize("service_id", SERVICES_PEOPLE_USE)
def test_fediverse_newer_and_other_countries_networks_are_catalogued(
    shipped: Catalog, service_id: str
) -> None:
    """Each is catalogued with web domains and a source."""
    service = shipped.services[service_id]
    assert service.domains_of("web")
    assert service.source


# Where each public list is named in `sources:`, its licence must be named too.
LICENCES = {
    "v2fly": "MIT (v2fly/domain-list-community)",
    "NextDNS": "MIT (nextdns/services)",
    "AdGuard": "GPL-3.0 (AdguardTeam/HostlistsRegistry",
    "StevenBlack": "MIT (StevenBlack/hosts)",
}


def test_every_service_names_its_sources_licence(shipped: Catalog) -> None:
    """Each service says which licence its sources are under, or that none is needed."""
    unlicensed = [s.id for s in shipped.services.values() if "Licence" not in s.source]
    missing = [
        (s.id, licence)
        for s in shipped.services.values()
        for name, licence in LICENCES.items()
        if name in s.source and licence not in s.source
    ]
    assert unlicensed == []
    assert missing == []
    from_v2fly = [s for s in shipped.services.values() if "v2fly" in s.source]
    assert len(from_v2fly) >= 60


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_has_three_services(shipped: Catalog, category: str) -> None:
    """Each category of the policy's definition holds at least three services."""
    count = Counter(s.category for s in shipped.services.values())[category]
    assert count >= 3, f"{category} has {count} services"


def test_every_service_says_where_its_domains_came_from(shipped: Catalog) -> None:
    """Every service has a sources note, an added and a reviewed date."""
    missing = [s.id for s in shipped.services.values() if len(s.source.strip()) < 8]
    undated = [s.id for s in shipped.services.values() if not (s.added and s.reviewed)]
    assert missing == []
    assert undated == []


def test_every_service_declares_each_kind_of_domain(shipped: Catalog) -> None:
    """Every service lists web, app, cdn and short (empty: none separate) and some web domain."""
    for service in shipped.services.values():
        assert [kind for kind, _ in service.kinds] == list(KINDS), service.id
        assert service.domains_of("web"), service.id


# The big services people use on phones: their apps break only if their app API, CDN and short
# links are blocked too, so each of those kinds must be filled in.
MAJOR = {
    "facebook": ("app", "cdn", "short"),
    "instagram": ("app", "cdn", "short"),
    "whatsapp": ("app", "cdn", "short"),
    "tiktok": ("app", "cdn", "short"),
    "twitter": ("app", "cdn", "short"),
    "youtube": ("app", "cdn", "short"),
    "snapchat": ("app", "cdn"),
    "linkedin": ("app", "cdn", "short"),
    "discord": ("app", "cdn", "short"),
    "telegram": ("app", "cdn", "short"),
    "pinterest": ("app", "cdn", "short"),
    "reddit": ("cdn", "short"),
    "twitch": ("app", "cdn"),
    "tumblr": ("app", "cdn", "short"),
    "bluesky": ("app", "cdn", "short"),
    "vk": ("app", "cdn", "short"),
    "flickr": ("app", "cdn", "short"),
    "messenger": ("app", "short"),
}


@pytest.mark.parametrize(("service_id", "kinds"), MAJOR.items())
def test_major_services_list_app_cdn_and_short_link_domains(
    shipped: Catalog, service_id: str, kinds: tuple[str, ...]
) -> None:
    """A major service lists its app API, CDN/media and short-link domains, not just its site."""
    service = shipped.services[service_id]
    for kind in kinds:
        assert service.domains_of(kind), f"{service_id} lists no {kind} domains"


def _at_or_under(name: str, parent: str) -> bool:
    return name == parent or name.endswith("." + parent)


def test_no_entry_is_a_suffix_of_a_never_block_domain_or_the_reverse(shipped: Catalog) -> None:
    """No catalogue entry is at, under or above a never-block domain (checked pairwise)."""
    entries = {d: s.id for s in shipped.services.values() for d in s.domains}
    clashes = [
        (entry, service, protected)
        for entry, service in entries.items()
        for protected in shipped.never_block
        if _at_or_under(entry, protected) or _at_or_under(protected, entry)
    ]
    assert clashes == []
    assert shipped.never_block_conflicts() == []
    assert shipped.shadowed == []


def test_never_block_covers_what_the_practice_needs(shipped: Catalog) -> None:
    """NHS, government, clinical suppliers, Microsoft 365, Google sign-in and the practice."""
    for needed in (
        "nhs.uk", "nhs.net", "gov.uk", "tpp-uk.com", "emishealth.com", "accurx.com",
        "docman.com", "ardens.org.uk", "microsoftonline.com", "office.com", "sharepoint.com",
        "google.com", "accounts.youtube.com", "platform.linkedin.com", "broadcast.skype.com",
        PRACTICE_DOMAIN,
    ):  # fmt: skip
        assert needed in shipped.never_block, needed


# Shared Google, Microsoft, Akamai, Cloudflare, Amazon and other CDN or cloud infrastructure:
# a service's hosts under these are claimed only as exact hosts, never as suffixes.
PROVIDERS = (
    "googleapis.com", "googleusercontent.com", "ggpht.com", "appspot.com", "firebaseio.com",
    "firebaseapp.com", "web.app", "msedge.net", "azureedge.net", "azurefd.net",
    "trafficmanager.net", "cloudapp.net", "akamaihd.net", "akamaized.net", "akamaiedge.net",
    "akamai.net", "edgekey.net", "edgesuite.net", "akadns.net", "cloudflare.net",
    "cloudflare.com", "cloudfront.net", "amazonaws.com", "live-video.net", "fastly.net",
    "app.link",
)  # fmt: skip


def test_shared_infrastructure_is_claimed_only_as_exact_hosts(shipped: Catalog) -> None:
    """No suffix entry is at or under a provider's shared domain; each provider is recorded as
    left out, so `catalog lookup` and the importer explain it."""
    suffix_entries = [
        (domain, service.id, provider)
        for service in shipped.services.values()
        for domain in service.domains
        for provider in PROVIDERS
        if _at_or_under(domain, provider)
    ]
    assert suffix_entries == []
    assert [p for p in PROVIDERS if p not in shipped.left_out] == []
    exact_under = {
        host for s in shipped.services.values() for host in s.exact
        if any(_at_or_under(host, p) for p in PROVIDERS)
    }  # fmt: skip
    assert {"fbcdn-a.akamaihd.net", "yt3.ggpht.com", "p16-tiktokcdn-com.akamaized.net"} <= (
        exact_under
    )
    for host in exact_under:
        assert shipped.lookup(host).service is not None
        assert shipped.lookup(f"sg-probe.{host}").service is None


def test_shared_infrastructure_is_not_blocked_whole(shipped: Catalog) -> None:
    """No entry is at or above a domain left out on purpose, and each says why."""
    assert shipped.left_out_conflicts() == []
    for domain in ("youtube.com", "linkedin.com", "skype.com", "ggpht.com", "cloudfront.net"):
        left_out = shipped.left_out[domain]
        assert len(left_out.why) > 10
        # Nothing under it is named by suffix; at most the bare name itself, as an exact host.
        assert shipped.lookup("anything-else." + domain).service is None
        match = shipped.lookup(domain)
        assert match.service is None or domain in match.service.exact


def test_bare_names_of_services_with_protected_subdomains_are_blocked_exactly(
    shipped: Catalog,
) -> None:
    """`youtube.com` itself is YouTube; `accounts.youtube.com` under it stays protected."""
    for bare, service_id, protected in (
        ("youtube.com", "youtube", "accounts.youtube.com"),
        ("linkedin.com", "linkedin", "platform.linkedin.com"),
    ):
        match = shipped.lookup(bare)
        assert match.service is not None
        assert match.service.id == service_id
        assert match.service.kind_of(bare) == "exact"
        assert shipped.lookup(protected).protected_by == protected
        assert shipped.explain(bare).entry == bare


def test_shipped_catalogue_has_no_duplicates_or_cross_service_overlaps(shipped: Catalog) -> None:
    """Each domain is listed once, and no service's entry hides under another's."""
    assert shipped.duplicates == []
    assert shipped.overlaps() == []


def test_every_entry_classifies_as_its_own_service(shipped: Catalog) -> None:
    """Each entry, and a host under it, is named as the service that lists it."""
    for service in shipped.services.values():
        for domain in service.domains:
            for host in (domain, f"sg-probe.{domain}"):
                match = shipped.lookup(host)
                assert match.service is service, (host, service.id)
                assert match.domain == domain


# The coverage table: real hosts of the services people use (web, app API, CDN, short links), of
# the fediverse and newer networks, of other countries' networks, and hosts that must pass
# (NHS, clinical systems, Microsoft 365, Google, banks, news, shared infrastructure, near misses).
TABLE = Path(__file__).resolve().parents[1] / "data" / "catalog_coverage.tsv"
# Named in the policy but under google.com, which never_block protects whole: no catalogue entry
# can block them (docs/CATALOGUE.md, "What the catalogue cannot block").
KNOWN_MISSES = {"answers.google.com", "plus.google.com"}


@pytest.fixture(scope="module")
def table() -> list[CoverageRow]:
    rows, problems = read_table(TABLE.read_text(encoding="utf-8"))
    assert problems == []
    return rows


def test_the_table_holds_hundreds_of_hosts_both_ways(table: list[CoverageRow]) -> None:
    """The table is big enough to stand for the apps people use and for what must pass."""
    assert sum(row.block for row in table) >= 600
    assert sum(not row.block for row in table) >= 300
    assert sum(row.service == NEVER_BLOCK for row in table) >= 100


def test_coverage_of_the_table(shipped: Catalog, table: list[CoverageRow]) -> None:
    """Nothing that should pass is blocked; everything that should be blocked is, but the two
    hosts never_block shields; every host the table names is named as that service."""
    result = coverage(shipped, table, DEFAULT_ENFORCED)
    assert [(row.host, service.id) for row, service in result.wrongly_blocked] == []
    assert {row.host for row in result.missed} == KNOWN_MISSES
    assert result.recall >= 0.99
    assert result.misnamed == []


@pytest.fixture(scope="module")
def decisions(
    tmp_path_factory: pytest.TempPathFactory, table: list[CoverageRow]
) -> dict[str, dict[str, str | None]]:
    """Every host of the table decided at once by `socialguard check --json`."""
    folder = tmp_path_factory.mktemp("check")
    policy = folder / "policy.yaml"
    policy.write_text(f"practice:\n  domains: [{PRACTICE_DOMAIN}]\n", encoding="utf-8")
    authorisations = folder / "authorisations.yaml"
    authorisations.write_text("approvers: [practice.manager]\nexemptions: []\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["check", "--config", str(policy), "--authorisations", str(authorisations), "--json",
         "--at", "2026-12-01T10:00", "-"],
        input="\n".join(row.host for row in table) + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    return {row["target"]: row for row in rows}


def test_check_gives_every_host_of_the_table_its_answer(
    decisions: dict[str, dict[str, str | None]], table: list[CoverageRow]
) -> None:
    """The proxy's own decision agrees with the table, host by host, and gives the reason:
    the service for a social host, never-block for a protected one."""
    wrong = []
    for row in table:
        got = decisions[row.host]
        blocked = row.block and row.host not in KNOWN_MISSES
        if got["action"] != ("block" if blocked else "allow"):
            wrong.append((row.host, "action", got["action"], got["reason"]))
        if blocked and got["reason"] != "not_authorised":
            wrong.append((row.host, "reason", got["action"], got["reason"]))
        if row.service == NEVER_BLOCK and got["reason"] != "never_block":
            wrong.append((row.host, "reason", got["action"], got["reason"]))
        if row.service not in (None, NEVER_BLOCK) and got["service"] != row.service:
            wrong.append((row.host, "service", got["service"], row.service))
    assert wrong == []


def test_known_misses_are_shielded_by_never_block_not_forgotten(shipped: Catalog) -> None:
    """Google Answers and Google+ sit under google.com: never-block, not a gap in the data."""
    for host in KNOWN_MISSES:
        assert shipped.lookup(host).protected_by == "google.com"


def test_catalogue_file_in_config_is_the_shipped_one() -> None:
    """config/catalog.yaml points at the packaged catalogue, so both say the same."""
    config_copy = Path(__file__).resolve().parents[2] / "config" / "catalog.yaml"
    shipped_text = (
        Path(__file__).resolve().parents[2]
        / "addons" / "socialguard" / "data" / "catalog.yaml"
    ).read_text(encoding="utf-8")  # fmt: skip
    assert config_copy.read_text(encoding="utf-8") == shipped_text


def test_suffixes_helper_agrees_with_pairwise_check() -> None:
    """The pairwise test's notion of 'under' is the index's label-boundary suffix walk."""
    assert "fbcdn.net" in suffixes("a.b.fbcdn.net")
    assert _at_or_under("a.b.fbcdn.net", "fbcdn.net")
    assert not _at_or_under("xfbcdn.net", "fbcdn.net")
