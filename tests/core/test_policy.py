"""Tests for socialguard.core.policy: decide() as a pure function of who, host, time and policy."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from socialguard.core.authorisations import parse_authorisations
from socialguard.core.hosts import Host, HostKind, normalise_host
from socialguard.core.policy import (
    ANONYMOUS,
    Action,
    Decision,
    Reason,
    Who,
    attribute,
    decide,
    digest_of,
    most_restrictive,
    normalise_ip,
)
from socialguard.core.settings import parse_settings
from socialguard.files.yamlfile import parse_yaml
from tests.conftest import AUTHORISATIONS, NOW, SETTINGS, UTC, make_policy

POLICY = make_policy()


def who(user: str | None = None, ip: str = "10.10.0.99") -> Who:
    return attribute(ip, user, POLICY.settings)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("example.org", Reason.NOT_SOCIAL_MEDIA),
        ("notfacebook.com", Reason.NOT_SOCIAL_MEDIA),
        ("facebook.com.evil.example", Reason.NOT_SOCIAL_MEDIA),
        ("nhs.uk", Reason.NEVER_BLOCK),
        ("www.england.nhs.uk", Reason.NEVER_BLOCK),
        ("mail.nhs.net:443", Reason.NEVER_BLOCK),
    ],
)
def test_not_social_and_never_block_are_allowed(host: str, reason: Reason) -> None:
    """Hosts the catalogue does not name, or protects, are allowed with no service."""
    decision = decide(who(), host, NOW, POLICY)
    assert decision.action is Action.ALLOW
    assert decision.reason is reason
    assert decision.service is None
    assert not decision.recorded


def test_category_not_enforced_is_allowed() -> None:
    """A catalogued service in a category that is not enforced is allowed, and named."""
    decision = decide(who(), "en.wikipedia.org", NOW, POLICY)
    assert decision.action is Action.ALLOW
    assert decision.reason is Reason.CATEGORY_NOT_ENFORCED
    assert (decision.service, decision.category) == ("wikipedia", "information-sharing")


def test_category_enforced_when_settings_say_so() -> None:
    """Adding information-sharing to enforced_categories blocks it."""
    policy = make_policy(SETTINGS + "enforced_categories: [information-sharing]\n")
    decision = decide(who(), "en.wikipedia.org", NOW, policy)
    assert decision.reason is Reason.NOT_AUTHORISED
    assert decide(who(), "www.facebook.com", NOW, policy).reason is Reason.CATEGORY_NOT_ENFORCED


@pytest.mark.parametrize("host", ["www.facebook.com", "FACEBOOK.COM.", "static.fbcdn.net:443"])
def test_no_exemption_blocks(host: str) -> None:
    """Social media without an exemption is blocked as not authorised, naming the service."""
    decision = decide(who("x.someone"), host, NOW, POLICY)
    assert decision.action is Action.BLOCK
    assert decision.blocked
    assert decision.recorded
    assert decision.reason is Reason.NOT_AUTHORISED
    assert decision.service == "facebook"
    assert decision.service_name == "Facebook"
    assert decision.category == "social-networking"
    assert decision.exemption_id is None


def test_valid_exemption_allows_with_id_and_purpose() -> None:
    """A user's active exemption allows the service and says which exemption and why."""
    decision = decide(who("j.smith"), "m.facebook.com", NOW, POLICY)
    assert decision.action is Action.ALLOW
    assert decision.reason is Reason.EXEMPTION
    assert decision.exemption_id == "EX-USER"
    assert decision.purpose == "Maintain the practice's Facebook page"
    assert decision.exemption_ends == "31 October 2027"
    assert decision.recorded


def test_exemption_covers_only_what_it_names() -> None:
    """An exemption for one service does not allow another in the same category."""
    assert decide(who("j.smith"), "www.linkedin.com", NOW, POLICY).reason is Reason.NOT_AUTHORISED


