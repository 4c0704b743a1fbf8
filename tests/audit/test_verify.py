"""Tests for audit_verify: every way to break the chain is caught and named; honest logs pass."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from socialguard.audit.files import (
    AuditError,
    Segment,
    chains_for,
    log_segments,
    segments_for,
    worker_path,
)
from socialguard.audit.log import AuditLog, AuditOptions, line_hash
from socialguard.audit.verify import BreakKind, Verdict, verify, verify_chains, verify_live

KEY = b"0123456789abcdef0123456789abcdef"
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def write_log(path: Path, count: int = 12, key: bytes | None = None) -> list[bytes]:
    """An honest log of `count` events, one second apart; returns its lines."""
    now = [T0]
    numbers = itertools.count(1)
    log = AuditLog(
        path,
        clock=lambda: now[0],
        new_id=lambda: f"SG-V{next(numbers):07d}",
        options=AuditOptions(hmac_key=key),
    )
    for n in range(count):
        now[0] = T0 + dt.timedelta(seconds=n)
        log.record("access.blocked", {"user": f"user{n}", "service": "facebook"})
    log.close()
    return path.read_bytes().split(b"\n")[:-1]


def rewrite(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    lines = path.read_bytes().split(b"\n")[:-1]
    path.write_bytes(b"".join(line + b"\n" for line in change(lines)))


def check(path: Path, key: bytes | None = None) -> tuple[BreakKind | None, int, str]:
    verdict = verify(log_segments(path), key)
    if verdict.problem is None:
        return None, 0, ""
    return verdict.problem.kind, verdict.problem.line, verdict.problem.message


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    write_log(path)
    return path


def test_honest_log_is_ok_with_count_span_and_head(log: Path) -> None:
    """An untouched log verifies, with its event count, first and last ts, and head hash."""
    verdict = verify(log_segments(log))
    assert verdict.ok
    assert verdict.events == 12
    assert verdict.first_ts == "2026-11-24T09:00:00.000Z"
    assert verdict.last_ts == "2026-11-24T09:00:11.000Z"
    assert verdict.head == line_hash(log.read_bytes().split(b"\n")[-2])
    assert verdict.notes == []


def _edit_field(lines: list[bytes]) -> list[bytes]:
    lines[5] = lines[5].replace(b"user5", b"user6")
    return lines


def _edit_last(lines: list[bytes]) -> list[bytes]:
    lines[-1] = lines[-1].replace(b'"seq":12', b'"seq":13')
    return lines


def _delete(lines: list[bytes]) -> list[bytes]:
    del lines[7]
    return lines


def _delete_run(lines: list[bytes]) -> list[bytes]:
    del lines[3:6]
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[3], lines[4] = lines[4], lines[3]
    return lines


def _swap_far(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[9] = lines[9], lines[2]
    return lines


def _new_chain(lines: list[bytes]) -> list[bytes]:
    other = json.loads(lines[0])
    other["prev"] = "genesis:ffffffffffffffff"
    other["seq"] = 1
    return [*lines, json.dumps(other, separators=(",", ":")).encode()]


@pytest.mark.parametrize(
    ("change", "kind", "line", "words"),
    [
        (_edit_field, BreakKind.EDITED, 6, "changed after it was written"),
        (_edit_last, BreakKind.EDITED, 12, "seq 13 does not follow 11"),
        (_delete, BreakKind.REMOVED, 8, "1 line (seq 8) removed"),
        (_delete_run, BreakKind.REMOVED, 4, "3 lines (seq 4 to 6) removed"),
        (_swap, BreakKind.REORDERED, 4, "seq 4 comes later"),
        (_swap_far, BreakKind.REORDERED, 3, "moved out of order"),
        (_new_chain, BreakKind.NEW_CHAIN, 13, "a new chain starts here"),
    ],
    ids=["edit", "edit-last-seq", "delete", "delete-run", "swap", "swap-far", "new-chain"],
)
def test_tampering_is_named_with_its_line(
    log: Path,
    change: Callable[[list[bytes]], list[bytes]],
    kind: BreakKind,
    line: int,
    words: str,
) -> None:
    """Each kind of tampering is the first break, at the right line, in plain words."""
    rewrite(log, change)
    found_kind, found_line, message = check(log)
    assert (found_kind, found_line) == (kind, line), message
    assert words in message


def test_truncation_mid_line_is_reported_as_truncated(log: Path) -> None:
    """A file cut in the middle of its last line: truncated, every line before it chains."""
    data = log.read_bytes()
    log.write_bytes(data[:-40])
    kind, line, message = check(log)
    assert (kind, line) == (BreakKind.TRUNCATED, 12)
    assert "every line before it chains" in message


def test_removed_first_lines_are_a_missing_start(log: Path) -> None:
    """Lines cut from the start, with no audit.expired to explain them, are caught."""
    rewrite(log, lambda lines: lines[2:])
    kind, line, _ = check(log)
    assert (kind, line) == (BreakKind.START_MISSING, 1)


def test_torn_line_chained_by_the_next_start_is_a_note(tmp_path: Path) -> None:
    """A crash's torn line that the next start chained to (audit.torn) verifies, with a note."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    with path.open("ab") as f:
        f.write(b'{"user":"user4","service":"faceb')
    write_log(path, 2)
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert verdict.events == 7  # 4 + audit.torn + 2
    [note] = verdict.notes
    assert "audit.jsonl:5: a torn line" in note


