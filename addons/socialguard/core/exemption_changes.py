"""What changed in the authorisation list between two policies, as audit events.

The audit log must show who authorised what and when, not only what was used; a hand edit
counts as much as a CLI one, so the events come from comparing the old and new lists that the
proxy takes, not from the command that wrote the file. Pure: no clock, no I/O, no mitmproxy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from socialguard.core.authorisations import Authorisations, Exemption, Revocation
from socialguard.core.events import Event

GRANTED = Event.EXEMPTION_GRANTED
RENEWED = Event.EXEMPTION_RENEWED
REVOKED = Event.EXEMPTION_REVOKED
CHANGED = Event.EXEMPTION_CHANGED
REMOVED = Event.EXEMPTION_REMOVED

# What `changed` compares, by the name an auditor reads in the event's `changes`.
_COMPARED = (
    "who",
    "what",
    "purpose",
    "approved_by",
    "approved_on",
    "starts",
    "expires",
    "revoked",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExemptionChange:
    """One audit event: its name and its fields (the audit log adds ts, id and prev)."""

    event: str
    fields: dict[str, Any]


def describe(exemption: Exemption) -> dict[str, Any]:
    """The fields every exemption.* event carries: id, who, what, approver, purpose, expiry."""
    fields: dict[str, Any] = {
        "exemption_id": exemption.id,
        "who": f"{exemption.who_kind} {exemption.who}",
        "user": exemption.who if exemption.who_kind == "user" else None,
        "device": exemption.who if exemption.who_kind == "device" else None,
        "group": exemption.who if exemption.who_kind == "group" else None,
        "what": sorted(exemption.services | exemption.categories | exemption.domains),
        "services": sorted(exemption.services),
        "categories": sorted(exemption.categories),
        "domains": sorted(exemption.domains),
        "approved_by": exemption.approved_by,
        "approved_on": exemption.approved_on.isoformat(),
        "purpose": exemption.purpose,
        "starts": exemption.starts.isoformat(),
        "expires": exemption.expires.isoformat(),
        "expires_label": exemption.expires_label,
    }
    if exemption.recorded_by:
        fields["recorded_by"] = exemption.recorded_by
    if exemption.revoked is not None:
        fields["revoked_on"] = exemption.revoked.on.isoformat()
        fields["revoked_by"] = exemption.revoked.by
        fields["revoked_reason"] = exemption.revoked.reason
    return fields


def _comparable(exemption: Exemption) -> dict[str, Any]:
    return {
        "who": (exemption.who_kind, exemption.who),
        "what": (exemption.services, exemption.categories, exemption.domains),
        "purpose": exemption.purpose,
        "approved_by": exemption.approved_by,
        "approved_on": exemption.approved_on,
        "starts": exemption.starts,
        "expires": exemption.expires,
        "revoked": exemption.revoked,
    }


def _change(old: Exemption, new: Exemption) -> list[ExemptionChange]:
    before, after = _comparable(old), _comparable(new)
    differ = [key for key in _COMPARED if before[key] != after[key]]
    if not differ:
        return []
    fields = describe(new)
    changes: list[ExemptionChange] = []
    if old.revoked is None and new.revoked is not None:
        changes.append(ExemptionChange(event=REVOKED, fields=fields))
        differ.remove("revoked")
    # A renewal is a later end, or a fresh approval of the same end, with nothing else about
    # it changed. An earlier end is a change (`exemptions renew` refuses to shorten one).
    renewal = {"approved_by", "approved_on", "expires", "starts"}
    later = new.expires > old.expires or (
        new.expires == old.expires and new.approved_on > old.approved_on
    )
    renewed = new.revoked is None and later and set(differ) <= renewal and bool(differ)
    if renewed:
        changes.append(
            ExemptionChange(
                event=RENEWED,
                fields={
                    **fields,
                    "previous_expires": old.expires.isoformat(),
                    "previous_approved_by": old.approved_by,
                    "previous_approved_on": old.approved_on.isoformat(),
                },
            )
        )
    elif differ:
        changes.append(
            ExemptionChange(
                event=CHANGED,
                fields={
                    **fields,
                    "changes": differ,
                    "previous": {
                        key: value
                        for key, value in describe(old).items()
                        if key in differ or (key.startswith("revoked_") and "revoked" in differ)
                    },
                },
            )
        )
    return changes


def exemption_changes(old: Authorisations, new: Authorisations) -> list[ExemptionChange]:
    """Events for every entry granted, renewed, revoked, changed or removed, in file order.

    An entry is the same entry when its id is the same; a renewal is a later expiry (and a new
    approval) with who, what and purpose unchanged. Removing an entry outright (rather than
    revoking it) is reported too, since it erases history the auditor may need.
    """
    before = {e.id: e for e in old.exemptions}
    after = {e.id: e for e in new.exemptions}
    changes: list[ExemptionChange] = []
    for exemption in new.exemptions:
        previous = before.get(exemption.id)
        if previous is None:
            changes.append(ExemptionChange(event=GRANTED, fields=describe(exemption)))
            if exemption.revoked is not None:
                changes.append(ExemptionChange(event=REVOKED, fields=describe(exemption)))
        else:
            changes.extend(_change(previous, exemption))
    changes.extend(
        ExemptionChange(event=REMOVED, fields=describe(e))
        for e in old.exemptions
        if e.id not in after
    )
    return changes


def snapshot(authorisations: Authorisations) -> dict[str, dict[str, Any]]:
    """The list as `policy.loaded` carries it: id → what `exemption_changes` compares.

    At start-up the proxy compares the list it loads with the last one it recorded, so an edit
    made while it was stopped is in the audit log as well as one made while it ran.
    """
    return {
        e.id: {
            "who_kind": e.who_kind,
            "who": e.who,
            "services": sorted(e.services),
            "categories": sorted(e.categories),
            "domains": sorted(e.domains),
            "purpose": e.purpose,
            "approved_by": e.approved_by,
            "approved_on": e.approved_on.isoformat(),
            "starts": e.starts.isoformat(),
            "expires": e.expires.isoformat(),
            "expires_label": e.expires_label,
            "recorded_by": e.recorded_by,
            "revoked": (
                {"on": e.revoked.on.isoformat(), "by": e.revoked.by, "reason": e.revoked.reason}
                if e.revoked is not None
                else None
            ),
        }
        for e in authorisations.exemptions
    }


def _names(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("a list of names")
    return frozenset(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _instant(value: Any) -> dt.datetime:
    when = dt.datetime.fromisoformat(_text(value))
    if when.tzinfo is None:
        raise ValueError("an instant with its offset")
    return when


def from_snapshot(recorded: Any) -> Authorisations | None:
    """The list a `snapshot` describes, or None when it is not one (damaged, or too old)."""
    if not isinstance(recorded, dict):
        return None
    exemptions = []
    try:
        for ident, fields in recorded.items():
            revoked = fields["revoked"]
            exemptions.append(
                Exemption(
                    id=_text(ident),
                    who_kind=_text(fields["who_kind"]),
                    who=_text(fields["who"]),
                    services=_names(fields["services"]),
                    categories=_names(fields["categories"]),
                    domains=_names(fields["domains"]),
                    purpose=_text(fields["purpose"]),
                    approved_by=_text(fields["approved_by"]),
                    approved_on=dt.date.fromisoformat(_text(fields["approved_on"])),
                    starts=_instant(fields["starts"]),
                    expires=_instant(fields["expires"]),
                    expires_label=_text(fields["expires_label"]),
                    recorded_by=_text(fields.get("recorded_by") or ""),
                    revoked=(
                        None
                        if revoked is None
                        else Revocation(
                            on=dt.date.fromisoformat(_text(revoked["on"])),
                            by=_text(revoked["by"]),
                            reason=_text(revoked["reason"]),
                        )
                    ),
                    line=0,
                )
            )
    except (KeyError, TypeError, ValueError):
        return None
    return Authorisations(approvers=frozenset(), exemptions=tuple(exemptions))
