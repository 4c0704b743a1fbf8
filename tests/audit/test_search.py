"""Tests for audit_query: filters, time bounds in the practice's zone, and files skipped by date."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import zoneinfo
from collections.abc import Callable
from pathlib import Path

import pytest

from socialguard.audit.files import AuditError, log_segments
from socialguard.audit.search import Query, month_bounds, parse_bound, search

LONDON = zoneinfo.ZoneInfo("Europe/London")


def line(ts: str, event: str, user: str | None, service: str | None) -> bytes:
    fields = {"event": event, "user": user, "service": service, "ts": ts}
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Two gzipped days and an active file, written as the writer would lay them out."""
    day1 = [
        line("2026-11-01T09:00:00.000Z", "access.blocked", "j.smith", "facebook"),
        line("2026-11-01T10:00:00.000Z", "access.exception", "k.jones", "facebook"),
    ]
    day2 = [
        line("2026-11-02T09:00:00.000Z", "access.blocked", "j.smith", "tiktok"),
        line("2026-11-02T23:30:00.000Z", "access.blocked", "Zoë", "facebook"),
    ]
    active = [
        line("2026-11-03T08:00:00.000Z", "policy.loaded", None, None),
        line("2026-11-03T08:01:00.000Z", "access.blocked", "j.smith", "facebook"),
        b'{"torn',
    ]
    (tmp_path / "audit.2026-11-01.jsonl.gz").write_bytes(gzip.compress(b"\n".join(day1) + b"\n"))
    (tmp_path / "audit.2026-11-02.jsonl.gz").write_bytes(gzip.compress(b"\n".join(day2) + b"\n"))
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"\n".join(active) + b"\n")
    return path


def found(log: Path, **query: str) -> list[tuple[str, str | None]]:
    return [(e["ts"][:13], e.get("user")) for e in search(log_segments(log), Query(**query))]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"user": "j.smith"},
            [
                ("2026-11-01T09", "j.smith"),
                ("2026-11-02T09", "j.smith"),
                ("2026-11-03T08", "j.smith"),
            ],
        ),
        ({"service": "tiktok"}, [("2026-11-02T09", "j.smith")]),
        ({"event": "access.exception"}, [("2026-11-01T10", "k.jones")]),
        ({"event": "policy.*"}, [("2026-11-03T08", None)]),
        ({"user": "Zoë"}, [("2026-11-02T23", "Zoë")]),
        (
            {"user": "j.smith", "service": "facebook"},
            [("2026-11-01T09", "j.smith"), ("2026-11-03T08", "j.smith")],
        ),
        ({"event": "access"}, []),
    ],
)
def test_filters_match_exact_values(
    log: Path, query: dict[str, str], expected: list[tuple[str, str | None]]
) -> None:
    """Every filter given must match exactly; `*` ends an event prefix; torn lines are skipped."""
    assert found(log, **query) == expected


def test_time_range_uses_the_practice_day(log: Path) -> None:
    """--from/--to dates are local days: 23:30 UTC on 2 November is still the 2nd in GMT."""
    query = Query(
        since=parse_bound("2026-11-02", LONDON, end=False, option="--from"),
        until=parse_bound("2026-11-02", LONDON, end=True, option="--to"),
    )
    events = list(search(log_segments(log), query))
    assert [e["ts"] for e in events] == ["2026-11-02T09:00:00.000Z", "2026-11-02T23:30:00.000Z"]


def test_files_outside_the_range_are_not_opened(log: Path) -> None:
    """A search from 3 November never reads the 1 November file (here made unreadable)."""
    (log.parent / "audit.2026-11-01.jsonl.gz").write_bytes(b"not gzip at all")
    since = parse_bound("2026-11-03", LONDON, end=False, option="--from")
    events = list(search(log_segments(log), Query(since=since)))
    assert len(events) == 2


def test_summer_time_bounds() -> None:
    """A local date in summer starts at 23:00 UTC the day before."""
    assert parse_bound("2026-07-01", LONDON, end=False, option="--from") == (
        "2026-06-30T23:00:00.000Z"
    )
    assert parse_bound("2026-07-01T12:30", LONDON, end=True, option="--to") == (
        "2026-07-01T11:30:00.000Z"
    )


@pytest.mark.parametrize(
    ("text", "ts"),
    [
        ("01/11/2026", "2026-11-01T00:00:00.000Z"),
        ("1 November 2026", "2026-11-01T00:00:00.000Z"),
        ("1/7/2026 12:30", "2026-07-01T11:30:00.000Z"),
    ],
)
def test_dates_as_people_in_the_uk_write_them(text: str, ts: str) -> None:
    assert parse_bound(text, LONDON, end=False, option="--from") == ts


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "11/31/2026"])
def test_bad_dates_say_how_to_write_them(text: str) -> None:
    """A date that cannot be read names the option and an example."""
    with pytest.raises(AuditError, match=r"--from .*2026-11-24"):
        parse_bound(text, LONDON, end=False, option="--from")


def test_month_bounds() -> None:
    """A month is its local first day to the next month's, as UTC bounds."""
    since, until, first, last = month_bounds("2026-10", LONDON)
    assert (since, until) == ("2026-09-30T23:00:00.000Z", "2026-11-01T00:00:00.000Z")
    assert (first, last) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    with pytest.raises(AuditError, match="YYYY-MM"):
        month_bounds("October", LONDON)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: month_bounds("9999-12", LONDON), "--month '9999-12': out of range"),
        (
            lambda: parse_bound("9999-12-31", LONDON, end=True, option="--to"),
            "--to '9999-12-31': out of range",
        ),
        (
            lambda: parse_bound("9999-12-31T23:00-05:00", LONDON, end=True, option="--to"),
            "out of range",
        ),
    ],
)
def test_dates_past_the_calendar_are_a_message(call: Callable[[], object], words: str) -> None:
    """A month or day whose end is past year 9999 is a clear AuditError, not OverflowError."""
    with pytest.raises(AuditError, match=re.escape(words)):
        call()
