"""Tests for the audit writer's durability, HMAC, rotation, gzip and retention (events.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from socialguard.audit.files import AuditError, log_segments, rotated_segments
from socialguard.audit.log import (
    AuditLog,
    AuditOptions,
    audit_options,
    human_line,
    line_hash,
    line_mac,
    load_hmac_key,
    split_mac,
)
from socialguard.audit.verify import verify
from socialguard.core.problems import ConfigError
from socialguard.core.settings import parse_settings
from socialguard.files.yamlfile import parse_yaml

KEY = b"k" * 32
START = dt.datetime(2026, 11, 24, 23, 57, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def ids() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"SG-T{next(numbers):07d}"


def fields(n: int) -> dict[str, object]:
    return {"client_ip": f"10.0.0.{n % 250}", "user": "j.smith", "service": "facebook"}


def all_lines(active: Path) -> list[bytes]:
    lines: list[bytes] = []
    for segment in log_segments(active):
        data = gzip.decompress(segment.path.read_bytes()) if segment.compressed else None
        data = data if data is not None else segment.path.read_bytes()
        lines += data.split(b"\n")[:-1]
    return lines


def test_hmac_signs_every_line_over_its_own_bytes(tmp_path: Path) -> None:
    """With a key, each line ends with an HMAC of the bytes before it, and still chains."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, options=AuditOptions(hmac_key=KEY), new_id=ids())
    written = [log.record("access.blocked", fields(n)) for n in range(3)]
    log.close()
    lines = path.read_bytes().split(b"\n")[:-1]
    for raw, event in zip(lines, written, strict=True):
        signed = split_mac(raw)
        assert signed is not None
        body, mac = signed
        assert mac == line_mac(KEY, body) == event["mac"]
        assert json.loads(body)["id"] == event["id"]
    assert json.loads(lines[2])["prev"] == line_hash(lines[1])
    assert verify(log_segments(path), KEY).ok


def test_unkeyed_lines_carry_no_mac(tmp_path: Path) -> None:
    """Without a key no line has a mac field."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids())
    log.record("access.blocked", fields(1))
    log.close()
    assert split_mac(path.read_bytes().rstrip(b"\n")) is None
    assert "mac" not in json.loads(path.read_bytes())


def test_a_caller_cannot_supply_seq_prev_or_mac(tmp_path: Path) -> None:
    """seq, prev and mac are the writer's: values passed in are replaced."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, options=AuditOptions(hmac_key=KEY), new_id=ids())
    event = log.record("x", {"seq": 99, "prev": "forged", "mac": "0" * 64})
    log.close()
    assert event["seq"] == 1
    assert event["prev"].startswith("genesis:")
    assert verify(log_segments(path), KEY).ok


def test_rotation_across_midnight_gzips_and_the_chain_verifies(tmp_path: Path) -> None:
    """The first event after midnight (UTC) closes yesterday's file under its date, gzipped,
    and the chain runs on from it into the new file."""
    path = tmp_path / "audit.jsonl"
    clock = Clock()
    log = AuditLog(path, clock=clock, new_id=ids())
    for n in range(3):
        log.record("access.blocked", fields(n))
        clock.advance(minutes=1)  # 23:57, 23:58, 23:59
    clock.advance(seconds=30)  # 00:00:30 on the 25th
    for n in range(3, 5):
        log.record("access.blocked", fields(n))
    log.close()
    [rotated] = rotated_segments(path)
    assert rotated.path.name == "audit.2026-11-24.jsonl.gz"
    assert not (tmp_path / "audit.2026-11-24.jsonl").exists()
    old = gzip.decompress(rotated.path.read_bytes()).split(b"\n")[:-1]
    new = path.read_bytes().split(b"\n")[:-1]
    assert len(old) == 3
    assert len(new) == 2
    assert json.loads(new[0])["prev"] == line_hash(old[-1])
    assert [json.loads(x)["seq"] for x in old + new] == [1, 2, 3, 4, 5]
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert (verdict.events, verdict.files) == (5, 2)


