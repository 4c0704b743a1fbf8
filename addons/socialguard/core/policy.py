"""The decision: who, where to, when, under which policy → allow or block, and why.

Pure: no clock, no I/O, no mitmproxy. The adapter passes the time and the policy in; the
same inputs always give the same Decision, so tests and `socialguard check` agree with the proxy.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from socialguard.core.authorisations import Authorisations, Exemption
from socialguard.core.catalog import Catalog, Service
from socialguard.core.hosts import (
    Host,
    HostError,
    HostKind,
    normalise_host,
    plain_name,
    suffixes,
    unmapped,
)
from socialguard.core.settings import Settings
from socialguard.core.signup_endpoints import Endpoint

ANONYMOUS = "anonymous"


class Action(enum.StrEnum):
    """What happens to the connection."""

    ALLOW = "allow"
    BLOCK = "block"


class Reason(enum.StrEnum):
    """Why a decision was reached. Values appear in audit events: never rename one."""

    NOT_SOCIAL_MEDIA = "not_social_media"
    NEVER_BLOCK = "never_block"
    CATEGORY_NOT_ENFORCED = "category_not_enforced"
    EXEMPTION = "exemption"
    BREAK_WINDOW = "break_window"
    NOT_AUTHORISED = "not_authorised"
    EXEMPTION_EXPIRED = "exemption_expired"
    EXEMPTION_NOT_YET_VALID = "exemption_not_yet_valid"
    EXEMPTION_REVOKED = "exemption_revoked"
    IP_LITERAL = "ip_literal"
    MALFORMED_HOST = "malformed_host"
    WORK_EMAIL_SIGNUP = "work_email_signup"
    INTERNAL_ERROR = "internal_error"
    PORT_NOT_ALLOWED = "port_not_allowed"
    NOT_TLS = "not_tls"
    DESTINATION_REFUSED = "destination_refused"


# Answers that depend on the name and the policy alone, never on who asks or when: the same raw
# name always gets the same one while the policy in force is the same object, so it may be kept.
TIMELESS_REASONS = frozenset(
    {
        Reason.NOT_SOCIAL_MEDIA,
        Reason.NEVER_BLOCK,
        Reason.CATEGORY_NOT_ENFORCED,
        Reason.IP_LITERAL,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Who:
    """The person, device and network zone a connection is attributed to."""

    client_ip: str
    user: str
    device: str | None
    zone: str
    groups: frozenset[str] = frozenset()
    authenticated: bool = False


class Decision(NamedTuple):
    """The outcome and everything the block page, the audit log and metrics need to say why.

    A NamedTuple: immutable, hashable, and built by decide() at a tuple's cost.
    """

    action: Action
    reason: Reason
    host: str
    service: str | None = None
    service_name: str | None = None
    category: str | None = None
    exemption_id: str | None = None
    purpose: str | None = None
    exemption_ends: str | None = None
    detail: str = ""

    @property
    def blocked(self) -> bool:
        return self.action is Action.BLOCK

    @property
    def recorded(self) -> bool:
        """Only policy-relevant decisions are recorded: blocks and social media let through."""
        return self.blocked or self.reason in (Reason.EXEMPTION, Reason.BREAK_WINDOW)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Settings, catalogue and authorisations that were validated together, with their digest,
    and the signup guard's known endpoints (shipped and the practice's), built once per load."""

    settings: Settings
    catalog: Catalog
    authorisations: Authorisations
    digest: str
    signup_endpoints: tuple[Endpoint, ...]


def digest_of(parts: list[bytes]) -> str:
    """A short fingerprint of the files in force, so every event says which policy decided."""
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def normalise_ip(client_ip: str) -> str:
    """`::ffff:10.0.0.5` → `10.0.0.5`; anything unreadable is kept as given."""
    try:
        return str(unmapped(ipaddress.ip_address(client_ip)))
    except ValueError:
        return client_ip


def attribute(client_ip: str, username: str | None, settings: Settings) -> Who:
    """Proxy-auth user if any, else a named device by address, else the subnet's zone."""
    ip = normalise_ip(client_ip)
    device = settings.devices_by_ip.get(ip)
    zone = settings.default_zone
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        address = None
    if address is not None:
        # Nested subnets are allowed (settings refuses identical ones): the most specific wins.
        best = -1
        for candidate in settings.zones:
            for network in candidate.networks:
                if network.prefixlen > best and address in network:
                    zone, best = candidate.name, network.prefixlen
    user = username or ANONYMOUS
    return Who(
        client_ip=ip,
        user=user,
        device=device,
        zone=zone,
        groups=settings.groups_by_user.get(user, frozenset()) if username else frozenset(),
        authenticated=bool(username),
    )


def _candidates(who: Who, authorisations: Authorisations) -> list[Exemption]:
    found = []
    if who.authenticated:
        found += authorisations.for_who("user", who.user)
        for group in sorted(who.groups):
            found += authorisations.for_who("group", group)
    if who.device:
        found += authorisations.for_who("device", who.device)
    return found