def test_torn_last_line_is_reported(tmp_path: Path) -> None:
    """A torn line nobody has chained to yet (the proxy is still down) fails as torn."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 4)
    with path.open("ab") as f:
        f.write(b'{"user":"user4","serv\n')
    kind, line, message = check(path)
    assert (kind, line) == (BreakKind.TORN, 5)
    assert "torn" in message


def test_damaged_line_not_chained_to_is_edited(log: Path) -> None:
    """A line replaced by garbage in the middle is not mistaken for a crash's torn line."""
    rewrite(log, lambda lines: [*lines[:4], b'{"garbage', *lines[5:]])
    kind, line, _ = check(log)
    assert (kind, line) == (BreakKind.EDITED, 5)


def test_keyed_log_verifies_with_its_key(tmp_path: Path) -> None:
    """A log written with a key verifies with that key, and notes unchecked MACs without it."""
    path = tmp_path / "audit.jsonl"
    write_log(path, key=KEY)
    assert verify(log_segments(path), KEY).ok
    unkeyed = verify(log_segments(path))
    assert unkeyed.ok
    assert "carry an HMAC that was not checked" in unkeyed.notes[0]


def test_wrong_key_is_forged(tmp_path: Path) -> None:
    """The wrong key fails at the first line."""
    path = tmp_path / "audit.jsonl"
    write_log(path, key=KEY)
    kind, line, message = check(path, b"another key, long enough!")
    assert (kind, line) == (BreakKind.FORGED, 1)
    assert "HMAC does not match" in message


def test_appended_forged_line_without_the_key_is_caught(tmp_path: Path) -> None:
    """A line appended with a correct hash link but no valid HMAC fails with the key."""
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, key=KEY)
    last = json.loads(lines[-1])
    forged = {
        "user": "nobody",
        "event": "access.blocked",
        "ts": "2026-11-24T09:00:12.000Z",
        "id": "SG-FORGED0001",
        "seq": last["seq"] + 1,
        "prev": line_hash(lines[-1]),
    }
    body = json.dumps(forged, separators=(",", ":"))
    guessed = hashlib.sha256(body.encode()).hexdigest()  # the best one can do without the key
    with path.open("ab") as f:
        f.write(f'{body[:-1]},"mac":"{guessed}"}}\n'.encode())
    kind, line, _ = check(path, KEY)
    assert (kind, line) == (BreakKind.FORGED, 13)
    # The hash chain alone cannot tell: only the key catches it.
    assert check(path)[0] is None


def test_appended_unsigned_line_is_caught(tmp_path: Path) -> None:
    """A line without a MAC after signed ones was written by someone without the key."""
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, key=KEY)
    last = json.loads(lines[-1])
    extra = {"event": "x", "ts": "T", "id": "I", "seq": last["seq"] + 1}
    extra["prev"] = line_hash(lines[-1])
    with path.open("ab") as f:
        f.write(json.dumps(extra, separators=(",", ":")).encode() + b"\n")
    kind, line, _ = check(path, KEY)
    assert (kind, line) == (BreakKind.UNSIGNED, 13)


def test_whole_log_rewritten_without_the_key_is_caught(tmp_path: Path) -> None:
    """A consistent plain chain where the key says lines must be signed is not accepted."""
    path = tmp_path / "audit.jsonl"
    write_log(path)
    kind, _, message = check(path, KEY)
    assert kind == BreakKind.NOT_SIGNED
    assert "no line is signed" in message


