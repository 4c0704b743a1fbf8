"""Tests for audit_report: the monthly figures match a log the test wrote itself."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import zoneinfo
from pathlib import Path
from types import SimpleNamespace

import pytest

from socialguard.audit.files import log_segments
from socialguard.audit.log import AuditLog
from socialguard.audit.report import (
    Report,
    build_period_report,
    build_report,
    render_csv,
    render_html,
    render_text,
)
from socialguard.audit.search import Query, search

LONDON = zoneinfo.ZoneInfo("Europe/London")


def at(day: int, hour: int = 10, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


# (when, event, fields): what the test writes, and so what the report must count.
WRITTEN: list[tuple[dt.datetime, str, dict[str, object]]] = [
    (at(31, 12, 10), "access.blocked", {"user": "j.smith", "service": "facebook"}),  # October
    (at(1), "access.blocked", {"user": "j.smith", "service": "facebook"}),
    (at(1), "access.blocked", {"user": "k.jones", "service": "tiktok"}),
    (at(3), "access.blocked", {"user": None, "client_ip": "10.0.0.9", "service": "facebook"}),
    (
        at(3),
        "access.exception",
        {
            "user": "m.patel",
            "service": "facebook",
            "exemption_id": "EX-1",
            "purpose": "Practice page",
        },
    ),
    (
        at(4),
        "access.exception",
        {
            "user": "m.patel",
            "service": "facebook",
            "exemption_id": "EX-1",
            "purpose": "Practice page",
        },
    ),
    (
        at(4),
        "access.exception",
        {
            "device": "reception-pc-1",
            "service": "x",
            "exemption_id": "EX-2",
            "purpose": "Flu clinic posts",
        },
    ),
    (at(5), "access.break_window", {"user": "k.jones", "service": "instagram"}),
    (at(6), "signup.blocked", {"user": "k.jones", "service": "amazon"}),
    (at(7), "policy.loaded", {}),
    (at(8), "policy.rejected", {}),
    (
        at(9),
        "exemption.granted",
        {
            "exemption_id": "EX-3",
            "who": "user a.brown",
            "what": ["linkedin"],
            "purpose": "Recruitment",
            "expires_label": "8 November 2027",
        },
    ),
    (
        at(10),
        "exemption.revoked",
        {
            "exemption_id": "EX-2",
            "who": "device reception-pc-1",
            "what": ["x"],
            "purpose": "Flu clinic posts",
        },
    ),
    (at(30, 23), "access.blocked", {"user": "j.smith", "service": "facebook"}),  # 30th, GMT
    (at(1, 10, 12), "access.blocked", {"user": "j.smith", "service": "facebook"}),  # December
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    now = [at(1)]
    numbers = itertools.count(1)
    audit = AuditLog(path, clock=lambda: now[0], new_id=lambda: f"SG-R{next(numbers):07d}")
    for when, event, fields in WRITTEN:
        now[0] = when
        audit.record(event, fields)
    audit.close()
    return path


def expiring(ident: str, expires: dt.datetime) -> SimpleNamespace:
    return SimpleNamespace(
        id=ident,
        who_kind="user",
        who="m.patel",
        what="facebook",
        purpose="Practice page",
        expires=expires,
        expires_label=f"{expires:%d %B %Y}",
        revoked=None,
    )


def november(log: Path, exemptions: tuple[SimpleNamespace, ...] = ()) -> Report:
    events = search(log_segments(log), Query())
    return build_report(events, "2026-11", LONDON, exemptions)


def test_figures_match_the_log(log: Path) -> None:
    """Totals, exception uses, blocks by service and by day are what the test wrote."""
    report = november(log)
    assert (report.blocks, report.exceptions, report.breaks) == (4, 3, 1)
    assert (report.signup_blocks, report.policy_loads) == (1, 1)
    assert report.policy_rejections == 1
    uses = [(u.person, u.service, u.exemption_id, u.count) for u in report.exception_uses]
    assert uses == [("m.patel", "facebook", "EX-1", 2), ("reception-pc-1", "x", "EX-2", 1)]
    assert report.blocks_by_service == [("facebook", 3), ("tiktok", 1)]
    assert report.blocks_by_day == {
        dt.date(2026, 11, 1): 2,
        dt.date(2026, 11, 3): 1,
        dt.date(2026, 11, 30): 1,
    }
    assert report.exceptions_by_day == {dt.date(2026, 11, 3): 1, dt.date(2026, 11, 4): 2}
    changes = [(n.change, n.exemption_id) for n in report.exemptions]
    assert changes == [("granted", "EX-3"), ("revoked", "EX-2")]


def test_expiring_exemptions_are_listed(log: Path) -> None:
    """Exemptions that end in the month or within 30 days after it are listed as expiring."""
    soon = expiring("EX-1", dt.datetime(2026, 12, 20, tzinfo=LONDON))
    later = expiring("EX-9", dt.datetime(2027, 3, 1, tzinfo=LONDON))
    report = november(log, (soon, later))
    notes = [(n.change, n.exemption_id) for n in report.exemptions]
    assert notes[-1] == ("expiring", "EX-1")
    assert "EX-9" not in render_text(report)


def test_text_form(log: Path) -> None:
    """The text form states the totals and names people, services and purposes."""
    text = render_text(november(log))
    assert "Blocked attempts:            4" in text
    assert "m.patel  facebook  2  [EX-1] Practice page" in text
    assert "anonymous" not in text  # the anonymous block is counted by service, not named
    assert "granted  EX-3" in text


def test_csv_form(log: Path) -> None:
    """The CSV has one header and rows a spreadsheet can total."""
    rows = list(csv.DictReader(io.StringIO(render_csv(november(log)))))
    totals = {r["service"]: int(r["count"]) for r in rows if r["section"] == "total"}
    assert totals["blocks"] == 4
    assert totals["exceptions"] == 3
    by_day = [r for r in rows if r["section"] == "blocks_by_day"]
    assert len(by_day) == 30
    assert sum(int(r["count"]) for r in by_day) == 4
    exception = next(r for r in rows if r["section"] == "exception")
    assert (exception["person"], exception["purpose"], exception["count"]) == (
        "m.patel",
        "Practice page",
        "2",
    )


def test_html_form_is_self_contained_with_a_chart(log: Path) -> None:
    """The HTML names the month, holds an inline SVG bar per day and series, fetches nothing."""
    html = render_html(november(log), "Riverside Surgery")
    assert "November 2026" in html
    assert "Riverside Surgery" in html
    assert html.count("<svg") == 1
    assert html.count("<rect") == 60  # 30 days x (blocks, exceptions)
    assert "blocked 01 Nov: 2" in html
    assert "exemption 04 Nov: 2" in html
    assert not re.search(r"(src|href)=|<script|@import|url\(", html)


def test_html_escapes_what_the_log_says(tmp_path: Path) -> None:
    """A purpose with markup in it is shown as text, never run."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, clock=lambda: at(2))
    audit.record(
        "access.exception",
        {"user": "u", "service": "x", "exemption_id": "E", "purpose": "<script>alert(1)</script>"},
    )
    audit.close()
    html = render_html(build_report(search(log_segments(path), Query()), "2026-11", LONDON))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_exemptions_changed_and_removed_are_in_the_report(tmp_path: Path) -> None:
    """exemption.changed (with what changed) and exemption.removed events are listed with the
    other changes, in text, CSV and HTML."""
    path = tmp_path / "audit.jsonl"
    now = [at(12)]
    audit = AuditLog(path, clock=lambda: now[0])
    audit.record(
        "exemption.changed",
        {
            "exemption_id": "EX-4",
            "who": "user a.brown",
            "what": ["linkedin"],
            "purpose": "Recruitment and adverts",
            "changes": ["purpose", "what"],
            "expires_label": "8 November 2027",
        },
    )
    now[0] = at(13)
    audit.record(
        "exemption.removed",
        {"exemption_id": "EX-5", "who": "user c.dunn", "what": ["x"], "purpose": "Old"},
    )
    audit.close()
    report = november(path)
    notes = [(n.change, n.exemption_id, n.changes) for n in report.exemptions]
    assert notes == [("changed", "EX-4", "purpose, what"), ("removed", "EX-5", "")]
    text = render_text(report)
    assert "changed  EX-4 (purpose, what)  user a.brown  linkedin  on 2026-11-12" in text
    assert "removed  EX-5  user c.dunn  x  on 2026-11-13" in text
    assert "granted, renewed, changed, revoked, removed and expiring" in text
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert [r[0] for r in rows if r[0].startswith("exemption_")] == [
        "exemption_changed",
        "exemption_removed",
    ]
    html = render_html(report)
    assert "<td>changed (purpose, what)</td><td>EX-4</td>" in html
    assert "<td>removed</td><td>EX-5</td>" in html


