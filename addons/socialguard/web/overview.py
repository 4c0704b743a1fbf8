"""What the overview shows, in people's words: exemptions with service names, days left and
what needs attention; the latest blocks with their references; staff requests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialguard.audit.files import AuditError, log_segments
from socialguard.audit.log import ts_stamp
from socialguard.audit.search import Query, find_event, search
from socialguard.core.authorisations import Authorisations, Exemption
from socialguard.core.catalog import Catalog
from socialguard.files.exemption_actions import BLOCK_EVENTS, SearchError, label, review_due

ENDING_SOON_DAYS = 30
KINDS = {"user": "", "device": "device ", "group": "group "}


def service_name(catalog: Catalog, service: str | None) -> str:
    """Facebook, not facebook: the name people know a service by."""
    if not service:
        return ""
    known = catalog.services.get(service)
    return known.name if known is not None else service


def what_of(catalog: Catalog, exemption: Exemption) -> str:
    names = [service_name(catalog, s) for s in sorted(exemption.services)]
    names += [f"all {c.replace('-', ' ')}" for c in sorted(exemption.categories)]
    names += sorted(exemption.domains)
    return ", ".join(names)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExemptionRow:
    id: str
    who: str
    what: str
    purpose: str
    approved_by: str
    approved_on: str
    expires: str
    days_left: int
    ending_soon: bool
    review_overdue: bool
    review_due: str
    status: str


def exemption_rows(
    authorisations: Authorisations, catalog: Catalog, when: dt.datetime, today: dt.date
) -> list[ExemptionRow]:
    """The exemptions in force (active or not yet started), soonest ending first."""
    rows = []
    for e in authorisations.exemptions:
        status = e.status(when)
        if status not in ("active", "not-yet-valid"):
            continue
        days = max((e.expires - when) // dt.timedelta(days=1), 0)
        due = review_due(e)
        rows.append(
            ExemptionRow(
                id=e.id,
                who=f"{KINDS.get(e.who_kind, e.who_kind + ' ')}{e.who}",
                what=what_of(catalog, e),
                purpose=e.purpose,
                approved_by=e.approved_by,
                approved_on=label(e.approved_on),
                expires=e.expires_label,
                days_left=days,
                ending_soon=days <= ENDING_SOON_DAYS,
                review_overdue=due < today,
                review_due=label(due),
                status="not started yet" if status == "not-yet-valid" else "active",
            )
        )
    rows.sort(key=lambda r: (r.days_left, r.id))
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockRow:
    reference: str
    when: str
    who: str
    service: str
    host: str
    grantable: bool


def _local(ts: str, tz: dt.tzinfo) -> str:
    try:
        when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(tz)
    except ValueError:
        return ts
    return f"{when.day} {when:%b %Y %H:%M}"


def find_block(audit_path: Path, reference: str) -> dict[str, Any] | None:
    """The event with this reference in the proxy's log and its rotated files."""
    try:
        return find_event(log_segments(audit_path), reference)
    except (AuditError, ValueError) as error:
        raise SearchError(str(error)) from None


def person_of(event: dict[str, Any]) -> str:
    user = event.get("user")
    if user and user != "anonymous":
        return str(user)
    if event.get("device"):
        return f"device {event['device']}"
    return f"unknown ({event.get('client_ip') or 'no address'})"


def block_row(event: dict[str, Any], catalog: Catalog, tz: dt.tzinfo) -> BlockRow:
    user = event.get("user")
    return BlockRow(
        reference=str(event.get("id")),
        when=_local(str(event.get("ts", "")), tz),
        who=person_of(event),
        service=service_name(catalog, event.get("service")) or "-",
        host=str(event.get("host") or ""),
        grantable=bool(event.get("service"))
        and (bool(user and user != "anonymous") or bool(event.get("device"))),
    )


def _blocks(audit_path: Path, since: str | None) -> Iterator[dict[str, Any]]:
    segments = log_segments(audit_path)
    for name in BLOCK_EVENTS:
        yield from search(segments, Query(event=name, since=since))


def latest_blocks(
    audit_path: Path,
    catalog: Catalog,
    tz: dt.tzinfo,
    when: dt.datetime,
    *,
    reference: str = "",
    person: str = "",
    service: str = "",
    days: int = 30,
    limit: int = 50,
) -> list[BlockRow]:
    """Blocks, newest first: by reference (any age), or of the last `days`, filtered."""
    try:
        if reference:
            ref = reference.strip().upper()
            ref = ref if ref.startswith("SG-") else f"SG-{ref}"
            event = find_block(audit_path, ref)
            found = [event] if event and event.get("event") in BLOCK_EVENTS else []
        else:
            since = ts_stamp(when - dt.timedelta(days=days))
            found = list(_blocks(audit_path, since))
    except (AuditError, SearchError, OSError):
        return []
    person_l, service_l = person.strip().lower(), service.strip().lower()
    rows = []
    for event in sorted(found, key=lambda e: str(e.get("ts", "")), reverse=True):
        row = block_row(event, catalog, tz)
        if person_l and person_l not in row.who.lower():
            continue
        if service_l and service_l not in f"{row.service} {event.get('service')}".lower():
            continue
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def blocks_by_service(
    audit_path: Path, catalog: Catalog, since: dt.datetime
) -> list[tuple[str, int]]:
    """How many blocks each service had since `since`, most first (for the digest)."""
    counts: dict[str, int] = {}
    try:
        for event in _blocks(audit_path, ts_stamp(since)):
            name = service_name(catalog, event.get("service")) or str(event.get("host"))
            counts[name] = counts.get(name, 0) + int(event.get("count") or 1)
    except (AuditError, OSError):
        return []
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