def test_lines_before_the_key_was_set_are_noted(tmp_path: Path) -> None:
    """Unsigned lines written before the key was configured verify, with a note."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    write_log(path, 3, key=KEY)
    verdict = verify(log_segments(path), KEY)
    assert verdict.ok, verdict.problem
    assert "first 3 events were written before the HMAC key was set" in verdict.notes[0]


def test_rotated_files_are_read_in_order_and_a_missing_one_is_caught(tmp_path: Path) -> None:
    """Verify follows the chain through dated gzip files; removing a middle file breaks it."""
    path = tmp_path / "audit.jsonl"
    for day in (1, 2, 3):
        write_log(path, 3)
        rotated = tmp_path / f"audit.2026-11-0{day}.jsonl.gz"
        rotated.write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    write_log(path, 2)
    verdict = verify(log_segments(path))
    assert verdict.ok, verdict.problem
    assert (verdict.events, verdict.files) == (11, 4)
    (tmp_path / "audit.2026-11-02.jsonl.gz").unlink()
    kind, _, message = check(path)
    assert kind == BreakKind.REMOVED
    assert "3 lines (seq 4 to 6) removed" in message


def test_damaged_gzip_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """A corrupt compressed file is an AuditError that names it, not a traceback."""
    path = tmp_path / "audit.2026-11-01.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a":1}\n')[:-8] + b"garbage!")
    with pytest.raises(AuditError, match=r"audit\.2026-11-01\.jsonl\.gz: the compressed file"):
        verify([Segment(path=path, day=dt.date(2026, 11, 1))])


def test_segments_for_a_directory_and_a_missing_path(tmp_path: Path) -> None:
    """A folder means every log in it; a path that is not there is a clear error."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    (tmp_path / "audit.2026-11-01.jsonl.gz").write_bytes(gzip.compress(b""))
    assert [s.path.name for s in segments_for([tmp_path], path)] == [
        "audit.2026-11-01.jsonl.gz",
        "audit.jsonl",
    ]
    with pytest.raises(AuditError, match="no such file"):
        segments_for([tmp_path / "nope.jsonl"], path)


def test_a_folder_of_only_rotated_files_is_a_log(tmp_path: Path) -> None:
    """An archive copy holds only the gzipped daily files (no active file): it is read and
    verified as the log, in order, not refused."""
    path = tmp_path / "audit.jsonl"
    for day in (1, 2):
        write_log(path, 3)
        (tmp_path / f"audit.2026-11-0{day}.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    segments = segments_for([tmp_path], path)
    assert [s.path.name for s in segments] == [
        "audit.2026-11-01.jsonl.gz",
        "audit.2026-11-02.jsonl.gz",
    ]
    verdict = verify(segments)
    assert verdict.ok, verdict.problem
    assert verdict.events == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AuditError, match="no audit log"):
        segments_for([empty], path)


def test_an_unsigned_line_after_signed_ones_is_caught_without_the_key(tmp_path: Path) -> None:
    """The switch from signed to unsigned lines needs no key to see: it is a break even when
    verify has no key (the writer signs every line once it has one)."""
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, key=KEY)
    last = json.loads(lines[-1])
    extra = {"event": "x", "ts": "T", "id": "I", "seq": last["seq"] + 1}
    extra["prev"] = line_hash(lines[-1])
    with path.open("ab") as f:
        f.write(json.dumps(extra, separators=(",", ":")).encode() + b"\n")
    kind, line, message = check(path)
    assert (kind, line) == (BreakKind.UNSIGNED, 13)
    assert "no HMAC but lines before it do" in message


