"""Tests for socialguard.audit.log: the hash-chained, fsync'd JSON-lines audit log."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socialguard.audit.log import (
    EVENT_FIELDS,
    GENESIS_PREFIX,
    AuditLog,
    human_line,
    line_hash,
    new_event_id,
)

FIXED = dt.datetime(2026, 11, 24, 12, 30, 5, 123456, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return FIXED


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"SG-TEST{next(numbers):05d}"


def access_fields(n: int = 0) -> dict[str, object]:
    """Every EVENT_FIELDS key the caller supplies (ts, event and id are stamped by the log)."""
    return {
        "client_ip": f"10.10.0.{n}",
        "user": "j.smith",
        "device": None,
        "zone": "staff",
        "host": "www.facebook.com",
        "service": "facebook",
        "category": "social-networking",
        "reason": "not_authorised",
        "exemption_id": None,
        "purpose": None,
        "policy_digest": "0123456789abcdef",
    }


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "audit.jsonl"


@pytest.fixture
def audit(log_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(log_path, clock=fixed_clock, new_id=counter_ids())
    yield log
    log.close()


def raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def assert_chained(lines: list[bytes]) -> None:
    for before, after in itertools.pairwise(lines):
        assert json.loads(after)["prev"] == line_hash(before)


def test_record_is_one_json_line_with_every_field(audit: AuditLog, log_path: Path) -> None:
    """A record is one JSON line carrying every EVENT_FIELDS key, stamped with ts and id."""
    written = audit.record("access", access_fields(7))
    [line] = raw_lines(log_path)
    event = json.loads(line)
    assert set(EVENT_FIELDS) <= set(event)
    assert event == written
    assert event["event"] == "access"
    assert event["ts"] == "2026-11-24T12:30:05.123Z"
    assert event["id"] == "SG-TEST00001"
    assert event["client_ip"] == "10.10.0.7"
    assert event["device"] is None
    assert event["prev"].startswith(GENESIS_PREFIX)


def test_given_ts_and_id_are_kept(audit: AuditLog, log_path: Path) -> None:
    """A caller that already has an id (shown on the block page) keeps it in the log."""
    written = audit.record("access", {**access_fields(), "id": "SG-FROMPAGE1", "ts": "T"})
    assert (written["id"], written["ts"]) == ("SG-FROMPAGE1", "T")
    assert json.loads(raw_lines(log_path)[0])["id"] == "SG-FROMPAGE1"


def test_each_line_hashes_the_previous(audit: AuditLog, log_path: Path) -> None:
    """prev of line n+1 is the SHA-256 of line n's bytes without its newline."""
    records = [audit.record("access", access_fields(i)) for i in range(5)]
    lines = raw_lines(log_path)
    assert len(lines) == 5
    assert_chained(lines)
    assert [json.loads(ln)["id"] for ln in lines] == [r["id"] for r in records]
    assert len({json.loads(ln)["prev"] for ln in lines}) == 5


def test_unicode_is_written_as_utf8(audit: AuditLog, log_path: Path) -> None:
    """Non-ASCII values are stored as UTF-8 and still chain."""
    audit.record("access", {**access_fields(), "purpose": "Zoë\u2019s clinic\u2028update"})
    audit.record("access", access_fields())
    lines = raw_lines(log_path)
    assert json.loads(lines[0])["purpose"] == "Zoë\u2019s clinic\u2028update"
    assert "Zoë".encode() in lines[0]
    assert_chained(lines)


def test_reopened_log_continues_chain(log_path: Path) -> None:
    """A log opened again chains its first new line to the last line already there."""
    first = AuditLog(log_path, clock=fixed_clock, new_id=counter_ids())
    first.record("access", access_fields(1))
    first.record("access", access_fields(2))
    first.close()
    second = AuditLog(log_path, clock=fixed_clock, new_id=counter_ids())
    second.record("access", access_fields(3))
    second.close()
    lines = raw_lines(log_path)
    assert len(lines) == 3
    assert_chained(lines)
    assert json.loads(lines[0])["prev"].startswith(GENESIS_PREFIX)