_REFUSED = {
    "expired": Reason.EXEMPTION_EXPIRED,
    "not-yet-valid": Reason.EXEMPTION_NOT_YET_VALID,
    "revoked": Reason.EXEMPTION_REVOKED,
}


def decide(who: Who, host: Host | str, when: dt.datetime, policy: Policy) -> Decision:
    """Decide one destination for one person at one instant. `when` must be timezone-aware."""
    plain = plain_name(host) if isinstance(host, str) else None  # the common case: no Host
    if plain is not None:
        name = plain
    else:
        if isinstance(host, str):
            try:
                host = normalise_host(host)
            except HostError as error:
                return Decision(
                    action=Action.BLOCK,
                    reason=Reason.MALFORMED_HOST,
                    host=error.raw[:255],
                    detail=error.reason,
                )
        name = host.name
        if host.kind is HostKind.IP:
            # An address names no service: it is decided as "not named" and passes (see README).
            return Decision(action=Action.ALLOW, reason=Reason.IP_LITERAL, host=name)
    service = policy.catalog.entry(name)
    if service is None:
        return _decision(Action.ALLOW, Reason.NOT_SOCIAL_MEDIA, name, None)
    if isinstance(service, str):
        return _decision(Action.ALLOW, Reason.NEVER_BLOCK, name, None)
    settings = policy.settings
    if service.category not in settings.enforced_categories:
        return _decision(Action.ALLOW, Reason.CATEGORY_NOT_ENFORCED, name, service)
    if who.authenticated or who.device:
        return _decide_exemptions(who, name, service, when, policy)
    if settings.zones:
        return _decide_zone(who, name, service, when, settings, None)
    return _decision(Action.BLOCK, Reason.NOT_AUTHORISED, name, service)


def _decision(action: Action, reason: Reason, host: str, service: Service | None) -> Decision:
    """Decision(...) for the common outcomes, with positional fields (the hot path)."""
    if service is None:
        return Decision(action, reason, host)
    return Decision(action, reason, host, service.id, service.name, service.category)


def _decide_exemptions(
    who: Who, name: str, service: Service, when: dt.datetime, policy: Policy
) -> Decision:
    """A social-media name for someone who may hold exemptions: any active one allows it."""
    refused: Exemption | None = None
    host_suffixes = suffixes(name)
    for exemption in _candidates(who, policy.authorisations):
        if not exemption.covers(service.id, service.category, host_suffixes):
            continue
        status = exemption.status(when)
        if status == "active":
            return Decision(
                action=Action.ALLOW,
                reason=Reason.EXEMPTION,
                host=name,
                service=service.id,
                service_name=service.name,
                category=service.category,
                exemption_id=exemption.id,
                purpose=exemption.purpose,
                exemption_ends=exemption.expires_label,
            )
        if refused is None or exemption.expires > refused.expires:
            refused = exemption
    return _decide_zone(who, name, service, when, policy.settings, refused)


def _decide_zone(
    who: Who,
    name: str,
    service: Service,
    when: dt.datetime,
    settings: Settings,
    refused: Exemption | None,
) -> Decision:
    """No active exemption: an open break window allows it, else it is blocked, saying why."""
    for zone in settings.zones:
        if zone.name == who.zone:
            if zone.break_windows:
                local = when.astimezone(settings.timezone)
                if any(window.is_open(local) for window in zone.break_windows):
                    return Decision(
                        action=Action.ALLOW,
                        reason=Reason.BREAK_WINDOW,
                        host=name,
                        service=service.id,
                        service_name=service.name,
                        category=service.category,
                    )
            break
    if refused is not None:
        status = refused.status(when)
        ends = refused.expires_label
        detail = {
            "expired": f"exemption {refused.id} expired on {ends}",
            "not-yet-valid": f"exemption {refused.id} is not valid yet",
            "revoked": f"exemption {refused.id} was revoked",
        }[status]
        return Decision(
            action=Action.BLOCK,
            reason=_REFUSED[status],
            host=name,
            service=service.id,
            service_name=service.name,
            category=service.category,
            exemption_id=refused.id,
            purpose=refused.purpose,
            exemption_ends=ends,
            detail=detail,
        )
    return Decision(
        action=Action.BLOCK,
        reason=Reason.NOT_AUTHORISED,
        host=name,
        service=service.id,
        service_name=service.name,
        category=service.category,
    )


def refusal(reason: Reason, host: str, detail: str = "") -> Decision:
    """A block that no catalogue entry explains: a malformed name, a port, a protocol, an
    address, or a check that failed (INTERNAL_ERROR: blocked to be safe)."""
    return Decision(action=Action.BLOCK, reason=reason, host=host[:255], detail=detail)


def most_restrictive(decisions: list[Decision]) -> Decision:
    """When several names describe one connection (CONNECT, SNI, Host), a block wins."""
    for decision in decisions:
        if decision.blocked:
            return decision
    recorded = [d for d in decisions if d.recorded]
    return recorded[0] if recorded else decisions[0]
