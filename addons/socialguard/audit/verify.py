"""Check an audit log end to end: every line chained to the one before it, across rotated and
gzipped files, with any HMAC checked, and say plainly where and how it breaks.

Pure reading: never changes a file, never imports mitmproxy or structlog. The first break is
reported with its file, line and kind (edited, removed, reordered, truncated, forged, …);
a torn line left by a crash that the next start chained to, and files removed by retention
that an `audit.expired` event accounts for, are reported as notes, not as breaks.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialguard.audit.files import AuditError, Segment, iter_lines
from socialguard.audit.log import GENESIS_PREFIX, split_mac
from socialguard.core.events import Event

_EXPIRED_NEEDLE = f'"event":"{Event.AUDIT_EXPIRED}"'.encode()

# The writer always ends a line with seq, prev and (keyed) mac, in that order.
_TAIL = re.compile(rb',"seq":(\d+),"prev":"([^"\\]*)"(?:,"mac":"[0-9a-f]{64}")?\}$')


class BreakKind(enum.StrEnum):
    """How the chain is broken. Values are printed and in `--json`: never rename one."""

    EDITED = "edited"
    REMOVED = "removed"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    TORN = "torn"
    FORGED = "forged"
    UNSIGNED = "unsigned"
    START_MISSING = "start_missing"
    NEW_CHAIN = "new_chain"
    NOT_SIGNED = "not_signed"
    HEAD_MISSING = "head_missing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Break:
    """The first place where the log is not what the writer wrote."""

    kind: BreakKind
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


@dataclass(slots=True, kw_only=True)
class Verdict:
    """What verify found: counts, span, notes, and the first break if there is one."""

    events: int = 0
    files: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    head: str | None = None
    expected_head: str | None = None  # --expect-head: a head an earlier verify printed
    notes: list[str] = field(default_factory=list)
    problem: Break | None = None
    # Several chains read as one record (`run --workers N`): each chain's head, by its file.
    heads: dict[str, str | None] = field(default_factory=dict)
    # Every --expect-head given (one per chain), and which of the heads looked for are in it.
    expected_heads: list[str] = field(default_factory=list)
    found_heads: set[str] = field(default_factory=set)
    end: tuple[Path, int] | None = None  # the last whole event's file and line

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "files": self.files,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "head": self.head,
            "expected_head": self.expected_head,
            "expected_heads": self.expected_heads,
            "notes": self.notes,
            "heads": self.heads,
            "problem": None
            if self.problem is None
            else {
                "kind": str(self.problem.kind),
                "file": str(self.problem.file),
                "line": self.problem.line,
                "message": self.problem.message,
            },
        }


@dataclass(slots=True)
class _Line:
    """What verify needs from one line: where it is, its bytes, seq, prev and ts."""

    file: Path
    number: int
    raw: bytes
    seq: int | None
    prev: str | None
    ts: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.number}"


def _read(file: Path, number: int, raw: bytes) -> _Line | None:
    """The line's fields, or None when it is not a whole event (torn or damaged)."""
    match = _TAIL.search(raw, max(0, len(raw) - 400))
    if match is not None and raw.startswith(b"{"):
        return _Line(file, number, raw, int(match[1]), match[2].decode("ascii", "replace"))
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    seq, prev = event.get("seq"), event.get("prev")
    return _Line(
        file,
        number,
        raw,
        seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        prev if isinstance(prev, str) else None,
    )


def _ts(raw: bytes) -> str | None:
    try:
        value = json.loads(raw).get("ts")
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


HEAD_PATTERN = re.compile(r"[0-9a-f]{64}")


def verify(
    segments: Iterable[Segment],
    key: bytes | None = None,
    expect_head: str | None = None,
    *,
    look_for: Collection[str] = (),
) -> Verdict:
    """Walk the log in order and return the verdict (never raises on a damaged log's content;
    AuditError if a file cannot be read at all).

    `expect_head` is the head (last line's hash) an earlier verify printed: the log must still
    hold that line, which catches whole lines removed from its end since then. `look_for` are
    heads to find without requiring them (several chains: each head is in one of them); those
    the log holds are in the verdict's `found_heads`.
    """
    verdict = Verdict(expected_head=expect_head)
    checker = _Checker(verdict, key, {*look_for, *([expect_head] if expect_head else [])})
    for segment in segments:
        verdict.files += 1
        number = 0
        checker.lines = list(iter_lines(segment))
        for number, raw in enumerate(checker.lines, start=1):
            if not checker.feed(segment.path, number, raw):
                return verdict
        if number and not segment.compressed and not _ends_with_newline(segment.path):
            checker.unterminated(segment.path, number)
            if not verdict.ok:
                return verdict
    checker.finish()
    return verdict