def test_expired_exemption_blocks_and_names_date() -> None:
    """An expired exemption blocks with exemption_expired and names the latest expiry date."""
    decision = decide(who("old.user"), "www.facebook.com", NOW, POLICY)
    assert decision.action is Action.BLOCK
    assert decision.reason is Reason.EXEMPTION_EXPIRED
    assert decision.exemption_id == "EX-OLD"
    assert decision.exemption_ends == "31 October 2026"
    assert decision.detail == "exemption EX-OLD expired on 31 October 2026"


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        (dt.datetime(2027, 10, 31, 23, 59, 59, tzinfo=UTC), Reason.EXEMPTION),
        (dt.datetime(2027, 11, 1, 0, 0, tzinfo=UTC), Reason.EXEMPTION_EXPIRED),
        (dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), Reason.EXEMPTION_NOT_YET_VALID),
        (dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC), Reason.EXEMPTION),
    ],
)
def test_exemption_boundaries(when: dt.datetime, reason: Reason) -> None:
    """An exemption applies from local midnight of its approval day to the end of its expiry day."""
    assert decide(who("j.smith"), "facebook.com", when, POLICY).reason is reason


def test_not_yet_valid_exemption_blocks() -> None:
    """An exemption whose start is in the future blocks with exemption_not_yet_valid."""
    decision = decide(who("new.user"), "facebook.com", NOW, POLICY)
    assert decision.blocked
    assert decision.reason is Reason.EXEMPTION_NOT_YET_VALID
    assert decision.exemption_id == "EX-FUTURE"
    assert decision.detail == "exemption EX-FUTURE is not valid yet"
    later = dt.datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert decide(who("new.user"), "facebook.com", later, POLICY).reason is Reason.EXEMPTION


def test_revoked_exemption_blocks() -> None:
    """A revoked exemption blocks with exemption_revoked."""
    decision = decide(who("gone.user"), "facebook.com", NOW, POLICY)
    assert decision.blocked
    assert decision.reason is Reason.EXEMPTION_REVOKED
    assert decision.exemption_id == "EX-REVOKED"
    assert decision.detail == "exemption EX-REVOKED was revoked"


@pytest.mark.parametrize(
    ("user", "action"),
    [
        ("a.brown", Action.ALLOW),
        ("c.davis", Action.ALLOW),
        ("j.smith", Action.BLOCK),
        (None, Action.BLOCK),
    ],
)
def test_group_exemption_needs_authenticated_member(user: str | None, action: Action) -> None:
    """A group exemption applies only to authenticated users in that group."""
    decision = decide(who(user), "www.youtube.com", NOW, POLICY)
    assert decision.action is action
    if action is Action.ALLOW:
        assert decision.exemption_id == "EX-GROUP"


def test_group_exemption_not_from_unauthenticated_who() -> None:
    """An unauthenticated Who is never given its groups' exemptions, even if groups are set."""
    spoofed = Who(
        client_ip="10.10.0.99",
        user="a.brown",
        device=None,
        zone="staff",
        groups=frozenset({"reception"}),
        authenticated=False,
    )
    assert decide(spoofed, "youtube.com", NOW, POLICY).reason is Reason.NOT_AUTHORISED


@pytest.mark.parametrize(
    ("ip", "user", "action"),
    [
        ("10.10.0.21", None, Action.ALLOW),
        ("::ffff:10.10.0.21", None, Action.ALLOW),
        ("10.10.0.21", "someone", Action.ALLOW),
        ("10.10.0.22", None, Action.BLOCK),
    ],
)
def test_device_exemption_by_client_ip(ip: str, user: str | None, action: Action) -> None:
    """A device exemption applies to connections from that device's address."""
    decision = decide(who(user, ip), "www.linkedin.com", NOW, POLICY)
    assert decision.action is action
    if action is Action.ALLOW:
        assert decision.exemption_id == "EX-DEVICE"


@pytest.mark.parametrize("user", [None, ""])
def test_unauthenticated_client_never_gets_user_exemption(user: str | None) -> None:
    """Without proxy authentication, no user exemption applies."""
    decision = decide(who(user), "facebook.com", NOW, POLICY)
    assert decision.reason is Reason.NOT_AUTHORISED


