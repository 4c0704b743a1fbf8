"""The shipped catalogue itself: coverage, sources, the never-block guarantee, and a table of
real hosts (apps, CDNs, short links, clinical systems, near misses) decided by `socialguard check`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialguard.cli.app import main
from socialguard.core.catalog import CATEGORIES, KINDS, Catalog
from socialguard.core.hosts import suffixes
from socialguard.files.catalog_file import load_catalog

PRACTICE_DOMAIN = "greenlane-surgery.co.uk"


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    catalog, _ = load_catalog(extra_never_block=(PRACTICE_DOMAIN,))
    return catalog


def test_at_least_85_services(shipped: Catalog) -> None:
    """The catalogue names at least 85 services."""
    assert len(shipped.services) >= 85


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


# Real hosts seen from the web sites and apps, with the service they belong to.
SOCIAL_HOSTS = {
    "facebook": [
        "www.facebook.com",
        "m.facebook.com",
        "facebook.com",
        "graph.facebook.com",
        "b-graph.facebook.com",
        "edge-mqtt.facebook.com",
        "api.facebook.com",
        "static.xx.fbcdn.net",
        "scontent-lhr8-1.xx.fbcdn.net",
        "video-lhr6-1.xx.fbcdn.net",
        "connect.facebook.net",
        "fb.me",
        "fb.watch",
        "cdn.fbsbx.com",
        "www.facebook.co.uk",
        "fbcdn-a.akamaihd.net",
        "l.facebook.com",
        "lm.facebook.com",
    ],
    "messenger": ["www.messenger.com", "m.me", "edge-chat.messenger.com"],
    "instagram": [
        "www.instagram.com",
        "i.instagram.com",
        "graph.instagram.com",
        "scontent.cdninstagram.com",
        "scontent-lhr8-2.cdninstagram.com",
        "ig.me",
        "instagr.am",
    ],
    "whatsapp": [
        "web.whatsapp.com",
        "www.whatsapp.com",
        "g.whatsapp.net",
        "mmg.whatsapp.net",
        "media-lhr8-1.cdn.whatsapp.net",
        "wa.me",
        "static.whatsapp.net",
    ],
    "tiktok": [
        "www.tiktok.com",
        "m.tiktok.com",
        "vm.tiktok.com",
        "vt.tiktok.com",
        "api16-normal-c-useast1a.tiktokv.com",
        "api22-normal-c-alisg.tiktokv.com",
        "log22-normal-alisg.tiktokv.com",
        "p16-sign-va.tiktokcdn.com",
        "v16-webapp.tiktok.com",
        "p16-tiktokcdn-com.akamaized.net",
        "lf16-tiktok-web.tiktokcdn-us.com",
        "p77-sign-sg.tiktokcdn.com",
        "mon.byteoversea.com",
        "log.byteoversea.com",
        "sf-tb-sg.ibytedtos.com",
        "p16-amd-va.tiktokcdn.com",
        "api.tiktokv.eu",
        "www.musical.ly",
    ],
    "linkedin": [
        "www.linkedin.com",
        "uk.linkedin.com",
        "m.linkedin.com",
        "api.linkedin.com",
        "media.licdn.com",
        "static.licdn.com",
        "lnkd.in",
        "realtime.www.linkedin.com",
    ],
    "discord": [
        "discord.com",
        "gateway.discord.gg",
        "discord.gg",
        "cdn.discordapp.com",
        "media.discordapp.net",
        "images-ext-1.discordapp.net",
        "status.discord.media",
    ],
    "telegram": ["web.telegram.org", "telegram.org", "t.me", "core.telegram.org", "telesco.pe"],
    "vk": ["vk.com", "m.vk.com", "sun9-1.userapi.com", "vk.cc"],
    "twitter": [
        "twitter.com",
        "x.com",
        "api.x.com",
        "api.twitter.com",
        "mobile.twitter.com",
        "pbs.twimg.com",
        "video.twimg.com",
        "abs.twimg.com",
        "t.co",
        "upload.x.com",
    ],
    "threads": ["www.threads.net", "www.threads.com"],
    "tumblr": ["www.tumblr.com", "api.tumblr.com", "64.media.tumblr.com", "tmblr.co"],
    "wordpress": ["wordpress.com", "someone.wordpress.com", "wp.me", "public-api.wordpress.com"],
    "blogger": ["www.blogger.com", "someone.blogspot.com", "someone.blogspot.co.uk"],
    "medium": ["medium.com", "miro.medium.com", "someone.medium.com"],
    "bluesky": ["bsky.app", "public.api.bsky.app", "cdn.bsky.app", "bsky.social", "go.bsky.app"],
    "mastodon": ["mastodon.social", "files.mastodon.social", "mastodonapp.uk"],
    "substack": ["someone.substack.com", "substackcdn.com"],
    "youtube": [
        "www.youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "studio.youtube.com",
        "youtubei.googleapis.com",
        "youtube.googleapis.com",
        "rr3---sn-aigl6ned.googlevideo.com",
        "redirector.googlevideo.com",
        "i.ytimg.com",
        "i9.ytimg.com",
        "s.ytimg.com",
        "youtu.be",
        "www.youtube-nocookie.com",
        "www.youtubekids.com",
        "www.youtube.co.uk",
    ],
    "flickr": ["www.flickr.com", "live.staticflickr.com", "flic.kr", "api.flickr.com"],
    "snapchat": [
        "www.snapchat.com",
        "app.snapchat.com",
        "aws.api.snapchat.com",
        "cf-st.sc-cdn.net",
        "bolt-gcdn.sc-cdn.net",
        "feelinsonice-hrd.appspot.com",
        "us-east1-aws.api.snapchat.com",
    ],
    "pinterest": [
        "www.pinterest.com",
        "uk.pinterest.com",
        "i.pinimg.com",
        "s.pinimg.com",
        "pin.it",
        "api.pinterest.com",
        "www.pinterest.co.uk",
    ],
    "twitch": [
        "www.twitch.tv",
        "gql.twitch.tv",
        "static-cdn.jtvnw.net",
        "video-weaver.lhr03.hls.ttvnw.net",
        "clips.twitch.tv",
    ],
    "vimeo": ["vimeo.com", "player.vimeo.com", "i.vimeocdn.com", "f.vimeocdn.com"],
    "imgur": ["imgur.com", "i.imgur.com", "api.imgur.com"],
    "dailymotion": ["www.dailymotion.com", "s1.dmcdn.net", "dai.ly"],
    "soundcloud": ["soundcloud.com", "i1.sndcdn.com", "on.soundcloud.com"],
    "9gag": ["9gag.com", "img-9gag-fun.9cache.com"],
    "skype": ["web.skype.com", "join.skype.com"],
    "wikipedia": ["en.wikipedia.org", "en.m.wikipedia.org", "upload.wikimedia.org", "w.wiki"],
    "fandom": ["harrypotter.fandom.com", "static.wikia.nocookie.net"],
    "stack-exchange": ["stackoverflow.com", "cdn.sstatic.net", "superuser.com"],
    "reddit": [
        "www.reddit.com",
        "old.reddit.com",
        "oauth.reddit.com",
        "gql.reddit.com",
        "i.redd.it",
        "v.redd.it",
        "preview.redd.it",
        "styles.redditmedia.com",
        "www.redditstatic.com",
    ],
    "mumsnet": ["www.mumsnet.com"],
    "digitalspy": ["forums.digitalspy.com", "www.digitalspy.com"],
    "netmums": ["www.netmums.com"],
    "4chan": ["boards.4chan.org", "i.4cdn.org"],
    "the-student-room": ["www.thestudentroom.co.uk"],
    "mse-forum": ["forums.moneysavingexpert.com"],
    "quora": ["www.quora.com", "qph.cf2.quoracdn.net"],
    "yahoo-answers": ["answers.yahoo.com", "uk.answers.yahoo.com"],
    "tripadvisor": [
        "www.tripadvisor.co.uk",
        "dynamic-media-cdn.tripadvisor.com",
        "static.tacdn.com",
    ],
    "trustpilot": ["uk.trustpilot.com", "widget.trustpilot.com"],
    "yelp": ["www.yelp.co.uk", "s3-media0.fl.yelpcdn.com"],
    "glassdoor": ["www.glassdoor.co.uk"],
    "tinder": ["tinder.com", "api.gotinder.com", "images-ssl.gotinder.com"],
    "bumble": ["bumble.com", "us1.ecdn2.bumbcdn.com", "pd1eu.bumbcdn.com"],
    "hinge": ["hinge.co", "www.hinge.co"],
    "plenty-of-fish": ["www.pof.com"],
    "grindr": ["www.grindr.com", "grindr.mobi"],
    "okcupid": ["www.okcupid.com", "cdn.okccdn.com", "k0.okccdn.com"],
    "badoo": ["badoo.com", "www.badoo.com"],
    "match": ["www.match.com"],
    "eharmony": ["www.eharmony.co.uk"],
    "linktree": ["linktr.ee", "assets.production.linktr.ee"],
    "carrd": ["someone.carrd.co"],
    "about-me": ["about.me"],
    "beacons": ["beacons.ai"],
    "neocities": ["someone.neocities.org"],
}

# Never blocked: NHS, clinical systems, Microsoft 365 (incl. hosts under Skype and LinkedIn),
# Google search and sign-in, certificate status, and the practice's own site.
PROTECTED_HOSTS = [
    "www.nhs.uk",
    "digital.nhs.uk",
    "www.nhsapp.service.nhs.uk",
    "auth.login.nhs.uk",
    "ers.nhs.uk",
    "secure.pcse.england.nhs.uk",
    "portal.nhs.net",
    "outlook.nhs.net",
    "www.gov.uk",
    "www.nice.org.uk",
    "bnf.nice.org.uk",
    "www.cqc.org.uk",
    "systmonline.tpp-uk.com",
    "www.tpp-uk.com",
    "www.emishealth.com",
    "www.patientaccess.com",
    "app.accurx.com",
    "web.accurx.com",
    "www.docman.com",
    "www.ardens.org.uk",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "outlook.office.com",
    "teams.microsoft.com",
    "statics.teams.cdn.office.net",
    "nhs.sharepoint.com",
    "nhs-my.sharepoint.com",
    "www.office.com",
    "login.live.com",
    "aadcdn.msftauth.net",
    "broadcast.skype.com",
    "eu.broadcast.skype.com",
    "secure.skypeassets.com",
    "join.secure.skypeassets.com",
    "platform.linkedin.com",
    "www.yammer.com",
    "www.google.com",
    "www.google.co.uk",
    "accounts.google.com",
    "accounts.youtube.com",
    "oauth2.googleapis.com",
    "fonts.googleapis.com",
    "www.gstatic.com",
    "ssl.gstatic.com",
    "ocsp.digicert.com",
    "ocsp.rootca1.amazontrust.com",
    "r3.o.lencr.org",
    "ocsp.pki.goog",
    PRACTICE_DOMAIN,
    f"www.{PRACTICE_DOMAIN}",
]

# Near misses and shared infrastructure: not social media.
NOT_SOCIAL_HOSTS = [
    "notfacebook.com",
    "facebook.com.evil.example",
    "myfacebook-login.co.uk",
    "facebook.co",
    "fbcdn.net.example",
    "xfbcdn.net",
    "instagram-login.example",
    "tiktok.com.phish.example",
    "nottiktok.com",
    "twitter.com.evil.example",
    "xtwitter.com",
    "t.co.uk",
    "youtube.com.evil.example",
    "myyoutube.com",
    "linkedin.com.evil.example",
    "reddit.com.evil.example",
    "redditt.com",
    "wa.me.example",
    "nhs-uk.example",
    "yt3.ggpht.com",
    "lh3.googleusercontent.com",
    "d111111abcdef8.cloudfront.net",
    "a248.e.akamai.net",
    "example.org",
    "bbc.co.uk",
    "www.moneysavingexpert.com",
    "mail.yahoo.com",
    "i0.wp.com",
    "media.giphy.com",
]


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str | None]]:
    """Every host of the tables decided at once by `socialguard check --json`."""
    folder = tmp_path_factory.mktemp("check")
    policy = folder / "policy.yaml"
    policy.write_text(f"practice:\n  domains: [{PRACTICE_DOMAIN}]\n", encoding="utf-8")
    authorisations = folder / "authorisations.yaml"
    authorisations.write_text("approvers: [practice.manager]\nexemptions: []\n", encoding="utf-8")
    hosts = [h for group in SOCIAL_HOSTS.values() for h in group]
    hosts += PROTECTED_HOSTS + NOT_SOCIAL_HOSTS
    result = CliRunner().invoke(
        main,
        ["check", "--config", str(policy), "--authorisations", str(authorisations), "--json",
         "--at", "2026-12-01T10:00", "-"],
        input="\n".join(hosts) + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    return {row["target"]: row for row in rows}


def test_the_table_holds_a_few_hundred_hosts() -> None:
    """The table is big enough to stand for the apps people use."""
    total = sum(len(g) for g in SOCIAL_HOSTS.values()) + len(PROTECTED_HOSTS)
    assert total + len(NOT_SOCIAL_HOSTS) >= 300


@pytest.mark.parametrize(
    ("host", "service"),
    [(h, service) for service, group in SOCIAL_HOSTS.items() for h in group],
)
def test_social_hosts_are_named_and_blocked(
    decisions: dict[str, dict[str, str | None]], host: str, service: str
) -> None:
    """An app, CDN or short-link host is named as its service and blocked (reference: allowed)."""
    row = decisions[host]
    assert row["service"] == service, row
    if row["category"] == "information-sharing":
        assert (row["action"], row["reason"]) == ("allow", "category_not_enforced")
    else:
        assert (row["action"], row["reason"]) == ("block", "not_authorised")


@pytest.mark.parametrize("host", PROTECTED_HOSTS)
def test_clinical_microsoft_google_and_practice_hosts_are_never_blocked(
    decisions: dict[str, dict[str, str | None]], host: str
) -> None:
    """NHS, clinical, Microsoft 365, Google sign-in, CA status and practice hosts pass."""
    row = decisions[host]
    assert (row["action"], row["reason"]) == ("allow", "never_block"), row


@pytest.mark.parametrize("host", NOT_SOCIAL_HOSTS)
def test_near_misses_and_shared_infrastructure_are_not_social(
    decisions: dict[str, dict[str, str | None]], host: str
) -> None:
    """Look-alike names and shared CDN or Google hosts are not taken for social media."""
    row = decisions[host]
    assert (row["action"], row["reason"], row["service"]) == ("allow", "not_social_media", None)


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