def test_services_by_name_and_days_the_log_does_not_cover(log: Path) -> None:
    """ "Facebook", not facebook; days before the log's first event and days still to come are
    not covered, and say so."""
    events = search(log_segments(log), Query())
    report = build_report(
        events, "2026-11", LONDON, names={"facebook": "Facebook", "tiktok": "TikTok"},
        log_start=dt.date(2026, 11, 2), today=dt.date(2026, 11, 20),
    )  # fmt: skip
    assert report.blocks_by_service[0] == ("Facebook", 3)
    assert report.exception_uses[0].service == "Facebook"
    assert (report.covered_from, report.covered_to) == (dt.date(2026, 11, 2), dt.date(2026, 11, 20))
    assert not report.covered(dt.date(2026, 11, 1))
    assert report.covered(dt.date(2026, 11, 2))
    assert not report.covered(dt.date(2026, 11, 21))
    text = render_text(report)
    assert "Not covered: the days before 2 November 2026" in text
    assert "Not covered: the days after 20 November 2026, which are still to come." in text
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert ["not_covered", "2026-11-21", "", "", "", "", ""] in rows
    assert not any(r[0] == "blocks_by_day" and r[1] == "2026-11-21" for r in rows)


def test_a_period_of_any_length(log: Path) -> None:
    events = list(search(log_segments(log), Query()))
    report = build_period_report(events, dt.date(2026, 11, 1), dt.date(2026, 11, 3), LONDON)
    assert report.blocks == 3
    assert report.title == "1 November 2026 to 3 November 2026"
    assert len(report.days) == 3


def test_a_counted_event_counts_each_repeat() -> None:
    """Repeats recorded as one event with a count (the gate's burst rule) count as blocks."""
    events = [
        {"ts": "2026-11-10T09:00:00.000Z", "event": "access.blocked", "service": "tiktok"},
        {"ts": "2026-11-10T09:00:05.000Z", "event": "access.blocked", "service": "tiktok",
         "count": 39, "window_seconds": 10},
    ]  # fmt: skip
    report = build_report(events, "2026-11", LONDON)
    assert report.blocks == 40
    assert report.blocks_by_service[0] == ("tiktok", 40)
    assert sum(report.blocks_by_day.values()) == 40
