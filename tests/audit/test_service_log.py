"""The audit writer as a service needs it: a console without personal data, a complaint when
something else truncates the log, and a health answer for /healthz."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from socialguard.audit.log import AuditLog

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
PERSONAL = {"user": "j.smith", "client_ip": "10.10.0.21", "host": "www.facebook.com"}


def test_the_console_counts_and_names_nobody_by_default(tmp_path: Path) -> None:
    now = [T0]
    console = io.StringIO()
    log = AuditLog(tmp_path / "a.jsonl", console=console, clock=lambda: now[0],
                   console_mode="counts")  # fmt: skip
    for minute in range(3):
        now[0] = T0 + dt.timedelta(seconds=30 * minute)
        log.record("access.blocked", {**PERSONAL, "service": "facebook"})
    log.record("policy.rejected", {"detail": "policy.yaml:3: unknown setting 'x'"})
    log.close()
    text = console.getvalue()
    for value in PERSONAL.values():
        assert value not in text
    assert "counts since 2026-11-24T09:00:00.000Z: 3 access.blocked" in text
    assert "policy.rejected" in text
    assert "unknown setting 'x'" in text
    full = io.StringIO()
    log = AuditLog(tmp_path / "b.jsonl", console=full, console_mode="full")
    log.record("access.blocked", dict(PERSONAL))
    log.close()
    assert "user=j.smith" in full.getvalue()


def test_a_log_truncated_under_the_writer_is_recorded_and_said(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    console = io.StringIO()
    log = AuditLog(path, console=console, console_mode="counts")
    for _ in range(3):
        log.record("access.blocked", dict(PERSONAL))
    with path.open("r+b") as stream:  # what logrotate's copytruncate does
        stream.truncate(0)
    log.record("access.blocked", dict(PERSONAL))
    log.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in events] == ["audit.truncated", "access.blocked"]
    assert "copytruncate" in events[0]["detail"]
    assert "recorded as audit.truncated" in console.getvalue()
    assert "remove it from logrotate" in console.getvalue()


def test_health_says_when_the_log_cannot_be_written(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    log = AuditLog(folder / "a.jsonl")
    assert log.health() is None
    folder.rename(tmp_path / "moved")
    assert "is not there" in (log.health() or "")
    folder.mkdir()
    (folder / "a.jsonl").write_text("")
    assert "replaced under the proxy" in (log.health() or "")
    log.close()
