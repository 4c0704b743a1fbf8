"""Where the audit log's files are and how to read them: the active file and its rotated,
usually gzipped, predecessors, in chain order.

Reads only; the writer (`events`) is the one module that changes these files. No mitmproxy, no
structlog: verify, search and report use this on a copy of the log as well as on the gateway.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class AuditError(Exception):
    """A problem with the audit log or its key that a person must fix; the message says how."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One file of the log. `day` is the UTC date of its first event (None for the active file)."""

    path: Path
    day: dt.date | None
    number: int = 1

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"

    @property
    def sort_key(self) -> tuple[int, dt.date, int]:
        # The active file is always last: rotated files hold what was written before it.
        if self.day is None:
            return (1, dt.date.max, 0)
        return (0, self.day, self.number)


def rotated_pattern(active: Path) -> re.Pattern[str]:
    """`audit.jsonl` → matches `audit.2026-11-24.jsonl`, `audit.2026-11-24.2.jsonl.gz`, …"""
    stem, suffix = _split(active)
    return re.compile(
        rf"{re.escape(stem)}\.(\d{{4}}-\d{{2}}-\d{{2}})(?:\.(\d+))?{re.escape(suffix)}(\.gz)?"
    )


def _split(active: Path) -> tuple[str, str]:
    name = active.name
    suffix = active.suffix if active.suffix else ""
    return name[: len(name) - len(suffix)] if suffix else name, suffix


def rotated_name(active: Path, day: dt.date, number: int) -> Path:
    stem, suffix = _split(active)
    extra = f".{number}" if number > 1 else ""
    return active.with_name(f"{stem}.{day.isoformat()}{extra}{suffix}")


def rotated_segments(active: Path) -> list[Segment]:
    """The rotated files beside `active`, oldest first; a file both plain and gzipped (a
    compression cut short by a crash) is listed once, as its complete gzip."""
    pattern = rotated_pattern(active)
    found: dict[tuple[dt.date, int], Segment] = {}
    try:
        names = os.listdir(active.parent)
    except FileNotFoundError:
        return []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        try:
            day = dt.date.fromisoformat(match[1])
        except ValueError:
            continue
        number = int(match[2] or 1)
        segment = Segment(path=active.parent / name, day=day, number=number)
        key = (day, number)
        if key not in found or segment.compressed:
            found[key] = segment
    return sorted(found.values(), key=lambda s: s.sort_key)


def superseded_copies(active: Path) -> list[tuple[Path, Path]]:
    """(plain, gzip) pairs of rotated files present both ways: a compression that a crash cut
    short between writing the gzip and removing the plain file. Oldest first."""
    pattern = rotated_pattern(active)
    try:
        names = set(os.listdir(active.parent))
    except FileNotFoundError:
        return []
    return [
        (active.parent / name, active.parent / f"{name}.gz")
        for name in sorted(names)
        if f"{name}.gz" in names and (match := pattern.fullmatch(name)) and not match[3]
    ]


def same_content(plain: Path, compressed: Path) -> bool:
    """Whether the gzip reads to its end without error and holds exactly the plain file."""
    block = 1 << 20
    try:
        with plain.open("rb") as original, gzip.open(compressed, "rb") as unzipped:
            while True:
                expected = original.read(block)
                if unzipped.read(len(expected) or 1) != expected:
                    return False
                if not expected:
                    return True
    except (OSError, EOFError, zlib.error):
        return False


def log_segments(active: Path) -> list[Segment]:
    """The whole log that `active` heads: rotated files oldest first, then `active` if present."""
    segments = rotated_segments(active)
    if active.is_file():
        segments.append(Segment(path=active, day=None))
    return segments


_WORKER = re.compile(r"\.w([1-9]\d{0,2})$")


def worker_path(active: Path, index: int) -> Path:
    """Worker `index`'s own log beside `active`: `audit.jsonl` → `audit.w2.jsonl`.

    Each worker of `run --workers N` keeps its own chain (one writer per chain); readers given
    `active` read them all as one record (`chains_of`).
    """
    stem, suffix = _split(active)
    return active.with_name(f"{stem}.w{index}{suffix}")


def worker_actives(active: Path) -> list[Path]:
    """The workers' logs beside `active` (present as an active file or only as rotated files),
    in worker order."""
    stem, suffix = _split(active)
    pattern = re.compile(
        rf"{re.escape(stem)}\.w([1-9]\d{{0,2}})(?:\.\d{{4}}-\d{{2}}-\d{{2}}(?:\.\d+)?)?"
        rf"{re.escape(suffix)}(?:\.gz)?"
    )
    try:
        names = os.listdir(active.parent)
    except FileNotFoundError:
        return []
    found = {int(m[1]) for name in names if (m := pattern.fullmatch(name))}
    return [worker_path(active, index) for index in sorted(found)]


def chains_of(active: Path) -> list[list[Segment]]:
    """Every chain that `active` names: its own log, then each worker's; empty ones left out."""
    chains = [log_segments(a) for a in (active, *worker_actives(active))]
    return [chain for chain in chains if chain]


