"""The block page's rest-break line: only for a zone with breaks, naming the next one."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from socialguard.core.breaks import next_break_label
from tests.conftest import make_policy

LONDON = zoneinfo.ZoneInfo("Europe/London")
SETTINGS = make_policy().settings  # byod: mon-fri 12:30-13:30; staff: no breaks


@pytest.mark.parametrize(
    ("local", "label"),
    [
        (dt.datetime(2026, 11, 24, 10, 0, tzinfo=LONDON), "today 12:30\u201313:30"),  # Tuesday
        (dt.datetime(2026, 11, 24, 12, 45, tzinfo=LONDON), "now, until 13:30"),
        (dt.datetime(2026, 11, 24, 13, 30, tzinfo=LONDON), "tomorrow 12:30\u201313:30"),
        (dt.datetime(2026, 11, 27, 14, 0, tzinfo=LONDON), "Monday 12:30\u201313:30"),  # Friday
        (dt.datetime(2026, 7, 1, 11, 0, tzinfo=dt.UTC), "today 12:30\u201313:30"),  # 12:00 BST
    ],
)
def test_the_next_break_of_a_zone_with_breaks(local: dt.datetime, label: str) -> None:
    assert next_break_label(SETTINGS, "byod", local) == label


@pytest.mark.parametrize("zone", ["staff", "practice", "no-such-zone"])
def test_no_break_where_the_zone_has_none(zone: str) -> None:
    """The policy's rest-break allowance is not promised where it does not apply."""
    assert next_break_label(SETTINGS, zone, dt.datetime(2026, 11, 24, 10, tzinfo=LONDON)) is None