def test_size_rotation_numbers_files_of_the_same_day(tmp_path: Path) -> None:
    """With rotate: size, a file that would pass the limit is closed first; same-day files are
    numbered in order, and the whole chain verifies."""
    path = tmp_path / "audit.jsonl"
    options = AuditOptions(rotate="size", rotate_size_bytes=600)
    log = AuditLog(path, clock=Clock(), new_id=ids(), options=options)
    for n in range(12):
        log.record("access.blocked", fields(n))
    log.close()
    names = [s.path.name for s in rotated_segments(path)]
    assert len(names) >= 3
    assert names[:2] == ["audit.2026-11-24.jsonl.gz", "audit.2026-11-24.2.jsonl.gz"]
    assert all(s.stat().st_size <= 600 for s in [path])
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert verdict.events == 12


def test_restart_with_an_empty_active_file_continues_from_the_rotated_one(tmp_path: Path) -> None:
    """A new process whose active file is new chains to the last line of the newest gzip."""
    path = tmp_path / "audit.jsonl"
    clock = Clock()
    log = AuditLog(path, clock=clock, new_id=ids())
    log.record("access.blocked", fields(1))
    log.rotate()
    log.close()
    assert not path.read_bytes()
    again = AuditLog(path, clock=clock, new_id=ids())
    event = again.record("access.blocked", fields(2))
    again.close()
    [rotated] = rotated_segments(path)
    last = gzip.decompress(rotated.path.read_bytes()).split(b"\n")[-2]
    assert event["prev"] == line_hash(last)
    assert event["seq"] == 2
    assert verify(log_segments(path)).ok


