"""The audit log: one JSON line per policy-relevant event, hash-chained and on disk before use.

Only this module imports structlog, and only this module writes the log. Each line carries
`seq` (its place in the log, counted across restarts and files) and `prev`, the SHA-256 of the
previous line's bytes, so removing, editing or reordering lines is detectable; with a key
(`audit.hmac_key_file`) each line also ends with `mac`, an HMAC-SHA256 of everything before it,
so that someone who can write the log but does not hold the key cannot rewrite it. Each event is
written and synced to disk (per event, or by group commit) before `record` returns, so before
the caller acts on the decision it records. Closed files are rotated daily (or by size),
gzipped, and deleted after the retention period, with an `audit.expired` event that says what
was removed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import errno
import gzip
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from socialguard.audit.files import (
    AuditError,
    Segment,
    first_line_of_file,
    last_line,
    last_line_of_file,
    read_bytes,
    rotated_name,
    rotated_segments,
    same_content,
    superseded_copies,
)
from socialguard.audit.printable import printable
from socialguard.core.events import Event

__all__ = ["AuditError"]

# Every access event carries every one of these keys (None where it does not apply).
EVENT_FIELDS = (
    "ts",
    "event",
    "id",
    "client_ip",
    "user",
    "device",
    "zone",
    "host",
    "service",
    "category",
    "reason",
    "exemption_id",
    "purpose",
    "policy_digest",
)
GENESIS_PREFIX = "genesis:"
MAC_FIELD = ',"mac":"'
# `,"mac":"` + 64 hex digits + `"}`: a keyed line ends with exactly this many bytes of MAC.
MAC_SUFFIX_LENGTH = len(MAC_FIELD) + 64 + 2
MIN_KEY_BYTES = 16
DURABILITIES = ("fsync", "group")
ROTATIONS = ("daily", "size")


def new_event_id() -> str:
    """A reference short enough to read over the phone: SG- and ten characters."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I to misread
    return "SG-" + "".join(secrets.choice(alphabet) for _ in range(10))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def line_mac(key: bytes, body: bytes) -> str:
    """The HMAC of a line's bytes up to (not including) its `,"mac":"…"` ending."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def split_mac(line: bytes) -> tuple[bytes, str] | None:
    """(the signed body as it was before the MAC was added, the MAC), or None if unkeyed."""
    if len(line) < MAC_SUFFIX_LENGTH or not line.endswith(b'"}'):
        return None
    tail = line[-MAC_SUFFIX_LENGTH:]
    if not tail.startswith(MAC_FIELD.encode()):
        return None
    return line[:-MAC_SUFFIX_LENGTH] + b"}", tail[len(MAC_FIELD) : -2].decode("ascii", "replace")


def ts_stamp(when: dt.datetime) -> str:
    """UTC, milliseconds, `Z`: every ts in the log has this one shape, so strings sort as times."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_hmac_key(path: Path, *, fix: str | None = None) -> bytes:
    """The key in `path` (its text, without surrounding white space); AuditError says the fix.

    `fix` replaces the advice for a missing, unreadable-as-a-file or too short key. The
    default suits the writer, which may start a new key; a reader of an existing log must not
    (every line signed with the old key would then look forged), so it passes its own.
    """
    if fix is None:
        fix = (
            f"create it with:  head -c 32 /dev/urandom | base64 > {path} && chmod 600 {path}  "
            "(or remove audit.hmac_key_file from policy.yaml)"
        )
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        raise AuditError(f"{path}: the audit HMAC key file does not exist — {fix}") from None
    except IsADirectoryError:
        raise AuditError(f"{path}: the audit HMAC key file is a folder — {fix}") from None
    except OSError as error:
        raise AuditError(
            f"{path}: cannot read the audit HMAC key file: {error.strerror} — give the "
            "socialguard user read access (chmod 600, owned by that user)"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise AuditError(
            f"{path}: the audit HMAC key is too short ({len(key)} bytes; at least "
            f"{MIN_KEY_BYTES}) — {fix}"
        )
    return key


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditOptions:
    """How the log is written: its key, its durability, when it rotates, how long it is kept.

    The defaults are what a practice gets without an `audit:` section in policy.yaml.
    """

    hmac_key: bytes | None = None
    durability: str = "group"
    group_commit_ms: float = 0.0
    rotate: str = "daily"
    rotate_size_bytes: int = 64 * 1024 * 1024
    retention_days: int = 396
    # policy.yaml's `site:`: stamped on every event, so many gateways' logs stay apart centrally.
    site: str | None = None

    def __post_init__(self) -> None:
        if self.durability not in DURABILITIES:
            raise ValueError(f"durability must be one of {DURABILITIES}")
        if self.rotate not in ROTATIONS:
            raise ValueError(f"rotate must be one of {ROTATIONS}")


def audit_options(settings: Any) -> AuditOptions:
    """AuditOptions from validated Settings; reads the key file (AuditError if it is unusable)."""
    key_file: Path | None = settings.audit_hmac_key_file
    return AuditOptions(
        hmac_key=load_hmac_key(key_file) if key_file is not None else None,
        durability=settings.audit_durability,
        group_commit_ms=settings.audit_group_commit_ms,
        rotate=settings.audit_rotate,
        rotate_size_bytes=settings.audit_rotate_size_mb * 1024 * 1024,
        retention_days=settings.audit_retention_days,
        site=getattr(settings, "site", None),
    )


def _fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in `directory` itself survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parse(line: bytes | None) -> dict[str, Any]:
    if not line:
        return {}
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _day_of(event: Mapping[str, Any]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(event.get("ts", ""))[:10])
    except ValueError:
        return None


class _ChainedFile:
    """structlog's 'logger': appends rendered lines to the active file and rotates it.

    Not thread-safe by itself: AuditLog calls it under its lock.
    """

    def __init__(self, path: Path, options: AuditOptions, clock: Callable[[], dt.datetime]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.options = options
        self._clock = clock
        self.torn: bytes | None = None
        self.today: dt.date | None = None  # the day of the event being written
        # Before the torn line (if any) is ended: the last whole event, for seq.
        last = last_line_of_file(path)
        self._fd = self._open()
        self.size = os.fstat(self._fd).st_size
        if self.size:
            with path.open("rb") as f:
                f.seek(self.size - 1)
                if f.read(1) != b"\n":
                    # A torn last line from a crash: end it so it is never merged with ours,
                    # and keep its bytes so the chain (and the auditor) can account for it.
                    f.seek(max(0, self.size - 65536))
                    self.torn = f.read().rpartition(b"\n")[2]
                    os.write(self._fd, b"\n")
                    os.fsync(self._fd)
                    self.size += 1
        if last is None:
            # No whole line here (a new file, or one holding only a line torn by a crash just
            # after rotation): the chain left off at the end of the newest rotated file.
            last = self._last_rotated_line()
        if self.torn is not None:
            self.prev = line_hash(self.torn)
        else:
            self.prev = line_hash(last) if last else GENESIS_PREFIX + secrets.token_hex(8)
        last_event = _parse(last)
        seq = last_event.get("seq")
        # A torn line took the next number when it was being written.
        self.seq = (seq if isinstance(seq, int) else 0) + (1 if self.torn is not None else 0)
        first = _parse(first_line_of_file(path)) if self.size else {}
        self.day: dt.date | None = _day_of(first) if first else None
        self.synced_seq = self.seq
        self.written_seq = self.seq
        self.rotated = False  # set by rotate(), cleared by AuditLog once it has tidied up
        # Set when a write failed and cutting its part-line off failed too: retried first.
        self._needs_truncate = False

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def _last_rotated_line(self) -> bytes | None:
        """Where the chain left off when the active file is new: the newest rotated file."""
        for segment in reversed(rotated_segments(self.path)):
            line = last_line(segment)
            if line is not None:
                return line
        return None

    @property
    def fd(self) -> int:
        return self._fd

    def next_seq(self) -> int:
        return self.seq + 1

    def msg(self, line: str) -> None:
        """Append one line; OSError (nothing half-written left behind) if it could not be.

        The chain moves on as soon as the whole line is in the file, before any fsync: the
        line is there, so the next one must chain to it even if this sync fails. A sync that
        fails raises (the caller then refuses the request) and the next sync covers the line.
        """
        data = line.encode("utf-8") + b"\n"
        if self._needs_truncate:
            self._truncate()
        self._maybe_rotate(len(data))
        self._write_all(data)
        self.size += len(data)
        self.prev = line_hash(data)
        self.seq += 1
        self.written_seq = self.seq
        if self.day is None:
            self.day = self._today()
        if self.options.durability == "fsync":
            os.fsync(self._fd)
            self.synced_seq = self.seq

    def _write_all(self, data: bytes) -> None:
        """Write every byte (a short write is continued), or cut the file back and raise."""
        done = 0
        try:
            while done < len(data):
                done += self._write_some(data[done:])
        except OSError:
            if done:
                # Part of the line is in the file: remove it, so the next line starts clean.
                self._needs_truncate = True
                with contextlib.suppress(OSError):
                    self._truncate()
            raise

    def _write_some(self, data: bytes) -> int:
        written = os.write(self._fd, data)
        if written <= 0:  # nothing taken and no error: treat as a full disk, never spin
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return written

    def truncated_to(self) -> int | None:
        """The file's size when something outside cut it shorter than what was written (e.g.
        logrotate's copytruncate), else None; the writer then carries on from that size."""
        actual = os.fstat(self._fd).st_size
        if actual >= self.size:
            return None
        self.size = actual
        return actual

    def health(self) -> str | None:
        """Why the next event may not be written (None when it can be): the file moved, replaced
        or removed under the writer, its folder not writable, or the disk full."""
        try:
            on_disk = os.stat(self.path)
        except OSError as error:
            return f"the audit log {self.path} is not there ({error.strerror}): moved or removed"
        held = os.fstat(self._fd)
        if (on_disk.st_dev, on_disk.st_ino) != (held.st_dev, held.st_ino):
            return f"the audit log {self.path} was replaced under the proxy (it writes elsewhere)"
        if not os.access(self.path.parent, os.W_OK) or not os.access(self.path, os.W_OK):
            return f"the audit log {self.path} or its folder is not writable"
        disk = os.statvfs(self.path.parent)
        if disk.f_bavail * disk.f_frsize < 1024 * 1024:
            return f"the disk holding the audit log {self.path} is full"
        return None

    def _truncate(self) -> None:
        """Cut the file back to its last whole line (after a failed write)."""
        os.ftruncate(self._fd, self.size)
        self._needs_truncate = False

    info = msg

    def _today(self) -> dt.date:
        return self.today or self._clock().astimezone(dt.UTC).date()

    def _maybe_rotate(self, incoming: int) -> None:
        if self.size == 0:
            return
        if self.options.rotate == "daily":
            due = self.day is not None and self._today() != self.day
        else:
            due = self.size + incoming > self.options.rotate_size_bytes
        if due:
            self.rotate()

    def rotate(self) -> Path:
        """Close the active file under a dated name and start a new one; the chain carries on."""
        os.fsync(self._fd)
        self.synced_seq = self.written_seq
        day = self.day or self._today()
        number = 1
        while True:
            target = rotated_name(self.path, day, number)
            if not target.exists() and not Path(f"{target}.gz").exists():
                break
            number += 1
        # Until the new file is open the old one stays the active file, so a failure here
        # leaves the log as it was and the next event tries again.
        os.rename(self.path, target)
        try:
            fd = self._open()
        except OSError:
            os.rename(target, self.path)
            raise
        os.close(self._fd)
        self._fd = fd
        _fsync_dir(self.path.parent)
        self.size = 0
        self.day = None
        self.rotated = True
        return target

    def close(self) -> None:
        os.close(self._fd)


class AuditLog:
    """Writes audit events; thread-safe, and each `record` returns the event as written."""

    def __init__(
        self,
        path: Path,
        *,
        console: TextIO | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        new_id: Callable[[], str] = new_event_id,
        options: AuditOptions | None = None,
        console_mode: str = "full",
    ) -> None:
        self.path = path
        # "counts": the console (the journal, kept outside the audit chain) never carries names,
        # addresses or hosts; "full" writes human_line for every event, for debugging.
        self._console_counts = ConsoleCounts(clock) if console_mode == "counts" else None
        self.options = options or AuditOptions()
        self._clock = clock
        self._file = _ChainedFile(path, self.options, clock)
        self._console = console
        self._new_id = new_id
        self._lock = threading.Lock()
        self._synced = threading.Condition()
        self._syncing = False
        self._written: dict[str, Any] = {}
        self._housekeeper = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="socialguard-audit"
        )
        self._closed = False
        self.last_error: str | None = None  # the last write's failure, cleared by a success
        self._logger = structlog.wrap_logger(
            self._file,
            processors=[self._stamp, self._render],
            wrapper_class=structlog.BoundLogger,  # passes the method name through
            cache_logger_on_first_use=False,
        )
        torn = self._file.torn
        if torn is not None:
            self.record(
                Event.AUDIT_TORN,
                {
                    "torn_bytes": len(torn),
                    "torn_hash": line_hash(torn),
                    "detail": "the last line was cut short (the process stopped while writing "
                    "it); it is kept as it was and the chain continues from it",
                },
            )
        self._housekeep()

    def _stamp(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = self._clock()
        self._file.today = now.astimezone(dt.UTC).date()
        event.setdefault("ts", ts_stamp(now))
        event.setdefault("id", self._new_id())
        if self.options.site is not None:
            event["site"] = self.options.site
        event.pop("mac", None)  # only the writer signs
        event["seq"] = self._file.next_seq()
        event["prev"] = self._file.prev
        return event

    def _render(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> str:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
        written = dict(event)
        key = self.options.hmac_key
        if key is not None:
            mac = line_mac(key, line.encode("utf-8"))
            line = f'{line[:-1]}{MAC_FIELD}{mac}"}}'
            written["mac"] = mac
        self._written = written
        return line

    def record(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Write one event and have it on disk before returning it."""
        cut: int | None = None
        with self._lock:
            try:
                cut = self._file.truncated_to()
                if cut is not None:
                    self._logger.info(Event.AUDIT_TRUNCATED, **self._truncated_fields(cut))
                self._logger.info(event, **fields)
            except Exception as error:
                self.last_error = f"writing the audit log failed: {error}"
                raise
            self.last_error = None
            if cut is not None:
                self._warn(
                    f"the audit log {self.path} was cut short to {cut} bytes by something else "
                    "(logrotate's copytruncate?); recorded as audit.truncated. socialguard "
                    "rotates its own log: remove it from logrotate."
                )
            written = self._written
            seq = self._file.written_seq
            rotated, self._file.rotated = self._file.rotated, False
        if self.options.durability == "group":
            self._sync_to(seq)
        if rotated:
            self._housekeep()
        if self._console is not None:
            if self._console_counts is None:
                text: str | None = human_line(written) + "\n"
            else:
                text = self._console_counts.line(written)
            if text:
                self._console.write(text)
                self._console.flush()
        return written

    def _truncated_fields(self, size: int) -> dict[str, Any]:
        return {
            "size_now": size,
            "detail": "the active audit log was truncated by another program (logrotate's "
            "copytruncate?) — the events it held are gone from this file and the chain breaks "
            "here; socialguard rotates its own log, so nothing else may rotate or truncate it",
        }

    def health(self) -> str | None:
        """None when the log can be written, else why not (for /healthz)."""
        with self._lock:
            problem = self._file.health()
        return problem or self.last_error

    def _sync_to(self, seq: int) -> None:
        """Group commit: one fsync covers every line written before it started.

        The first waiter syncs after gathering for at most `group_commit_ms`; the others wait
        for it, so no record waits longer than about two syncs and that window.
        """
        with self._synced:
            while self._file.synced_seq < seq:
                if self._syncing:
                    self._synced.wait(0.5)
                    continue
                self._syncing = True
                self._synced.release()
                synced = 0  # stays 0 if the sync fails: nothing more is known to be on disk
                try:
                    if self.options.group_commit_ms > 0:
                        time.sleep(self.options.group_commit_ms / 1000)
                    with self._lock:
                        target = self._file.written_seq
                        fd = os.dup(self._file.fd)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    synced = target
                finally:
                    # A failed sync raises to this caller; the others waiting try again.
                    self._synced.acquire()
                    self._syncing = False
                    self._file.synced_seq = max(self._file.synced_seq, synced)
                    self._synced.notify_all()

    def rotate(self) -> Path:
        """Rotate now (daily rotation happens by itself at the first event of a new day)."""
        with self._lock:
            target = self._file.rotate()
        self._housekeep()
        return target

    # -- housekeeping: compress closed files, delete expired ones ---------------------------
    def _housekeep(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(RuntimeError):  # shutting down: the next start finishes it
            self._housekeeper.submit(self._housekeeping)

    def _housekeeping(self) -> None:
        try:
            self._finish_compressions()
            for segment in rotated_segments(self.path):
                if not segment.compressed:
                    compress(segment.path)
            self.expire()
        except (OSError, AuditError) as error:
            # The log itself is intact; the files stay until the next attempt succeeds.
            self._warn(f"audit housekeeping failed, will retry at the next rotation: {error}")

    def _finish_compressions(self) -> None:
        """Tidy what a crash during compress() left: a plain file beside its complete gzip is
        removed (the gzip is read to its end and compared first; a gzip that does not match is
        made again from the plain file). A half-written `.gz.partial` is simply written again."""
        directory = self.path.parent
        for plain, compressed in superseded_copies(self.path):
            if same_content(plain, compressed):
                plain.unlink()
                _fsync_dir(directory)
            else:
                compress(plain)

    def _warn(self, message: str) -> None:
        stream = self._console or sys.stderr
        stream.write(f"socialguard: {message}\n")
        stream.flush()

    def expire(self) -> dict[str, Any] | None:
        """Delete rotated files whose every event is older than the retention period.

        The `audit.expired` event that names the range is written before any file is removed,
        so a crash can leave a file that should be gone, never a gap nobody explained.
        """
        now = self._clock()
        cutoff = ts_stamp(now - dt.timedelta(days=self.options.retention_days))
        expired: list[tuple[Segment, list[bytes]]] = []
        for segment in rotated_segments(self.path):
            lines = [ln for ln in read_bytes(segment).split(b"\n") if ln.strip()]
            last = _parse(lines[-1]) if lines else {}
            if not lines or str(last.get("ts", "")) >= cutoff:
                break
            expired.append((segment, lines))
        if not expired:
            return None
        first_line, last_line_ = expired[0][1][0], expired[-1][1][-1]
        first, last = _parse(first_line), _parse(last_line_)
        event = self.record(
            Event.AUDIT_EXPIRED,
            {
                "files": [s.path.name for s, _ in expired],
                "events": sum(len(lines) for _, lines in expired),
                "from_ts": first.get("ts"),
                "to_ts": last.get("ts"),
                "first_seq": first.get("seq"),
                "last_seq": last.get("seq"),
                "first_prev": first.get("prev"),
                "last_hash": line_hash(last_line_),
                "retention_days": self.options.retention_days,
                "detail": f"removed by retention: events older than "
                f"{self.options.retention_days} days",
            },
        )
        for segment, _ in expired:
            segment.path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)
        return event

    def close(self) -> None:
        """Finish housekeeping, then close the file."""
        self._closed = True
        self._housekeeper.shutdown(wait=True)
        with self._lock:
            try:
                if self._file.synced_seq < self._file.written_seq:
                    os.fsync(self._file.fd)
            finally:
                self._file.close()


def compress(path: Path) -> Path:
    """Gzip a closed file in place of it: written aside, synced, renamed, then the original
    removed, so at every instant one complete copy exists."""
    target = path.with_name(path.name + ".gz")
    partial = path.with_name(path.name + ".gz.partial")
    with path.open("rb") as source, partial.open("wb") as raw:
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as zipped:
            shutil.copyfileobj(source, zipped, 1 << 20)
        raw.flush()
        os.fsync(raw.fileno())
    os.chmod(partial, 0o640)
    os.replace(partial, target)
    _fsync_dir(path.parent)
    path.unlink()
    _fsync_dir(path.parent)
    return target


def human_line(event: Mapping[str, Any]) -> str:
    """One readable console line for an event (the file keeps the full JSON).

    Values may have come from a client (a Host header with a line break in it): control
    characters are escaped, so one event is always exactly one line.
    """
    parts = [str(event.get("ts", "")), str(event.get("event", ""))]
    for key in ("user", "client_ip", "host", "service", "reason", "exemption_id", "id"):
        value = event.get(key)
        if value:
            parts.append(f"{key}={value}")
    detail = event.get("detail") or event.get("message")
    if detail:
        parts.append(f"— {detail}")
    return printable(" ".join(parts))


class ConsoleCounts:
    """The console without personal data: access events only counted (a summary line at most
    once a minute, at the next event), other events as their name, id and — for policy and
    audit events, which name files, never people — their detail."""

    EVERY = dt.timedelta(seconds=60)

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._since: dt.datetime | None = None
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def line(self, event: Mapping[str, Any]) -> str | None:
        name = str(event.get("event", ""))
        now = self._clock()
        with self._lock:
            if self._since is None:
                self._since = now
            if name.startswith("access."):
                self._counts[name] = self._counts.get(name, 0) + 1
                if now - self._since < self.EVERY:
                    return None
                return self._summary(now)
            summary = self._summary(now) if self._counts else ""
        parts = [str(event.get("ts", "")), name, f"id={event.get('id', '')}"]
        detail = event.get("detail")
        if detail and name.startswith(("policy.", "audit.")):
            parts.append(f"— {detail}")
        return summary + " ".join(parts) + "\n"

    def _summary(self, now: dt.datetime) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(self._counts.items()))
        since = ts_stamp(self._since or now)
        self._counts.clear()
        self._since = now
        return f"{ts_stamp(now)} counts since {since}: {counts}\n"


def console_stream() -> TextIO:
    return sys.stderr
