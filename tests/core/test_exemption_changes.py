"""Tests for socialguard.core.exemption_changes: the audit events a change to the list becomes."""

from __future__ import annotations

import pytest

from socialguard.core.authorisations import EMPTY, Authorisations, parse_authorisations
from socialguard.core.catalog import parse_catalog
from socialguard.core.exemption_changes import exemption_changes
from socialguard.core.settings import parse_settings
from socialguard.files.yamlfile import parse_yaml

CATALOG = parse_catalog(
    parse_yaml(
        """\
services:
  facebook: {name: Facebook, category: social-networking, domains: [facebook.com]}
  linkedin: {name: LinkedIn, category: social-networking, domains: [linkedin.com]}
""",
        "catalog.yaml",
    ),
    "catalog.yaml",
)
SETTINGS = parse_settings(None, "<defaults>")

BASE = {
    "id": "EX-2026-001",
    "who": "{user: j.smith}",
    "services": "[facebook]",
    "purpose": "Maintain the practice Facebook page",
    "approved_by": "practice.manager",
    "approved_on": "2026-11-01",
    "expires": "2027-10-31",
}


def entry(**changes: str) -> str:
    fields = {**BASE, **changes}
    lines = [f"  - id: {fields.pop('id')}"]
    lines += [f"    {key}: {value}" for key, value in fields.items() if value]
    return "\n".join(lines) + "\n"


def listing(*entries: str) -> Authorisations:
    text = "approvers: [practice.manager, deputy.manager]\nexemptions:\n" + "".join(entries)
    if not entries:
        text += "  []\n"
    return parse_authorisations(parse_yaml(text, "a.yaml"), "a.yaml", CATALOG, SETTINGS)


def events(old: Authorisations, new: Authorisations) -> list[str]:
    return [change.event for change in exemption_changes(old, new)]


REVOKED = "{on: 2026-12-01, by: practice.manager, reason: Page handed over}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ((), (entry(),), ["exemption.granted"]),
        ((entry(),), (entry(),), []),
        ((entry(),), (entry(revoked=REVOKED),), ["exemption.revoked"]),
        (
            (entry(),),
            (entry(expires="2027-11-30", approved_on="2026-12-01", approved_by="deputy.manager"),),
            ["exemption.renewed"],
        ),
        (
            (entry(),),
            (entry(purpose="Reply to patient reviews on the page"),),
            ["exemption.changed"],
        ),
        ((entry(),), (entry(services="[linkedin]"),), ["exemption.changed"]),
        ((entry(),), (entry(who="{user: k.jones}"),), ["exemption.changed"]),
        # An earlier end is not a renewal.
        ((entry(),), (entry(expires="2027-01-31"),), ["exemption.changed"]),
        # Un-revoking by hand is a change the auditor must see.
        ((entry(revoked=REVOKED),), (entry(),), ["exemption.changed"]),
        ((entry(),), (), ["exemption.removed"]),
        ((), (entry(revoked=REVOKED),), ["exemption.granted", "exemption.revoked"]),
        (
            (entry(),),
            (entry(), entry(id="EX-2026-002", who="{user: k.jones}")),
            ["exemption.granted"],
        ),
        # Reordering entries, or moving one in the file, changes nothing.
        (
            (entry(), entry(id="EX-2026-002", who="{user: k.jones}")),
            (entry(id="EX-2026-002", who="{user: k.jones}"), entry()),
            [],
        ),
    ],
)
def test_events_for_each_kind_of_change(
    old: tuple[str, ...], new: tuple[str, ...], expected: list[str]
) -> None:
    """Each difference between two lists becomes the event an auditor would look for."""
    assert events(listing(*old), listing(*new)) == expected