def verify_live(
    list_segments: Callable[[], list[Segment]],
    key: bytes | None = None,
    expect_head: str | None = None,
    *,
    look_for: Collection[str] = (),
) -> Verdict:
    """verify() the log as `list_segments` finds it; if that fails, list and check once more.

    On the gateway the writer may rotate the active file or gzip a rotated one while verify
    reads (around midnight UTC): a file listed a moment ago is then gone, or the active file
    is a new one that chains to a file not listed. A second look at the files as they are now
    settles it; a real break is found again.
    """
    try:
        verdict = verify(list_segments(), key, expect_head, look_for=look_for)
    except AuditError:
        return verify(list_segments(), key, expect_head, look_for=look_for)
    if verdict.ok:
        return verdict
    return verify(list_segments(), key, expect_head, look_for=look_for)


def verify_chains(
    list_chains: Callable[[], list[list[Segment]]],
    key: bytes | None = None,
    expect_heads: Sequence[str] = (),
) -> Verdict:
    """verify_live() each chain (one per writer: the proxy's workers) and sum up: the record
    holds only if every chain holds.

    `expect_heads` are heads printed by an earlier verify, one per chain: each must be in a
    chain of its own, or lines were removed from the end of one. A chain no head was given for
    gets a note, since lines removed from its end would go unnoticed. One chain and at most one
    head is exactly verify_live().
    """
    chains = list_chains()
    if len(chains) <= 1 and len(expect_heads) <= 1:
        head = expect_heads[0] if expect_heads else None
        verdict = verify_live(lambda: next(iter(list_chains()), []), key, head)
        verdict.expected_heads = list(expect_heads)
        return verdict
    total = Verdict(
        expected_head=expect_heads[0] if len(expect_heads) == 1 else None,
        expected_heads=list(expect_heads),
    )
    found: list[set[str]] = []
    ends: list[tuple[Path, int]] = []
    for index, chain in enumerate(chains):
        name = str(chain[-1].path)

        def again(index: int = index) -> list[Segment]:
            listed = list_chains()
            return listed[index] if index < len(listed) else []

        verdict = verify_live(again, key, None, look_for=expect_heads)
        found.append(verdict.found_heads)
        ends.append(verdict.end or (chain[-1].path, 0))
        total.events += verdict.events
        total.files += verdict.files
        total.notes.extend(f"{name}: {note}" for note in verdict.notes)
        total.heads[name] = verdict.head
        if len(chains) == 1:
            total.head = verdict.head
        if verdict.first_ts and (total.first_ts is None or verdict.first_ts < total.first_ts):
            total.first_ts = verdict.first_ts
        if verdict.last_ts and (total.last_ts is None or verdict.last_ts > total.last_ts):
            total.last_ts = verdict.last_ts
        if total.problem is None and verdict.problem is not None:
            total.problem = verdict.problem
    if expect_heads and total.problem is None:
        _match_heads(total, list(expect_heads), found, ends)
    return total