def chains_for(paths: list[Path], default: Path) -> list[list[Segment]]:
    """What the user named, split into chains (one per writer), each in chain order.

    An active file brings its workers' logs; a folder brings every log in it.
    """
    if not paths:
        paths = [default]
    actives: list[Path] = []
    loose: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = _actives_in(path)
            if not found:
                segments_for([path], default)  # raises the usual message
            actives.extend(found)
        elif path.is_file() and _classify(path).day is None:
            actives.extend([path, *worker_actives(path)])
        elif path.is_file():
            loose.append(path)
        elif worker_actives(path):  # only the workers' logs exist (run --workers)
            actives.extend(worker_actives(path))
        else:
            segments_for([path], default)  # raises the usual message
    chains: list[list[Segment]] = []
    seen: set[Path] = set()
    for active in actives:
        if active.resolve() in seen:
            continue
        seen.add(active.resolve())
        chain = log_segments(active)
        if chain:
            chains.append(chain)
    if loose:
        chains.insert(0, segments_for(loose, default))
    return chains


def segments_for(paths: list[Path], default: Path) -> list[Segment]:
    """What the user named: a directory, the active file (with its rotated files) or files."""
    if not paths:
        paths = [default]
    segments: list[Segment] = []
    for path in paths:
        if path.is_dir():
            actives = _actives_in(path)
            for active in actives:
                segments.extend(log_segments(active))
            if not actives:
                raise AuditError(
                    f"{path}: no audit log (*.jsonl, or rotated *.YYYY-MM-DD.jsonl[.gz]) in this "
                    "folder — check the path"
                )
        elif path.is_file():
            segment = _classify(path)
            if segment.day is None:
                segments.extend(rotated_segments(path))
            segments.append(segment)
        else:
            raise AuditError(
                f"{path}: no such file — check the path (see audit.path in policy.yaml)"
            )
    unique = list({s.path.resolve(): s for s in segments}.values())
    return sorted(unique, key=lambda s: (s.sort_key[0], s.sort_key[1], s.sort_key[2]))


_ROTATED_NAME = re.compile(r"(.+?)\.\d{4}-\d{2}-\d{2}(?:\.\d+)?(\.jsonl)(?:\.gz)?")


def _actives_in(folder: Path) -> list[Path]:
    """The logs in a folder, by their active file's path, whether that file is there or only
    its rotated (perhaps all gzipped) files are, as in an archive copy."""
    actives: set[Path] = set()
    for entry in folder.iterdir():
        if entry.suffix == ".jsonl" and "." not in _WORKER.sub("", entry.stem):
            actives.add(entry)
            continue
        match = _ROTATED_NAME.fullmatch(entry.name)
        if match is not None and "." not in _WORKER.sub("", match[1]):
            actives.add(folder / f"{match[1]}{match[2]}")
    return sorted(actives)


def _classify(path: Path) -> Segment:
    match = re.fullmatch(r".+?\.(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.[^.]+(\.gz)?", path.name)
    if match:
        try:
            return Segment(
                path=path, day=dt.date.fromisoformat(match[1]), number=int(match[2] or 1)
            )
        except ValueError:
            pass
    return Segment(path=path, day=None)


def read_bytes(segment: Segment) -> bytes:
    """The file's content, decompressed; a damaged gzip is an AuditError naming the file."""
    try:
        if segment.compressed:
            return gzip.decompress(segment.path.read_bytes())
        return segment.path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        if (
            isinstance(error, OSError)
            and not isinstance(error, gzip.BadGzipFile)
            and error.strerror
        ):
            raise AuditError(f"{segment.path}: cannot read it: {error.strerror}") from None
        raise AuditError(
            f"{segment.path}: the compressed file is damaged ({error}) — restore it from backup"
        ) from None


def iter_lines(segment: Segment) -> Iterator[bytes]:
    """Each line's bytes without its newline; an unterminated last piece is yielded too."""
    data = read_bytes(segment)
    if not data:
        return
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    yield from lines


def last_line(segment: Segment) -> bytes | None:
    """The last complete line of a segment (read from the end of a plain file)."""
    if not segment.compressed:
        return last_line_of_file(segment.path)
    complete = read_bytes(segment).split(b"\n")[:-1]
    for line in reversed(complete):
        if line.strip():
            return line
    return None


def last_line_of_file(path: Path) -> bytes | None:
    """The last newline-terminated line of a plain file, without reading all of it."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            block = 65536
            while True:
                start = max(0, size - block)
                f.seek(start)
                tail = f.read(size - start)
                complete = tail[: tail.rfind(b"\n") + 1]
                lines = [line for line in complete.split(b"\n") if line.strip()]
                # Unless the tail reaches the file's start, its first piece may be partial.
                if start == 0:
                    return lines[-1] if lines else None
                if len(lines) >= 2:
                    return lines[-1]
                block *= 4
    except FileNotFoundError:
        return None


def first_line_of_file(path: Path) -> bytes | None:
    """The first complete line of a plain file."""
    try:
        with path.open("rb") as f:
            line = f.readline(1 << 20)
    except FileNotFoundError:
        return None
    return line.rstrip(b"\n") if line.endswith(b"\n") else None