def test_granted_event_names_who_what_approver_purpose_and_expiry() -> None:
    """A grant is recorded with everything needed to answer 'who authorised what, and when'."""
    (change,) = exemption_changes(EMPTY, listing(entry()))
    assert change.fields == {
        "exemption_id": "EX-2026-001",
        "who": "user j.smith",
        "user": "j.smith",
        "device": None,
        "group": None,
        "what": ["facebook"],
        "services": ["facebook"],
        "categories": [],
        "domains": [],
        "approved_by": "practice.manager",
        "approved_on": "2026-11-01",
        "purpose": "Maintain the practice Facebook page",
        "starts": "2026-11-01T00:00:00+00:00",
        "expires": "2027-11-01T00:00:00+00:00",
        "expires_label": "31 October 2027",
    }
    assert "id" not in change.fields  # the audit log gives each event its own id


def test_revoked_event_says_by_whom_and_why() -> None:
    """A revocation carries its date, who withdrew it and the reason."""
    (change,) = exemption_changes(listing(entry()), listing(entry(revoked=REVOKED)))
    assert change.fields["revoked_on"] == "2026-12-01"
    assert change.fields["revoked_by"] == "practice.manager"
    assert change.fields["revoked_reason"] == "Page handed over"


def test_renewed_event_keeps_the_previous_expiry_and_approval() -> None:
    """A renewal shows what it replaced."""
    old = listing(entry())
    new = listing(
        entry(expires="2027-11-30", approved_on="2026-12-01", approved_by="deputy.manager")
    )
    (change,) = exemption_changes(old, new)
    assert change.fields["approved_by"] == "deputy.manager"
    assert change.fields["previous_approved_by"] == "practice.manager"
    assert change.fields["previous_expires"] == "2027-11-01T00:00:00+00:00"
    assert change.fields["expires_label"] == "30 November 2027"


def test_changed_event_lists_the_fields_and_their_old_values() -> None:
    """A change names which fields changed and what they were before."""
    old = listing(entry())
    new = listing(entry(purpose="Reply to patient reviews on the page", services="[linkedin]"))
    (change,) = exemption_changes(old, new)
    assert change.fields["changes"] == ["what", "purpose"]
    assert change.fields["previous"] == {
        "what": ["facebook"],
        "purpose": "Maintain the practice Facebook page",
    }
    assert change.fields["what"] == ["linkedin"]


def test_group_and_device_are_named() -> None:
    """Exemptions for a group or a device say so, and set no user."""
    settings = parse_settings(
        parse_yaml("groups: {reception: [a.b]}\ndevices: {pc-1: 10.0.0.5}\n", "p.yaml"), "p.yaml"
    )
    text = (
        "approvers: [practice.manager]\nexemptions:\n"
        + entry(who="{group: reception}")
        + entry(id="EX-2026-002", who="{device: pc-1}")
    )
    new = parse_authorisations(parse_yaml(text, "a.yaml"), "a.yaml", CATALOG, settings)
    first, second = exemption_changes(EMPTY, new)
    assert (first.fields["who"], first.fields["group"], first.fields["user"]) == (
        "group reception",
        "reception",
        None,
    )
    assert (second.fields["who"], second.fields["device"]) == ("device pc-1", "pc-1")


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        # The annual re-approval of the same end date, as `exemptions renew` writes it.
        (entry(approved_on="2026-12-01", approved_by="deputy.manager"), ["exemption.renewed"]),
        (entry(approved_on="2026-12-01"), ["exemption.renewed"]),
        # The approver swapped by hand, with no fresh approval: a change.
        (entry(approved_by="deputy.manager"), ["exemption.changed"]),
        # An earlier end with a fresh approval is still not a renewal (renew refuses it).
        (entry(expires="2027-06-30", approved_on="2026-12-01"), ["exemption.changed"]),
    ],
)
def test_a_fresh_approval_of_the_same_end_is_a_renewal(new: str, expected: list[str]) -> None:
    assert events(listing(entry()), listing(new)) == expected


def test_the_granted_event_names_who_recorded_it_beside_the_approver() -> None:
    """A grant written by `socialguard exemptions grant` carries who ran the command."""
    granted = entry(recorded_by="{system_user: root, sudo_user: j.admin}")
    (change,) = exemption_changes(EMPTY, listing(granted))
    assert change.fields["approved_by"] == "practice.manager"
    assert change.fields["recorded_by"] == "root (sudo from j.admin)"