def _match_heads(
    total: Verdict, heads: list[str], found: list[set[str]], ends: list[tuple[Path, int]]
) -> None:
    """Each head given in a chain of its own; a note for each chain without one."""
    names = list(total.heads)
    owner: dict[int, int] = {}  # chain index → the index of the head found in it
    for number, head in enumerate(heads):
        holders = [i for i, heads_in in enumerate(found) if head in heads_in]
        free = [i for i in holders if i not in owner]
        if free:
            owner[free[0]] = number
            continue
        if holders:
            taken = holders[0]
            file, line = ends[taken]
            total.problem = Break(
                kind=BreakKind.HEAD_MISSING,
                file=file,
                line=line,
                message=f"heads {owner[taken] + 1} and {number + 1} given with --expect-head "
                f"are both in the chain of {_chain_name(names[taken])}: give each chain's own "
                "head (its latest), one --expect-head per chain",
            )
            return
        without = [i for i in range(len(names)) if i not in owner]
        rest = [i for i in without if not any(h in found[i] for h in heads[number + 1 :])]
        which = rest[0] if len(rest) == 1 else None
        file, line = ends[which if which is not None else (without or [0])[0]]
        given = f"head {number + 1} of {len(heads)} given" if len(heads) > 1 else "the head given"
        if len(names) == 1:
            where, end = "is not in the log", "its end"
        elif which is not None:
            where = f"is in none of the {len(names)} chains"
            end = f"the end of {_chain_name(names[which])} (the one chain no head given is in)"
        else:
            where, end = f"is in none of the {len(names)} chains", "the end of one of them"
        total.problem = Break(
            kind=BreakKind.HEAD_MISSING,
            file=file,
            line=line,
            message=f"the line whose hash is {head} ({given} with --expect-head) {where}: "
            f"lines were removed from {end} since that head was noted (or the hash is from "
            "another log, or from a file that is not given here)",
        )
        return
    for index, name in enumerate(names):
        if index not in owner:
            total.notes.append(
                f"{name}: no --expect-head was given for this chain, so lines removed from its "
                "end cannot be detected (give each chain's latest head: one --expect-head per "
                "chain)"
            )


def _chain_name(name: str) -> str:
    return Path(name).name


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            return True
        f.seek(size - 1)
        return f.read(1) == b"\n"


