"""The duplicate warning: two entries in force at once for the same who and what.

Expired and revoked entries are history (kept for the auditor), so they never make a duplicate;
an entry not yet valid does only where its period overlaps the other's.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from socialguard.core.authorisations import parse_authorisations
from socialguard.core.catalog import parse_catalog
from socialguard.core.settings import parse_settings
from socialguard.files.yamlfile import parse_yaml

LONDON = zoneinfo.ZoneInfo("Europe/London")
CATALOG = parse_catalog(
    parse_yaml(
        "services:\n  facebook: {name: Facebook, category: social-networking, "
        "domains: [facebook.com]}\n",
        "catalog.yaml",
    ),
    "catalog.yaml",
)
SETTINGS = parse_settings(None, "<defaults>")
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)


def entry(ident: str, approved_on: str, expires: str, extra: str = "") -> str:
    return (
        f"  - id: {ident}\n"
        "    who: {user: j.smith}\n"
        "    services: [facebook]\n"
        "    purpose: Maintain the practice Facebook page\n"
        "    approved_by: practice.manager\n"
        f"    approved_on: {approved_on}\n"
        f"    expires: {expires}\n"
        f"{extra}"
    )


ACTIVE = entry("EX-2026-010", "2026-11-01", "2027-10-31")
EXPIRED = entry("EX-2025-001", "2025-01-01", "2025-12-31")
EXPIRED_TODAY = entry("EX-2025-002", "2025-12-01", "2026-11-24T09:59:59+00:00")
REVOKED = entry("EX-2026-001", "2026-06-01", "2027-05-31", "    revoked: {on: 2026-07-01, "
                "by: practice.manager, reason: Page handed over}\n")  # fmt: skip
ALSO_ACTIVE = entry("EX-2026-011", "2026-11-20", "2027-06-30")
# Prepared in advance: starts when ACTIVE ends, or overlapping its last months.
FOLLOWS = entry("EX-2026-012", "2026-11-24", "2027-11-23", "    starts: 2027-11-01\n")
OVERLAPS = entry("EX-2026-013", "2026-11-24", "2027-11-23", "    starts: 2027-10-01\n")


def warnings(*entries: str, now: dt.datetime | None = NOW) -> list[str]:
    text = "approvers: [practice.manager]\nexemptions:\n" + "".join(entries)
    data = parse_yaml(text, "a.yaml")
    return list(parse_authorisations(data, "a.yaml", CATALOG, SETTINGS, now=now).warnings)


@pytest.mark.parametrize(
    "entries",
    [
        (EXPIRED, ACTIVE),
        (ACTIVE, EXPIRED),
        (REVOKED, ACTIVE),
        (EXPIRED, REVOKED, ACTIVE),
        (EXPIRED_TODAY, ACTIVE),
        (ACTIVE, FOLLOWS),
        (EXPIRED, REVOKED),
    ],
)
def test_history_and_successors_are_not_duplicates(entries: tuple[str, ...]) -> None:
    """A renewal written as a new entry after the old one expired is not a mistake."""
    assert warnings(*entries) == []


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ((ACTIVE, ALSO_ACTIVE), "EX-2026-011 and EX-2026-010"),
        ((EXPIRED, ACTIVE, ALSO_ACTIVE), "EX-2026-011 and EX-2026-010"),
        ((ACTIVE, OVERLAPS), "EX-2026-013 and EX-2026-010"),
    ],
)
def test_two_entries_in_force_at_once_are_a_warning(
    entries: tuple[str, ...], expected: str
) -> None:
    assert warnings(*entries) == [f"{expected} both cover facebook for user j.smith"]


def test_the_boundary_is_the_moment_of_expiry() -> None:
    """One second before EX-2025-002 expires the two overlap; at the instant, no longer."""
    ends = dt.datetime(2026, 11, 24, 9, 59, 59, tzinfo=dt.UTC)
    before = warnings(EXPIRED_TODAY, ACTIVE, now=ends - dt.timedelta(seconds=1))
    assert before == ["EX-2026-010 and EX-2025-002 both cover facebook for user j.smith"]
    assert warnings(EXPIRED_TODAY, ACTIVE, now=ends) == []


def test_without_now_the_current_time_is_used() -> None:
    """The proxy and `validate` pass no clock: an entry that ended in 2025 never warns."""
    assert warnings(EXPIRED, entry("EX-2025-003", "2025-02-01", "2025-06-30"), now=None) == []