def test_user_exemption_not_from_unauthenticated_who() -> None:
    """A Who naming a user but not authenticated gets no user exemption."""
    claimed = dataclasses.replace(who("j.smith"), authenticated=False)
    assert decide(claimed, "facebook.com", NOW, POLICY).reason is Reason.NOT_AUTHORISED


@pytest.mark.parametrize(
    ("ip", "when", "reason"),
    [
        # Winter (GMT): 12:45 UTC is 12:45 local.
        ("10.20.0.5", dt.datetime(2026, 11, 24, 12, 45, tzinfo=UTC), Reason.BREAK_WINDOW),
        ("10.20.0.5", dt.datetime(2026, 11, 24, 12, 30, tzinfo=UTC), Reason.BREAK_WINDOW),
        ("10.20.0.5", dt.datetime(2026, 11, 24, 12, 29, 59, tzinfo=UTC), Reason.NOT_AUTHORISED),
        ("10.20.0.5", dt.datetime(2026, 11, 24, 13, 30, tzinfo=UTC), Reason.NOT_AUTHORISED),
        ("2001:db8:20::5", dt.datetime(2026, 11, 24, 12, 45, tzinfo=UTC), Reason.BREAK_WINDOW),
        # Saturday: no window.
        ("10.20.0.5", dt.datetime(2026, 11, 28, 12, 45, tzinfo=UTC), Reason.NOT_AUTHORISED),
        # Summer (BST): the window is 11:30-12:30 UTC.
        ("10.20.0.5", dt.datetime(2027, 6, 15, 11, 45, tzinfo=UTC), Reason.BREAK_WINDOW),
        ("10.20.0.5", dt.datetime(2027, 6, 15, 12, 45, tzinfo=UTC), Reason.NOT_AUTHORISED),
        # Either side of the clocks going forward on 29 March 2026.
        ("10.20.0.5", dt.datetime(2026, 3, 27, 11, 45, tzinfo=UTC), Reason.NOT_AUTHORISED),
        ("10.20.0.5", dt.datetime(2026, 3, 30, 11, 45, tzinfo=UTC), Reason.BREAK_WINDOW),
        ("10.20.0.5", dt.datetime(2026, 3, 27, 12, 45, tzinfo=UTC), Reason.BREAK_WINDOW),
        ("10.20.0.5", dt.datetime(2026, 3, 30, 12, 45, tzinfo=UTC), Reason.NOT_AUTHORISED),
        # The staff zone has no window.
        ("10.10.0.5", dt.datetime(2026, 11, 24, 12, 45, tzinfo=UTC), Reason.NOT_AUTHORISED),
        # An address in no zone falls in the default zone, which has no window.
        ("192.168.1.5", dt.datetime(2026, 11, 24, 12, 45, tzinfo=UTC), Reason.NOT_AUTHORISED),
    ],
)
def test_break_window_by_zone_and_local_time(ip: str, when: dt.datetime, reason: Reason) -> None:
    """Personal use is allowed in a zone's break window, read in local time across BST."""
    decision = decide(who(None, ip), "www.facebook.com", when, POLICY)
    assert decision.reason is reason
    assert decision.action is (Action.ALLOW if reason is Reason.BREAK_WINDOW else Action.BLOCK)


def test_break_window_beats_an_expired_exemption() -> None:
    """In a break window a refused exemption does not matter; outside it, it is named."""
    lunch = dt.datetime(2026, 11, 24, 12, 45, tzinfo=UTC)
    assert decide(who("old.user", "10.20.0.5"), "facebook.com", lunch, POLICY).reason is (
        Reason.BREAK_WINDOW
    )
    assert decide(who("old.user", "10.20.0.5"), "facebook.com", NOW, POLICY).reason is (
        Reason.EXEMPTION_EXPIRED
    )