class _Checker:
    """The walk's state: the previous line, the pending torn line, keys, retention records."""

    def __init__(self, verdict: Verdict, key: bytes | None, wanted: Collection[str]) -> None:
        self.verdict = verdict
        self.key = key
        self.wanted = frozenset(wanted)  # heads to look for (--expect-head)
        self.previous: _Line | None = None  # the last whole event
        self.previous_raw: bytes | None = None  # the last line of any kind
        self.torn: tuple[Path, int, bytes] | None = None
        self.first: _Line | None = None
        self.expired: list[dict[str, Any]] = []
        self.signed = 0
        self.unsigned_before_key = 0
        self.unchecked = 0
        self.unterminated_at: tuple[Path, int] | None = None
        self.lines: list[bytes] = []  # the current file's lines, to look ahead when one breaks

    def fail(self, kind: BreakKind, file: Path, number: int, message: str) -> bool:
        self.verdict.problem = Break(kind=kind, file=file, line=number, message=message)
        return False

    def feed(self, file: Path, number: int, raw: bytes) -> bool:
        """Check one line; False once the log is broken (the verdict then says where)."""
        line = _read(file, number, raw)
        if line is None:
            if self.torn is not None:
                tfile, tnumber, _ = self.torn
                return self.fail(
                    BreakKind.EDITED,
                    tfile,
                    tnumber,
                    "two damaged lines in a row: this is not what a crash leaves",
                )
            self.torn = (file, number, raw)
            self.previous_raw = raw
            return True
        if line.seq is None or line.prev is None:
            return self.fail(
                BreakKind.EDITED, file, number, "the line has no seq or prev: it was changed"
            )
        if not self._check_mac(line) or not self._check_link(line, line.seq, line.prev):
            return False
        self.verdict.events += 1
        if self.first is None:
            self.first = line
            self.verdict.first_ts = _ts(raw)
        if _EXPIRED_NEEDLE in raw:
            with contextlib.suppress(ValueError):
                self.expired.append({**json.loads(raw), "_where": line.where})
        self.previous = line
        self.previous_raw = raw
        return True

    def _check_mac(self, line: _Line) -> bool:
        signed = split_mac(line.raw)
        if self.key is None:
            if signed is not None:
                self.unchecked += 1
            elif self.unchecked:
                # Seen without the key: the writer signs every line once it has a key.
                return self.fail(
                    BreakKind.UNSIGNED,
                    line.file,
                    line.number,
                    "this line has no HMAC but lines before it do: it was added or rewritten "
                    "by someone without the key (or audit.hmac_key_file was removed from "
                    "policy.yaml, which must not happen to a signed log)",
                )
            return True
        if signed is None:
            if self.signed:
                return self.fail(
                    BreakKind.UNSIGNED,
                    line.file,
                    line.number,
                    "this line has no HMAC but lines before it do: it was added or rewritten "
                    "by someone without the key",
                )
            self.unsigned_before_key += 1
            return True
        body, mac = signed
        expected = hmac.new(self.key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            return self.fail(
                BreakKind.FORGED,
                line.file,
                line.number,
                "the HMAC does not match: the line was forged or edited without the key "
                "(or the key given is not the one the log was written with)",
            )
        self.signed += 1
        return True

    def _check_link(self, line: _Line, seq: int, prev: str) -> bool:
        previous = self.previous
        if self.previous_raw is None:
            return True  # the first line: settled in finish(), after every audit.expired
        torn = self.torn
        self.torn = None
        expected = hashlib.sha256(self.previous_raw).hexdigest()
        gap_allowed = 2 if torn is not None else 1
        if prev == expected:
            if torn is None and expected in self.wanted:
                self.verdict.found_heads.add(expected)
            if torn is not None:
                tfile, tnumber, traw = torn
                self.verdict.notes.append(
                    f"{tfile}:{tnumber}: a torn line ({len(traw)} bytes, cut short when the "
                    f"process stopped while writing it); the next start chained to it at "
                    f"{line.where}, so no complete event is missing"
                )
            if (
                previous is not None
                and previous.seq is not None
                and not previous.seq < seq <= previous.seq + gap_allowed
            ):
                return self.fail(
                    BreakKind.EDITED,
                    line.file,
                    line.number,
                    f"its seq {seq} does not follow {previous.seq} ({previous.where}) "
                    "although the hash does: this line was changed",
                )
            return True
        if torn is not None:
            tfile, tnumber, _ = torn
            return self.fail(
                BreakKind.EDITED,
                tfile,
                tnumber,
                "this line is not a whole event and the next line does not chain to it: "
                "it was changed (a crash leaves a torn line the next start chains to)",
            )
        return self._classify(line, seq, prev, previous)

    def _classify(self, line: _Line, seq: int, prev: str, previous: _Line | None) -> bool:
        if previous is None or previous.seq is None:
            return self.fail(
                BreakKind.EDITED, line.file, line.number, "does not chain to the line before it"
            )
        if prev.startswith(GENESIS_PREFIX):
            return self.fail(
                BreakKind.NEW_CHAIN,
                line.file,
                line.number,
                f"a new chain starts here after {previous.where}: the log was replaced or "
                "started again, or the files are not one log",
            )
        if seq == previous.seq + 1:
            return self.fail(
                BreakKind.EDITED,
                previous.file,
                previous.number,
                f"this line was changed after it was written: {line.where} was chained to "
                "different bytes",
            )
        later = self._find_later(line.number, previous.seq, seq)
        if later is not None:
            found_seq, found_number = later
            return self.fail(
                BreakKind.REORDERED,
                line.file,
                line.number,
                f"seq {seq} comes after seq {previous.seq} ({previous.where}) and seq "
                f"{found_seq} comes later ({line.file}:{found_number}): lines were moved out "
                "of order",
            )
        if seq > previous.seq + 1:
            missing = seq - previous.seq - 1
            first, last = previous.seq + 1, seq - 1
            span = f"seq {first}" if first == last else f"seq {first} to {last}"
            return self.fail(
                BreakKind.REMOVED,
                line.file,
                line.number,
                f"{missing} line{'s' if missing > 1 else ''} ({span}) removed between "
                f"{previous.where} and here",
            )
        return self.fail(
            BreakKind.REORDERED,
            line.file,
            line.number,
            f"seq {seq} comes after seq {previous.seq} ({previous.where}): lines were "
            "moved out of order",
        )

    def unterminated(self, file: Path, number: int) -> None:
        """The file's last line has no newline: the log was cut short after it."""
        if self.torn is None:
            # A whole event without its newline: complete, but the file was cut right there.
            self.unterminated_at = (file, number)
            return
        self.fail(
            BreakKind.TRUNCATED,
            file,
            number,
            "the last line is incomplete: the log was cut short here (the process stopped "
            "while writing it, or the file was truncated); every line before it chains",
        )

    def finish(self) -> None:
        verdict = self.verdict
        if self.torn is not None:
            tfile, tnumber, _ = self.torn
            self.fail(
                BreakKind.TORN if self.unterminated_at is None else BreakKind.TRUNCATED,
                tfile,
                tnumber,
                "the last line is incomplete (torn): the process stopped while writing it, or "
                "the file was truncated; every line before it chains. Starting the proxy "
                "again records the torn line and continues the chain from it",
            )
            return
        if self.unterminated_at is not None:
            ufile, unumber = self.unterminated_at
            verdict.notes.append(
                f"{ufile}:{unumber}: the last event has no newline after it: the file was cut "
                "right after it (events written after it, if any, cannot be known)"
            )
        if self.previous is not None:
            verdict.last_ts = _ts(self.previous.raw)
            verdict.head = hashlib.sha256(self.previous.raw).hexdigest()
            verdict.end = (self.previous.file, self.previous.number)
            if verdict.head in self.wanted:
                verdict.found_heads.add(verdict.head)
        first = self.first
        if first is not None and first.prev and not first.prev.startswith(GENESIS_PREFIX):
            self._settle_start(first)
            if not verdict.ok:
                return
            # The head given was the last line that retention removed: accounted for.
            if first.prev in self.wanted:
                verdict.found_heads.add(first.prev)
        if verdict.expected_head is not None and not self._check_head(verdict.expected_head):
            return
        if self.key is not None:
            if not self.signed and verdict.events:
                self.fail(
                    BreakKind.NOT_SIGNED,
                    first.file if first else Path(),
                    first.number if first else 0,
                    "a key was given but no line is signed with it: the log was written "
                    "without audit.hmac_key_file (restart the proxy after setting it), or it "
                    "was rewritten by someone without the key",
                )
                return
            if self.unsigned_before_key:
                verdict.notes.append(
                    f"the first {self.unsigned_before_key} events were written before the "
                    "HMAC key was set: they are hash-chained but not signed"
                )
        elif self.unchecked:
            verdict.notes.append(
                f"{self.unchecked} events carry an HMAC that was not checked: give the key "
                "(audit.hmac_key_file in policy.yaml, or --key-file) to check them"
            )

    def _check_head(self, expected: str) -> bool:
        """Whether the line with hash `expected` (a head printed by an earlier verify) is
        still in the chain; if not, lines were removed from the end since then."""
        if expected in self.verdict.found_heads:
            return True
        last = self.previous
        return self.fail(
            BreakKind.HEAD_MISSING,
            last.file if last else Path(),
            last.number if last else 0,
            f"the line whose hash is {expected} (the head given with --expect-head) is not in "
            "the log: lines at its end were removed since that head was noted (or the hash is "
            "from another log, or from a file that is not given here)",
        )

    def _find_later(self, number: int, before: int, seq: int) -> tuple[int, int] | None:
        """A line further on in this file whose seq belongs before `seq`: a reordering."""
        low, high = (before, seq) if seq > before else (seq - 1, before + 1)
        for offset, raw in enumerate(self.lines[number : number + 10_000], start=number + 1):
            match = _TAIL.search(raw, max(0, len(raw) - 400))
            if match is not None and low < int(match[1]) < high:
                return int(match[1]), offset
        return None

    def _settle_start(self, first: _Line) -> None:
        for event in reversed(self.expired):
            if event.get("last_hash") == first.prev:
                last_seq = event.get("last_seq")
                if isinstance(last_seq, int) and first.seq != last_seq + 1:
                    break
                self.verdict.notes.append(
                    f"{event.get('events')} earlier events ({event.get('from_ts')} to "
                    f"{event.get('to_ts')}, seq {event.get('first_seq')} to {last_seq}) were "
                    f"removed by retention ({event.get('retention_days')} days), recorded by "
                    f"audit.expired at {event['_where']}"
                )
                return
        self.fail(
            BreakKind.START_MISSING,
            first.file,
            first.number,
            "the log's first line continues from a line that is not here, and no "
            "audit.expired event accounts for it: earlier lines or files were removed "
            "(or give the whole log: its folder, or the active file beside its rotated files)",
        )