def test_torn_last_line_is_not_merged(log_path: Path) -> None:
    """A last line cut short by a crash stays on its own line, an audit.torn event chained to it
    says so, and the next record follows."""
    log = AuditLog(log_path, clock=fixed_clock, new_id=counter_ids())
    log.record("access", access_fields(1))
    log.close()
    torn = b'{"ts":"2026-11-24T12:31:00.000Z","event":"acc'
    with log_path.open("ab") as f:
        f.write(torn)
    log = AuditLog(log_path, clock=fixed_clock, new_id=counter_ids())
    log.record("access", access_fields(2))
    log.close()
    lines = raw_lines(log_path)
    assert len(lines) == 4
    assert lines[1] == torn
    notice = json.loads(lines[2])
    assert notice["event"] == "audit.torn"
    assert notice["prev"] == line_hash(torn)
    assert notice["torn_bytes"] == len(torn)
    last = json.loads(lines[3])
    assert last["client_ip"] == "10.10.0.2"
    assert last["prev"] == line_hash(lines[2])


def test_new_file_mode_is_0640_or_stricter(audit: AuditLog, log_path: Path) -> None:
    """The audit file is not readable or writable by others, nor writable by its group."""
    audit.record("access", access_fields())
    mode = stat.S_IMODE(log_path.stat().st_mode)
    assert mode & ~0o640 == 0, oct(mode)


def test_parent_directory_is_created(tmp_path: Path) -> None:
    """The log's folder is made if it does not exist."""
    path = tmp_path / "a" / "b" / "audit.jsonl"
    log = AuditLog(path, clock=fixed_clock, new_id=counter_ids())
    log.record("access", access_fields())
    log.close()
    assert len(raw_lines(path)) == 1


def test_console_gets_a_human_line(log_path: Path) -> None:
    """With a console, each record also prints one readable line."""
    console = io.StringIO()
    log = AuditLog(log_path, console=console, clock=fixed_clock, new_id=counter_ids())
    log.record("access", access_fields(3))
    log.close()
    out = console.getvalue()
    assert out.count("\n") == 1
    assert out.startswith("2026-11-24T12:30:05.123Z access ")
    assert "user=j.smith" in out
    assert "host=www.facebook.com" in out
    assert "id=SG-TEST00001" in out
    assert "policy_digest" not in out


def test_concurrent_records_keep_the_chain(log_path: Path) -> None:
    """Records from several threads never interleave and the chain stays whole."""
    log = AuditLog(log_path, clock=fixed_clock, new_id=counter_ids())

    def worker(n: int) -> None:
        for i in range(25):
            log.record("access", access_fields(n * 100 + i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    lines = raw_lines(log_path)
    assert len(lines) == 100
    assert_chained(lines)
    assert len({json.loads(ln)["id"] for ln in lines}) == 100


def test_new_event_id_format() -> None:
    """Event ids are SG- and ten characters with no 0, O, 1 or I."""
    ids = {new_event_id() for _ in range(200)}
    assert len(ids) == 200
    for ident in ids:
        assert re.fullmatch(r"SG-[2-9A-HJ-NP-Z]{10}", ident), ident


def test_line_hash_ignores_trailing_newline() -> None:
    """line_hash of a line is the same with or without its newline."""
    assert line_hash(b"abc\n") == line_hash(b"abc")
    assert line_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"ts": "T", "event": "access", "user": "u", "host": "h"}, "T access user=u host=h"),
        ({"ts": "T", "event": "reload", "detail": "policy changed"}, "T reload — policy changed"),
        ({"ts": "T", "event": "x", "user": None, "message": "m"}, "T x — m"),
    ],
)
def test_human_line(event: dict[str, object], expected: str) -> None:
    """human_line shows the set fields in a fixed order, then any detail."""
    assert human_line(event) == expected
