"""A subject access export holds one person's events, from every file, and matches the chain."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

from socialguard.audit.export import Subject, export_events
from socialguard.audit.files import iter_lines, log_segments, rotated_segments
from socialguard.audit.log import AuditLog, line_hash
from socialguard.audit.verify import verify

START = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def three_days(path: Path) -> None:
    """Three days of events for ann.lee and bob.ray, so two files are rotated and gzipped."""
    clock = Clock()
    numbers = itertools.count(1)
    log = AuditLog(path, clock=clock, new_id=lambda: f"SG-T{next(numbers):07d}")
    for _day in range(3):
        for user, service in (("ann.lee", "tiktok"), ("bob.ray", "reddit"), ("ann.lee", "x")):
            log.record(
                "access.blocked", {"user": user, "service": service, "client_ip": "10.0.0.5"}
            )
        log.record("access.blocked", {"user": "anonymous", "service": "x", "client_ip": "10.0.0.9"})
        log.record(
            "exemption.granted",
            {"who": "user ann.lee", "approved_by": "practice.manager", "services": ["facebook"]},
        )
        clock.now += dt.timedelta(days=1)
    log.close()


def test_export_holds_every_event_of_one_person_and_none_of_anyone_else(tmp_path: Path) -> None:
    """Across gzipped rotated files: all of ann.lee's events, none of bob.ray's."""
    path = tmp_path / "audit.jsonl"
    three_days(path)
    assert all(s.compressed for s in rotated_segments(path))
    assert len(rotated_segments(path)) == 2
    found = export_events(log_segments(path), Subject(user="ann.lee"))
    assert len(found.events) == 3 * 3  # two blocks and one grant a day
    assert all("bob.ray" not in json.dumps(e) for e in found.events)
    assert {e["service"] for e in found.events if e["event"] == "access.blocked"} == {"tiktok", "x"}


def test_other_people_are_shown_by_role(tmp_path: Path) -> None:
    """The approver of ann.lee's exemption appears as 'an approver', not by name."""
    path = tmp_path / "audit.jsonl"
    three_days(path)
    found = export_events(log_segments(path), Subject(user="ann.lee"))
    grants = [e for e in found.events if e["event"] == "exemption.granted"]
    assert grants
    assert all(e["approved_by"] == "an approver" for e in grants)
    assert "practice.manager" not in json.dumps(found.as_json())


def test_chain_hashes_match_verify(tmp_path: Path) -> None:
    """Each event's line_hash is the next line's prev; the head is verify's head."""
    path = tmp_path / "audit.jsonl"
    three_days(path)
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    found = export_events(log_segments(path), Subject(user="ann.lee"))
    assert found.head == verdict.head
    by_prev = {}
    for segment in log_segments(path):
        for line in iter_lines(segment):
            event = json.loads(line)
            by_prev[event["prev"]] = event["seq"]
            assert line_hash(line)
    for event in found.events:
        if event["seq"] < verdict.events:
            assert by_prev[event["line_hash"]] == event["seq"] + 1
    seqs = [e["seq"] for e in found.events]
    assert (found.first_seq, found.last_seq) == (seqs[0], seqs[-1])


def test_a_period_and_a_device_narrow_the_export(tmp_path: Path) -> None:
    """--from/--to bound the events; --ip finds a person known only by address, and never
    the events of someone who signed in on that device."""
    path = tmp_path / "audit.jsonl"
    three_days(path)
    second_day = export_events(
        log_segments(path),
        Subject(user="ann.lee"),
        since="2026-11-24T00:00:00.000Z",
        until="2026-11-25T00:00:00.000Z",
    )
    assert {e["ts"][:10] for e in second_day.events} == {"2026-11-24"}
    by_ip = export_events(log_segments(path), Subject(ip="10.0.0.9"))
    assert len(by_ip.events) == 3
    assert {e["user"] for e in by_ip.events} == {"anonymous"}
    signed_in_elsewhere = export_events(log_segments(path), Subject(ip="10.0.0.5"))
    assert signed_in_elsewhere.events == []