def test_an_interrupted_compression_is_finished_at_the_next_start(tmp_path: Path) -> None:
    """A rotated file left uncompressed (a crash before gzip) is gzipped when the log opens."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=Clock(), new_id=ids())
    log.record("access.blocked", fields(1))
    log.close()
    leftover = tmp_path / "audit.2026-11-23.jsonl"
    path.rename(leftover)
    again = AuditLog(path, clock=Clock(), new_id=ids())
    again.record("access.blocked", fields(2))
    again.close()
    assert not leftover.exists()
    assert (tmp_path / "audit.2026-11-23.jsonl.gz").is_file()
    assert verify(log_segments(path)).ok


def test_retention_removes_old_files_records_audit_expired_and_verifies(tmp_path: Path) -> None:
    """Files older than retention_days go, after an audit.expired event naming the range;
    verify accepts the missing start because that event accounts for it."""
    path = tmp_path / "audit.jsonl"
    clock = Clock(dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC))
    options = AuditOptions(retention_days=10)
    log = AuditLog(path, clock=clock, new_id=ids(), options=options)
    for _day in range(15):
        log.record("access.blocked", fields(1))
        log.record("access.blocked", fields(2))
        clock.advance(days=1)
    log.record("access.blocked", fields(3))  # rotates day 15's file; housekeeping expires
    log.close()
    lines = all_lines(path)
    events = [json.loads(x) for x in lines]
    expired = [e for e in events if e["event"] == "audit.expired"]
    assert expired, "no audit.expired event"
    removed = sum(e["events"] for e in expired)
    # Cutoff: 16 January 12:00 less 10 days. Files 1 to 5 January end before it; 6 January not.
    assert removed == 2 * 5
    assert expired[0]["files"][0] == "audit.2026-01-01.jsonl.gz"
    assert expired[0]["from_ts"].startswith("2026-01-01")
    assert expired[0]["retention_days"] == 10
    assert not (tmp_path / "audit.2026-01-01.jsonl.gz").exists()
    assert events[0]["seq"] == removed + 1
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert any("removed by retention" in note for note in verdict.notes)


def test_deleting_an_old_file_without_retention_is_detected(tmp_path: Path) -> None:
    """The oldest file removed by hand (no audit.expired) is a missing start, not retention."""
    path = tmp_path / "audit.jsonl"
    clock = Clock()
    log = AuditLog(path, clock=clock, new_id=ids())
    for _day in range(3):
        log.record("access.blocked", fields(1))
        clock.advance(days=1)
    log.record("access.blocked", fields(1))
    log.close()
    rotated_segments(path)[0].path.unlink()
    verdict = verify(log_segments(path))
    assert verdict.problem is not None
    assert verdict.problem.kind == "start_missing"


def test_group_commit_keeps_the_chain_under_concurrency(tmp_path: Path) -> None:
    """Group commit from many threads: every event written once, in one unbroken chain."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids(), options=AuditOptions(durability="group"))

    def worker(n: int) -> None:
        for i in range(50):
            log.record("access.blocked", fields(n * 100 + i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log._file.synced_seq == log._file.written_seq == 300
    log.close()
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert verdict.events == 300


@pytest.mark.parametrize("durability", ["fsync", "group"])
def test_record_returns_only_once_synced(tmp_path: Path, durability: str) -> None:
    """Whatever the setting, record() returns after the event's bytes were fsync'd."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids(), options=AuditOptions(durability=durability))
    for n in range(5):
        log.record("access.blocked", fields(n))
        assert log._file.synced_seq == n + 1
    log.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"short\n", "too short"),
    ],
)
def test_unusable_key_file_is_a_clear_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    """A missing or short key file names the file and how to make one."""
    key_file = tmp_path / "audit.key"
    if content is not None:
        key_file.write_bytes(content)
    with pytest.raises(AuditError, match=message) as raised:
        load_hmac_key(key_file)
    assert str(key_file) in str(raised.value)
    assert "head -c 32 /dev/urandom" in str(raised.value)


def test_audit_options_come_from_policy_yaml(tmp_path: Path) -> None:
    """policy.yaml's audit section becomes the writer's options, key read from its file."""
    key_file = tmp_path / "audit.key"
    key_file.write_text("  " + "x" * 40 + "\n")
    text = (
        f"audit:\n  hmac_key_file: {key_file}\n  durability: fsync\n  rotate: size\n"
        "  rotate_size_mb: 2\n  retention_days: 30\n"
    )
    settings = parse_settings(parse_yaml(text, "policy.yaml"), "policy.yaml")
    options = audit_options(settings)
    assert options.hmac_key == b"x" * 40
    assert (options.durability, options.rotate) == ("fsync", "size")
    assert options.rotate_size_bytes == 2 * 1024 * 1024
    assert options.retention_days == 30


def test_default_audit_settings() -> None:
    """Without an audit section: 13 months, daily rotation, group commit, no key, no paths."""
    settings = parse_settings(None, "<defaults>")
    assert settings.audit_retention_days == 396
    assert settings.audit_rotate == "daily"
    assert settings.audit_durability == "group"
    assert settings.audit_group_commit_ms == 0
    assert settings.audit_hmac_key_file is None
    assert settings.audit_record_paths is False


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("audit:\n  retention_days: 0\n", "policy.yaml:2: audit.retention_days: must be"),
        ("audit:\n  durability: sometimes\n", "policy.yaml:2: audit.durability: must be 'fsync'"),
        ("audit:\n  rotate: weekly\n", "policy.yaml:2: audit.rotate: must be 'daily'"),
        ("audit:\n  group_commit_ms: 500\n", "policy.yaml:2: audit.group_commit_ms: must be"),
        ("audit:\n  rotate_size_mb: big\n", "policy.yaml:2: audit.rotate_size_mb: must be"),
        ("audit:\n  hmac_key_file: 7\n", "policy.yaml:2: audit.hmac_key_file: must be the path"),
        ("audit:\n  record_paths: yes please\n", "policy.yaml:2: audit.record_paths: must be"),
        (
            "audit:\n  retension_days: 30\n",
            "policy.yaml:2: audit: unknown key 'retension_days' — did you mean 'retention_days'?",
        ),
    ],
)
def test_bad_audit_settings_name_the_key_and_the_fix(yaml_text: str, message: str) -> None:
    """Each bad audit value is reported with its line, its key and what to write instead."""
    with pytest.raises(ConfigError) as raised:
        parse_settings(parse_yaml(yaml_text, "policy.yaml"), "policy.yaml")
    assert any(str(p).startswith(message) for p in raised.value.problems), raised.value.problems


# -- review fixes: crashes and disk errors must not break the chain ---------------------------
def test_a_torn_first_line_after_rotation_continues_from_the_rotated_file(
    tmp_path: Path,
) -> None:
    """A crash during the first write after rotation leaves an active file holding only a torn
    line: the next start numbers on from the rotated file's last line, and verify holds."""
    path = tmp_path / "audit.jsonl"
    clock = Clock()
    log = AuditLog(path, clock=clock, new_id=ids())
    for n in range(3):
        log.record("access.blocked", fields(n))
    log.rotate()
    log.close()
    path.write_bytes(b'{"ts":"2026-11-24T23:58:00.000Z","event":"access.bl')
    again = AuditLog(path, clock=clock, new_id=ids())
    event = again.record("access.blocked", fields(9))
    again.close()
    torn_event = json.loads(path.read_bytes().split(b"\n")[1])
    assert torn_event["event"] == "audit.torn"
    assert torn_event["seq"] == 5  # 1-3 rotated, 4 the torn line
    assert event["seq"] == 6
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert any("torn line" in note for note in verdict.notes)


class FailingFsync:
    """Stands in for os.fsync: the first call fails with EIO, later ones sync."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.real, self.calls = real, 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OSError(5, "Input/output error")
        self.real(fd)


@pytest.mark.parametrize("durability", ["fsync", "group"])
def test_a_failed_fsync_raises_and_the_chain_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str
) -> None:
    """One failed sync: that record raises (the enforcer then refuses the request), the event
    is not counted as synced, and the next events chain to it: verify holds."""
    import os  # noqa: PLC0415

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids(), options=AuditOptions(durability=durability))
    log.record("access.blocked", fields(1))
    monkeypatch.setattr(os, "fsync", FailingFsync(os.fsync))
    with pytest.raises(OSError, match="Input/output error"):
        log.record("access.blocked", fields(2))
    assert log._file.written_seq == 2
    assert log._file.synced_seq == 1
    monkeypatch.undo()
    log.record("access.blocked", fields(3))
    assert log._file.synced_seq == 3
    log.close()
    seqs = [json.loads(line)["seq"] for line in all_lines(path)]
    assert seqs == [1, 2, 3]
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem


def test_a_short_write_is_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.write may write only part of a line (a nearly full disk): the rest follows, so no
    two lines merge."""
    import os  # noqa: PLC0415

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids())
    real_write = os.write
    fd = log._file.fd

    def half(target: int, data: bytes) -> int:
        return real_write(target, data[: max(1, len(data) // 2)] if target == fd else data)

    monkeypatch.setattr(os, "write", half)
    for n in range(3):
        log.record("access.blocked", fields(n))
    monkeypatch.undo()
    log.close()
    lines = all_lines(path)
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    assert verify(log_segments(path)).ok


def test_a_failed_write_is_cut_back_and_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills in the middle of a line: the part written is removed, record raises,
    and the next event continues the chain as if the failed one had never been tried."""
    import errno  # noqa: PLC0415
    import os  # noqa: PLC0415

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids(), options=AuditOptions(durability="fsync"))
    log.record("access.blocked", fields(1))
    size = path.stat().st_size
    real_write = os.write
    fd = log._file.fd
    calls = [0]

    def full_disk(target: int, data: bytes) -> int:
        if target != fd:
            return real_write(target, data)
        calls[0] += 1
        if calls[0] == 1:
            return real_write(target, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        log.record("access.blocked", fields(2))
    monkeypatch.undo()
    assert path.stat().st_size == size
    event = log.record("access.blocked", fields(3))
    log.close()
    assert event["seq"] == 2
    assert verify(log_segments(path)).ok


def test_a_plain_copy_beside_its_complete_gzip_is_removed_at_start(tmp_path: Path) -> None:
    """A crash between writing the gzip and removing the plain file: the next start checks the
    gzip holds the same lines, then removes the plain copy (it would otherwise stay forever)."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=Clock(), new_id=ids())
    log.record("access.blocked", fields(1))
    log.close()
    plain = tmp_path / "audit.2026-11-23.jsonl"
    path.rename(plain)
    compressed = tmp_path / "audit.2026-11-23.jsonl.gz"
    compressed.write_bytes(gzip.compress(plain.read_bytes()))
    again = AuditLog(path, clock=Clock(), new_id=ids())
    again.record("access.blocked", fields(2))
    again.close()
    assert not plain.exists()
    assert compressed.is_file()
    assert verify(log_segments(path)).ok


def test_a_damaged_gzip_beside_its_plain_copy_is_made_again(tmp_path: Path) -> None:
    """If the gzip does not read back to the plain file's bytes, the plain file is the one
    kept: the gzip is written again from it, then the plain copy goes."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=Clock(), new_id=ids())
    log.record("access.blocked", fields(1))
    log.record("access.blocked", fields(2))
    log.close()
    first, second = path.read_bytes().splitlines(keepends=True)
    plain = tmp_path / "audit.2026-11-23.jsonl"
    plain.write_bytes(first)
    path.write_bytes(second)
    content = plain.read_bytes()
    compressed = tmp_path / "audit.2026-11-23.jsonl.gz"
    compressed.write_bytes(gzip.compress(content)[:-6])  # cut short
    again = AuditLog(path, clock=Clock(), new_id=ids())
    again.close()
    assert not plain.exists()
    assert gzip.decompress(compressed.read_bytes()) == content
    assert verify(log_segments(path)).ok


def test_rotate_never_is_refused_because_retention_could_not_work() -> None:
    """Retention deletes whole rotated files: with `rotate: never` it would silently delete
    nothing, so the setting is refused with its line and the fix."""
    text = "practice:\n  name: Test\naudit:\n  retention_days: 30\n  rotate: never\n"
    with pytest.raises(ConfigError) as raised:
        parse_settings(parse_yaml(text, "policy.yaml"), "policy.yaml")
    [problem] = [str(p) for p in raised.value.problems]
    assert problem.startswith("policy.yaml:5: audit.rotate: 'never' keeps every event")
    assert "audit.retention_days: 30" in problem
    assert "rotate: daily" in problem


def test_group_commit_wait_is_still_allowed() -> None:
    """A group commit wait is accepted (the comment says it holds up the proxy)."""
    text = "audit:\n  group_commit_ms: 2\n"
    settings = parse_settings(parse_yaml(text, "policy.yaml"), "policy.yaml")
    assert settings.audit_group_commit_ms == 2


def test_group_commit_with_one_caller_syncs_every_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy records from one thread: group commit then syncs once per event, exactly as
    fsync does, so the shipped comments must not promise more throughput from it."""
    import os  # noqa: PLC0415

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, new_id=ids(), options=AuditOptions(durability="group"))
    real, syncs = os.fsync, [0]

    def counting(fd: int) -> None:
        syncs[0] += 1
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    for n in range(5):
        log.record("access.blocked", fields(n))
    monkeypatch.undo()
    log.close()
    assert syncs[0] == 5
    shipped = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
    comment = shipped.read_text(encoding="utf-8").split("# audit:", 1)[1].split("\n\n", 1)[0]
    assert "shares one sync" not in comment
    assert "holds up the whole proxy" in comment
    from socialguard.core import settings as settings_module  # noqa: PLC0415

    source = Path(settings_module.__file__).read_text(encoding="utf-8")
    assert "twice the throughput" not in source


def test_site_is_stamped_on_every_event(tmp_path: Path) -> None:
    """policy.yaml's `site:` names the gateway on every line, for a central store."""
    settings = parse_settings(parse_yaml("site: riverside\n", "policy.yaml"), "policy.yaml")
    log = AuditLog(tmp_path / "audit.jsonl", options=audit_options(settings))
    log.record("access.blocked", fields(1))
    log.record("policy.loaded", {"site": "forged"})
    log.close()
    events = [json.loads(line) for line in all_lines(tmp_path / "audit.jsonl")]
    assert [e["site"] for e in events] == ["riverside", "riverside"]
    assert verify(log_segments(tmp_path / "audit.jsonl")).ok


def test_no_site_no_field(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.record("access.blocked", fields(1))
    log.close()
    assert "site" not in json.loads(all_lines(tmp_path / "audit.jsonl")[0])


@pytest.mark.parametrize("bad", ["Riverside Surgery", "''", "[a]"])
def test_site_must_be_a_short_name(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(parse_yaml(f"site: {bad}\n", "policy.yaml"), "policy.yaml")
    assert caught.value.problems[0].line == 1


def test_a_client_value_with_a_line_break_cannot_forge_a_console_line() -> None:
    """A folded Host header (or any control character) is escaped: one event, one line."""
    forged = "x.example\r\n2026-12-01T09:00:00.000Z access.exception user=k.jones host=evil"
    line = human_line(
        {"ts": "2026-12-01T08:59:59.000Z", "event": "access.blocked", "host": forged,
         "user": "a\x1b[2Jb", "detail": "bad\u2028host\x00"}
    )  # fmt: skip
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\u2028" not in line
    assert "\x00" not in line
    assert "host=x.example\\x0d\\x0a2026-12-01T09:00:00.000Z access.exception" in line
    assert "user=a\\x1b[2Jb" in line
