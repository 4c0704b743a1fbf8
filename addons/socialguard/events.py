"""The audit log: one JSON line per policy-relevant event, hash-chained and on disk before use.

Only this module imports structlog. Each line carries `prev`, the SHA-256 of the previous
line's bytes, so removing, editing or reordering lines is detectable. Each event is written
and fsync'd before the caller acts on the decision it records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

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


def new_event_id() -> str:
    """A reference short enough to read over the phone: SG- and ten characters."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I to misread
    return "SG-" + "".join(secrets.choice(alphabet) for _ in range(10))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _last_line(path: Path) -> bytes | None:
    """The last complete line of the file, read from its end."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return None
            f.seek(max(0, size - 65536))
            tail = f.read()
    except FileNotFoundError:
        return None
    lines = tail.splitlines(keepends=True)
    complete = [ln for ln in lines if ln.endswith(b"\n") and ln.strip()]
    return complete[-1] if complete else None


class _ChainedFile:
    """structlog's 'logger': appends rendered lines and fsyncs each one."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        size = os.fstat(self._fd).st_size
        if size:
            with path.open("rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    # A torn last line from a crash: end it so it is never merged with ours.
                    os.write(self._fd, b"\n")
        last = _last_line(path)
        self.prev = line_hash(last) if last else GENESIS_PREFIX + secrets.token_hex(8)

    def msg(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        os.write(self._fd, data)
        os.fsync(self._fd)
        self.prev = line_hash(data)

    info = msg

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
    ) -> None:
        self.path = path
        self._file = _ChainedFile(path)
        self._console = console
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.Lock()
        self._written: dict[str, Any] = {}
        self._logger = structlog.wrap_logger(
            self._file,
            processors=[self._stamp, self._render],
            wrapper_class=structlog.BoundLogger,  # passes the method name through
            cache_logger_on_first_use=False,
        )

    def new_id(self) -> str:
        return self._new_id()

    def _stamp(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        stamp = self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event.setdefault("ts", stamp)
        event.setdefault("id", self._new_id())
        event["prev"] = self._file.prev
        return event

    def _render(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> str:
        self._written = dict(event)
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)

    def record(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Write one event (and fsync it) before returning it."""
        with self._lock:
            self._logger.info(event, **fields)
            written = self._written
        if self._console is not None:
            self._console.write(human_line(written) + "\n")
            self._console.flush()
        return written

    def close(self) -> None:
        self._file.close()


def human_line(event: Mapping[str, Any]) -> str:
    """One readable console line for an event (the file keeps the full JSON)."""
    parts = [str(event.get("ts", "")), str(event.get("event", ""))]
    for key in ("user", "client_ip", "host", "service", "reason", "exemption_id", "id"):
        value = event.get(key)
        if value:
            parts.append(f"{key}={value}")
    detail = event.get("detail") or event.get("message")
    if detail:
        parts.append(f"— {detail}")
    return " ".join(parts)


def console_stream() -> TextIO:
    return sys.stderr