def test_unsigned_lines_before_signed_ones_still_pass_without_the_key(tmp_path: Path) -> None:
    """The other way round is a key being set: fine, with or without the key."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    write_log(path, 3, key=KEY)
    assert verify(log_segments(path)).ok


def test_expect_head_catches_lines_removed_from_the_end(log: Path) -> None:
    """Removing the last whole lines leaves a chain that holds; the head an earlier verify
    printed is then missing, and --expect-head says so."""
    head = verify(log_segments(log)).head
    assert head is not None
    assert verify(log_segments(log), expect_head=head).ok
    write_log(log, 2)  # the log grows: the old head is now inside it
    assert verify(log_segments(log), expect_head=head).ok
    rewrite(log, lambda lines: lines[:-3])  # the two new lines and the old head removed
    plain = verify(log_segments(log))
    assert plain.ok  # invisible without the head
    verdict = verify(log_segments(log), expect_head=head)
    assert verdict.problem is not None
    assert verdict.problem.kind == BreakKind.HEAD_MISSING
    assert verdict.problem.line == 11
    assert head in verdict.problem.message


def test_expect_head_in_the_middle_of_a_rotated_log(tmp_path: Path) -> None:
    """A head that is now in a gzipped rotated file is found there."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    head = verify(log_segments(path)).head
    (tmp_path / "audit.2026-11-01.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    write_log(path, 2)
    assert verify(log_segments(path), expect_head=head).ok
    assert not verify(log_segments(path), expect_head="0" * 64).ok


def _workers(tmp_path: Path, count: int) -> tuple[Path, list[Path]]:
    """`run --workers 2`'s two chains beside audit.jsonl, `count` events each."""
    active = tmp_path / "audit.jsonl"
    workers = [worker_path(active, 1), worker_path(active, 2)]
    for worker in workers:
        write_log(worker, count)
    return active, workers


def _check_chains(active: Path, *heads: str) -> Verdict:
    return verify_chains(lambda: chains_for([active], active), None, heads)


def test_one_head_per_chain_catches_lines_removed_from_the_second(tmp_path: Path) -> None:
    """With several chains each head given must be in a chain of its own: removing the last
    lines of worker 2's chain is caught when its head is given, whichever order they come in,
    though worker 1's head alone (what the old --expect-head took) still passes, with a note."""
    active, (first, second) = _workers(tmp_path, 5)
    noted = _check_chains(active)
    assert noted.ok
    assert list(noted.heads) == [str(first), str(second)]
    head1, head2 = noted.heads[str(first)], noted.heads[str(second)]
    assert head1 is not None
    assert head2 is not None
    assert head1 != head2
    for worker in (first, second):
        write_log(worker, 2)  # both grow: the heads noted are now inside them
    assert _check_chains(active, head1, head2).notes == []
    assert _check_chains(active, head2, head1).ok
    rewrite(second, lambda lines: lines[:-3])  # worker 2's two new lines and its old head
    assert _check_chains(active).ok  # invisible without the heads
    only_first = _check_chains(active, head1)
    assert only_first.ok
    assert only_first.notes == [
        f"{second}: no --expect-head was given for this chain, so lines removed from its end "
        "cannot be detected (give each chain's latest head: one --expect-head per chain)"
    ]
    for heads in ((head1, head2), (head2, head1)):
        verdict = _check_chains(active, *heads)
        assert verdict.problem is not None
        assert verdict.problem.kind == BreakKind.HEAD_MISSING
        assert (verdict.problem.file, verdict.problem.line) == (second, 4)  # its last line
        assert f"the line whose hash is {head2} (head {heads.index(head2) + 1} of 2" in str(
            verdict.problem
        )
        assert "removed from the end of audit.w2.jsonl (the one chain no head" in str(
            verdict.problem
        )
    assert _check_chains(active, head2).problem is not None


def test_heads_given_must_each_be_in_a_different_chain(tmp_path: Path) -> None:
    """The same chain's head twice, or more heads than chains, is not one head per chain."""
    active, (first, second) = _workers(tmp_path, 3)
    heads = _check_chains(active).heads
    head1 = heads[str(first)]
    assert head1 is not None
    twice = _check_chains(active, head1, head1)
    assert twice.problem is not None
    assert twice.problem.kind == BreakKind.HEAD_MISSING
    assert twice.problem.file == first
    assert "heads 1 and 2 given with --expect-head are both in the chain of audit.w1.jsonl" in (
        twice.problem.message
    )
    extra = _check_chains(active, *(h for h in heads.values() if h), "0" * 64)
    assert extra.problem is not None
    assert f"{'0' * 64} (head 3 of 3 given with --expect-head) is in none of the 2 chains" in (
        extra.problem.message
    )
    # One chain, two heads: the single-chain check cannot hold both either.
    second.unlink()
    first.rename(active)
    alone = _check_chains(active, head1, "1" * 64)
    assert alone.problem is not None
    assert alone.problem.kind == BreakKind.HEAD_MISSING
    assert _check_chains(active, head1).ok


def test_verify_live_lists_the_files_again_after_a_race(tmp_path: Path) -> None:
    """The writer gzipped (or rotated) a file between listing and reading: the first look
    fails (a file is gone, or the chain seems to break), the second look, listed afresh, holds.
    A real break is still found on the second look."""
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    rotated = tmp_path / "audit.2026-11-01.jsonl"
    path.rename(rotated)
    stale = [Segment(path=rotated, day=dt.date(2026, 11, 1)), Segment(path=path, day=None)]
    write_log(path, 2)  # its housekeeping gzips the rotated file: the listing is now stale
    assert not rotated.exists()
    assert (tmp_path / "audit.2026-11-01.jsonl.gz").is_file()
    looks: list[list[Segment]] = []

    def listing() -> list[Segment]:
        looks.append(stale if not looks else log_segments(path))
        return looks[-1]

    with pytest.raises(AuditError, match="cannot read it"):
        verify(stale)
    verdict = verify_live(listing)
    assert verdict.ok, verdict.problem
    assert len(looks) == 2
    # Rotated after the listing: the active file read is a new one chaining to a file not listed.
    looks.clear()
    only_active = [Segment(path=path, day=None)]
    first_listing = [only_active, log_segments(path)]
    assert not verify(only_active).ok
    assert verify_live(lambda: first_listing.pop(0)).ok
    # A real break stays broken.
    rewrite(path, lambda lines: lines[1:])
    assert not verify_live(lambda: log_segments(path)).ok
