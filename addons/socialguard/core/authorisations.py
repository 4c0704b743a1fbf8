"""The practice manager's list of business-purpose exemptions: parse and validate it whole.

Pure: parses already-loaded YAML against the catalogue and settings; `load_authorisations` is
the only file access. Edits that keep comments live in the exemptions command, not here.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from socialguard.core.catalog import CATEGORIES, Catalog
from socialguard.core.hosts import HostError, normalise_host
from socialguard.core.problems import (
    LocatedDict,
    LocatedList,
    Problems,
    did_you_mean,
    unknown_keys,
)
from socialguard.core.settings import Settings

PLACEHOLDER_PURPOSES = frozenset(
    {
        "",
        "n/a",
        "na",
        "none",
        "test",
        "testing",
        "tbc",
        "tbd",
        "todo",
        "-",
        "?",
        "x",
        "xx",
        "purpose",
        "business",
        "business purpose",
        "work",
        "misc",
        "various",
        "see above",
    }
)
MIN_PURPOSE_LENGTH = 10
_ENTRY_KEYS = {
    "id",
    "who",
    "services",
    "categories",
    "domains",
    "purpose",
    "approved_by",
    "approved_on",
    "starts",
    "expires",
    "revoked",
    "notes",
    "renewed",
    "recorded_by",
}
# Who ran the command that wrote a grant: the system user, and the sudo user where there is one.
_RECORDED_BY_KEYS = ("system_user", "sudo_user")
_WHO_KEYS = ("user", "group", "device")
_TOP_KEYS = frozenset({"approvers", "exemptions"})
_REVOKED_KEYS = frozenset({"on", "by", "reason"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Revocation:
    """When, by whom and why an exemption was withdrawn; the entry stays for the record."""

    on: dt.date
    by: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Exemption:
    """One business-purpose authorisation: who, what, why, who approved it, and for how long."""

    id: str
    who_kind: str
    who: str
    services: frozenset[str]
    categories: frozenset[str]
    domains: frozenset[str]
    purpose: str
    approved_by: str
    approved_on: dt.date
    starts: dt.datetime
    expires: dt.datetime
    expires_label: str
    revoked: Revocation | None
    line: int
    # Who recorded it (`socialguard exemptions grant` writes it), beside who approved it.
    recorded_by: str = ""

    def covers(self, service_id: str, category: str, host_suffixes: list[str]) -> bool:
        return (
            service_id in self.services
            or category in self.categories
            or any(s in self.domains for s in host_suffixes)
        )

    def status(self, when: dt.datetime) -> str:
        if self.revoked is not None:
            return "revoked"
        if when < self.starts:
            return "not-yet-valid"
        if when >= self.expires:
            return "expired"
        return "active"

    @property
    def what(self) -> str:
        return ", ".join(sorted(self.services | self.categories | self.domains))


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorisations:
    """The validated list, indexed by who it names."""

    approvers: frozenset[str]
    exemptions: tuple[Exemption, ...]
    warnings: tuple[str, ...] = ()

    def for_who(self, kind: str, name: str) -> list[Exemption]:
        return [e for e in self.exemptions if e.who_kind == kind and e.who == name]


EMPTY = Authorisations(approvers=frozenset(), exemptions=())


# A day before the calendar ends, so that a date there still converts between time zones.
_LAST_DAY = dt.date(9999, 12, 30)


def _recorded_by(value: Any, line: int, where: str, problems: Problems) -> str:
    """`{system_user: root, sudo_user: j.bloggs}` (or a plain name) → `root (sudo from
    j.bloggs)`; a shape that is neither is a problem at its line."""
    if value is None:
        return ""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if (
        isinstance(value, dict)
        and value.get("system_user")
        and all(k in _RECORDED_BY_KEYS and isinstance(v, str) for k, v in value.items())
    ):
        sudo = value.get("sudo_user")
        return f"{value['system_user']} (sudo from {sudo})" if sudo else str(value["system_user"])
    problems.add(
        line,
        f"{where}.recorded_by: write {{system_user: NAME}} or "
        "{system_user: NAME, sudo_user: NAME} (who ran the command that granted it)",
    )
    return ""


def end_of(value: Any, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """An expiry date means 'valid through that whole local day'; a time means that instant."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, dt.date):
        if value >= _LAST_DAY:  # the day after it does not exist; the rules refuse it anyway
            return dt.datetime.combine(_LAST_DAY, dt.time(), tzinfo=tz)
        return dt.datetime.combine(value + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return None


def start_of(value: Any, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=tz)
    return None


def label_of(value: Any) -> str:
    """How an expiry reads to a person: '31 October 2027' or '31 October 2027 15:00'."""
    if isinstance(value, dt.datetime):
        return f"{value.day} {value:%B %Y %H:%M}"
    if isinstance(value, dt.date):
        return f"{value.day} {value:%B %Y}"
    return str(value)


def _names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _parse_entry(
    entry: Any,
    index: int,
    line: int,
    approvers: frozenset[str],
    catalog: Catalog,
    settings: Settings,
    problems: Problems,
) -> Exemption | None:
    where = f"exemptions[{index}]"
    if not isinstance(entry, LocatedDict):
        problems.add(line, f"{where}: each exemption is a mapping (id, who, services, purpose…)")
        return None
    at = entry.line_of
    ident = entry.get("id")
    if ident:
        where = f"exemptions[{index}] ({ident})"
    else:
        problems.add(entry.line, f"{where}: needs an id, e.g. id: EX-2026-001")
    count = len(problems.found)
    unknown_keys(entry, _ENTRY_KEYS, where, problems)
    who = entry.get("who")
    who_kind = who_name = ""
    if not isinstance(who, dict) or len(who) != 1 or next(iter(who)) not in _WHO_KEYS:
        near = did_you_mean(str(next(iter(who))), _WHO_KEYS) if isinstance(who, dict) else ""
        problems.add(
            at("who"),
            f"{where}.who: write exactly one of {{user: NAME}}, "
            f"{{group: NAME}} or {{device: NAME}}{near}",
        )
    else:
        who_kind, raw_name = next(iter(who.items()))
        who_name = str(raw_name)
        if who_kind == "group" and who_name not in settings.groups:
            problems.add(
                at("who"),
                f"{where}.who: group {who_name!r} is not defined under groups: in policy.yaml",
            )
        if who_kind == "device" and who_name not in settings.device_names:
            problems.add(
                at("who"),
                f"{where}.who: device {who_name!r} is not defined under devices: in policy.yaml",
            )
    services = _names(entry.get("services"))
    categories = _names(entry.get("categories"))
    domains: list[str] = []
    for service in services:
        if service not in catalog.services:
            problems.add(
                at("services"),
                f"{where}.services: unknown service {service!r} — see 'socialguard catalog list'",
            )
    for category in categories:
        if category not in CATEGORIES:
            problems.add(
                at("categories"),
                f"{where}.categories: unknown category {category!r} "
                f"(known: {', '.join(CATEGORIES)})",
            )
    for raw in _names(entry.get("domains")):
        try:
            domains.append(normalise_host(raw).name)
        except HostError as error:
            problems.add(at("domains"), f"{where}.domains: {raw!r} — {error.reason}")
    if not (services or categories or domains):
        problems.add(
            entry.line, f"{where}: name what is allowed with services:, categories: or domains:"
        )
    purpose = str(entry.get("purpose") or "").strip()
    if not purpose:
        problems.add(entry.line, f"{where}: needs a purpose: the business reason for the exemption")
    elif purpose.lower() in PLACEHOLDER_PURPOSES or len(purpose) < MIN_PURPOSE_LENGTH:
        problems.add(
            at("purpose"),
            f"{where}.purpose: {purpose!r} does not say what the "
            "business purpose is — describe the task in a sentence",
        )
    approved_by = str(entry.get("approved_by") or "")
    if not approved_by:
        problems.add(entry.line, f"{where}: needs approved_by: (one of the approvers)")
    elif approved_by not in approvers:
        problems.add(
            at("approved_by"),
            f"{where}.approved_by: {approved_by!r} is not on the "
            f"approvers list ({', '.join(sorted(approvers)) or 'empty'}) — add them to "
            "approvers: or ask an approver to approve it",
        )
    tz = settings.timezone
    approved_on = entry.get("approved_on")
    if isinstance(approved_on, dt.datetime):
        approved_on = approved_on.date()
    if not isinstance(approved_on, dt.date):
        problems.add(at("approved_on"), f"{where}.approved_on: needs a date like 2026-11-01")
    expires = end_of(entry.get("expires"), tz)
    if expires is None:
        problems.add(
            at("expires"),
            f"{where}.expires: needs a date like 2027-10-31 (every "
            "exemption ends; renew it when it does)",
        )
    starts = start_of(entry.get("starts"), tz) if "starts" in entry else None
    if "starts" in entry and starts is None:
        problems.add(at("starts"), f"{where}.starts: needs a date or a date and time")
    revoked = _revocation(entry.get("revoked"), where, at("revoked"), problems)
    if isinstance(approved_on, dt.date) and expires is not None:
        approved_start = dt.datetime.combine(approved_on, dt.time(), tzinfo=tz)
        if expires <= approved_start:
            problems.add(
                at("expires"),
                f"{where}.expires: {label_of(entry.get('expires'))} is before it was approved",
            )
        elif expires - approved_start > dt.timedelta(days=settings.max_exemption_days + 1):
            problems.add(
                at("expires"),
                f"{where}.expires: more than "
                f"{settings.max_exemption_days} days after approval — exemptions are "
                "reviewed every year; renew it instead",
            )
    if len(problems.found) > count or not ident or expires is None:
        return None
    if not isinstance(approved_on, dt.date):
        return None
    return Exemption(
        id=str(ident),
        who_kind=who_kind,
        who=who_name,
        services=frozenset(services),
        categories=frozenset(categories),
        domains=frozenset(domains),
        purpose=purpose,
        approved_by=approved_by,
        approved_on=approved_on,
        starts=starts or start_of(approved_on, tz) or expires,
        expires=expires,
        expires_label=label_of(entry.get("expires")),
        revoked=revoked,
        recorded_by=_recorded_by(entry.get("recorded_by"), at("recorded_by"), where, problems),
        line=entry.line,
    )


def _revocation(value: Any, where: str, line: int, problems: Problems) -> Revocation | None:
    if value is None:
        return None
    if isinstance(value, dict):
        unknown_keys(value, _REVOKED_KEYS, f"{where}.revoked", problems)
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("on"), dt.date)
        or not value.get("by")
        or not value.get("reason")
    ):
        problems.add(line, f"{where}.revoked: write {{on: 2026-11-24, by: NAME, reason: TEXT}}")
        return None
    on = value["on"]
    return Revocation(
        on=on.date() if isinstance(on, dt.datetime) else on,
        by=str(value["by"]),
        reason=str(value["reason"]),
    )