def test_active_exemption_beats_refused_one() -> None:
    """An active exemption allows even when another for the same person has expired."""
    policy = make_policy()
    extra = parse_authorisations(
        parse_yaml(
            AUTHORISATIONS.replace("{user: old.user}", "{user: j.smith}"), "authorisations.yaml"
        ),
        "authorisations.yaml",
        policy.catalog,
        policy.settings,
    )
    policy = dataclasses.replace(policy, authorisations=extra)
    decision = decide(who("j.smith"), "facebook.com", NOW, policy)
    assert decision.reason is Reason.EXEMPTION
    assert decision.exemption_id == "EX-USER"


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:157.240.1.35", "157.240.1.35"),
        (Host("157.240.1.35", HostKind.IP), "157.240.1.35"),
    ],
)
def test_ip_literal_is_allowed(host: str | Host, name: str) -> None:
    """An IP literal names no service and is allowed with reason ip_literal."""
    decision = decide(who(), host, NOW, POLICY)
    assert decision.action is Action.ALLOW
    assert decision.reason is Reason.IP_LITERAL
    assert decision.host == name


@pytest.mark.parametrize(
    "host", ["", "face book.com", "127.1", "a" * 64 + ".com", "x" * 1000, "<script>"]
)
def test_malformed_host_blocks(host: str) -> None:
    """A host that cannot be read is blocked with malformed_host and the reason in detail."""
    decision = decide(who(), host, NOW, POLICY)
    assert decision.action is Action.BLOCK
    assert decision.reason is Reason.MALFORMED_HOST
    assert decision.detail
    assert decision.host == host[:255]


def test_decide_accepts_a_normalised_host() -> None:
    """decide takes a Host as well as a string, with the same result."""
    assert decide(who(), Host("www.facebook.com"), NOW, POLICY) == decide(
        who(), "WWW.Facebook.com", NOW, POLICY
    )


def test_decide_is_deterministic() -> None:
    """The same inputs give the same Decision, and time in another zone is the same instant."""
    london = NOW.astimezone(POLICY.settings.timezone)
    assert decide(who("j.smith"), "facebook.com", NOW, POLICY) == decide(
        who("j.smith"), "facebook.com", london, POLICY
    )


def allow(reason: Reason, host: str = "h") -> Decision:
    return Decision(action=Action.ALLOW, reason=reason, host=host)


def block(reason: Reason, host: str = "h") -> Decision:
    return Decision(action=Action.BLOCK, reason=reason, host=host)


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ([allow(Reason.NOT_SOCIAL_MEDIA), block(Reason.NOT_AUTHORISED)], 1),
        ([block(Reason.MALFORMED_HOST), block(Reason.NOT_AUTHORISED)], 0),
        ([allow(Reason.EXEMPTION), block(Reason.NOT_AUTHORISED)], 1),
        ([allow(Reason.NOT_SOCIAL_MEDIA), allow(Reason.EXEMPTION)], 1),
        ([allow(Reason.NEVER_BLOCK), allow(Reason.BREAK_WINDOW), allow(Reason.EXEMPTION)], 1),
        ([allow(Reason.IP_LITERAL, "a"), allow(Reason.NOT_SOCIAL_MEDIA, "b")], 0),
        ([allow(Reason.NOT_SOCIAL_MEDIA)], 0),
    ],
)
def test_most_restrictive(decisions: list[Decision], expected: int) -> None:
    """A block wins; else a recorded allow (exemption, break) wins; else the first."""
    assert most_restrictive(decisions) is decisions[expected]


@pytest.mark.parametrize(
    ("reason", "recorded"),
    [
        (Reason.EXEMPTION, True),
        (Reason.BREAK_WINDOW, True),
        (Reason.NOT_SOCIAL_MEDIA, False),
        (Reason.NEVER_BLOCK, False),
        (Reason.IP_LITERAL, False),
        (Reason.CATEGORY_NOT_ENFORCED, False),
    ],
)
def test_recorded_allows(reason: Reason, recorded: bool) -> None:
    """Only allows that let social media through are recorded; every block is."""
    assert allow(reason).recorded is recorded
    assert block(reason).recorded