def parse_authorisations(
    data: Any,
    source: str,
    catalog: Catalog,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
) -> Authorisations:
    """Validate the whole list; every problem is reported at once, with its line.

    `now` (default: the current time in the practice's zone) only decides which entries are
    still in force for the duplicate warning; validity never depends on the clock.
    """
    problems = Problems(source)
    if data is None:
        return EMPTY
    if not isinstance(data, LocatedDict):
        problems.add(1, "the file must be a mapping with approvers: and exemptions:")
        problems.raise_if_any()
    unknown_keys(data, _TOP_KEYS, "", problems)
    raw_approvers = data.get("approvers") or []
    if not isinstance(raw_approvers, list):
        problems.add(data.line_of("approvers"), "approvers: must be a list of names")
        raw_approvers = []
    approvers = frozenset(str(a) for a in raw_approvers)
    raw = data.get("exemptions") or LocatedList()
    if not isinstance(raw, LocatedList):
        problems.add(data.line_of("exemptions"), "exemptions: must be a list (start each with -)")
        raw = LocatedList()
    exemptions: list[Exemption] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw):
        line = raw.line_of(i)
        ident = entry.get("id") if isinstance(entry, dict) else None
        if ident is not None:
            if str(ident) in seen:
                problems.add(
                    line,
                    f"exemptions[{i}]: id {ident!r} is already used on line "
                    f"{seen[str(ident)]} — give each exemption its own id",
                )
            seen.setdefault(str(ident), line)
        parsed = _parse_entry(entry, i, line, approvers, catalog, settings, problems)
        if parsed is not None:
            exemptions.append(parsed)
    problems.raise_if_any()
    return Authorisations(
        approvers=approvers,
        exemptions=tuple(exemptions),
        warnings=tuple(_overlaps(exemptions, now or dt.datetime.now(settings.timezone))),
    )


def _overlaps(exemptions: list[Exemption], when: dt.datetime) -> list[str]:
    """Two entries in force at once for the same who and what: legal, but usually a mistake.

    Revoked and expired entries are history, not duplicates; an entry not yet valid counts
    only where its period overlaps the other's (a renewal prepared to follow one that ends
    does not).
    """
    seen: dict[tuple[str, str, str], list[Exemption]] = {}
    warnings = []
    for e in exemptions:
        if e.status(when) not in ("active", "not-yet-valid"):
            continue
        for item in sorted(e.services | e.categories | e.domains):
            earlier = seen.setdefault((e.who_kind, e.who, item), [])
            other = next(
                (o for o in earlier if o.starts < e.expires and e.starts < o.expires), None
            )
            if other is not None:
                warnings.append(f"{e.id} and {other.id} both cover {item} for {e.who_kind} {e.who}")
            earlier.append(e)
    return warnings