@pytest.mark.parametrize(
    ("ip", "user", "expected"),
    [
        (
            "::ffff:10.0.0.5",
            None,
            Who(client_ip="10.0.0.5", user=ANONYMOUS, device=None, zone="practice"),
        ),
        (
            "10.10.0.21",
            None,
            Who(client_ip="10.10.0.21", user=ANONYMOUS, device="reception-pc-1", zone="staff"),
        ),
        (
            "::ffff:10.20.0.7",
            "a.brown",
            Who(
                client_ip="10.20.0.7",
                user="a.brown",
                device=None,
                zone="byod",
                groups=frozenset({"reception"}),
                authenticated=True,
            ),
        ),
        (
            "2001:DB8:20::0007",
            "j.smith",
            Who(
                client_ip="2001:db8:20::7",
                user="j.smith",
                device=None,
                zone="byod",
                authenticated=True,
            ),
        ),
        (
            "not-an-ip",
            "",
            Who(client_ip="not-an-ip", user=ANONYMOUS, device=None, zone="practice"),
        ),
    ],
)
def test_attribute(ip: str, user: str | None, expected: Who) -> None:
    """attribute() normalises the address and finds device, zone, user and groups."""
    assert attribute(ip, user, POLICY.settings) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("::ffff:10.0.0.5", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.5"),
        ("2001:0DB8::0001", "2001:db8::1"),
        ("garbage", "garbage"),
    ],
)
def test_normalise_ip(raw: str, expected: str) -> None:
    """normalise_ip unmaps v4-mapped v6 and canonicalises; garbage is kept as given."""
    assert normalise_ip(raw) == expected


def test_digest_of() -> None:
    """The policy digest is 16 hex characters, depends on every part and their order."""
    one = digest_of([b"a", b"b"])
    assert len(one) == 16
    int(one, 16)
    assert one == digest_of([b"a", b"b"])
    assert one != digest_of([b"b", b"a"])
    assert one != digest_of([b"ab"])
    assert one != digest_of([b"a", b"c"])


def test_reason_values_are_a_public_contract() -> None:
    """Reason values appear in audit logs and metrics: these spellings must never change."""
    assert {r.value for r in Reason} >= {
        "not_social_media",
        "never_block",
        "category_not_enforced",
        "exemption",
        "break_window",
        "not_authorised",
        "exemption_expired",
        "exemption_not_yet_valid",
        "exemption_revoked",
        "ip_literal",
        "malformed_host",
        "internal_error",
    }


def test_decisions_stay_frozen_comparable_and_hashable() -> None:
    """Decision is built cheaply, but is still an immutable value."""
    decision = decide(who(), "www.facebook.com", NOW, POLICY)
    same = Decision(
        action=Action.BLOCK,
        reason=Reason.NOT_AUTHORISED,
        host="www.facebook.com",
        service="facebook",
        service_name="Facebook",
        category="social-networking",
    )
    assert decision == same
    assert hash(decision) == hash(same)
    assert decision._replace(detail="x").detail == "x"
    with pytest.raises(AttributeError):
        decision.host = "other.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    "host", ["WWW.FaceBook.com.", "www.facebook.com:443", "10.0.0.1", "[::1]:443", "x.123"]
)
def test_decide_takes_strings_and_hosts_alike(host: str) -> None:
    """The quick path for plain names decides exactly as a normalised Host does."""
    assert decide(who(), host, NOW, POLICY) == decide(who(), normalise_host(host), NOW, POLICY)


@pytest.mark.parametrize(
    ("ip", "zone"),
    [("10.0.20.5", "byod"), ("10.0.21.5", "practice"), ("10.9.0.1", "lab"), ("10.1.0.1", "campus")],
)
def test_the_most_specific_zone_wins(ip: str, zone: str) -> None:
    """Nested subnets: an address is in the smallest zone holding it, whatever the order."""
    settings = parse_settings(
        parse_yaml(
            "zones:\n"
            "  - {name: byod, subnets: [10.0.20.0/24]}\n"
            "  - {name: practice, subnets: [10.0.0.0/16]}\n"
            "  - {name: lab, subnets: [10.9.0.0/16]}\n"
            "  - {name: campus, subnets: [10.0.0.0/8]}\n",
            "policy.yaml",
        ),
        "policy.yaml",
    )
    assert attribute(ip, None, settings).zone == zone
