"""A subject access export: every event about one person, and nothing about anyone else.

Reads the whole log (active and rotated, gzipped too). Each event is given with its sequence
number and its line's hash, and the export names the range and the chain hashes around it, so
that it can be shown to come from the log `socialguard audit verify` checks. Another person
named in an event (an approver, for example) is shown by role, not by name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from socialguard.audit.files import Segment, iter_lines
from socialguard.audit.log import line_hash
from socialguard.core.policy import ANONYMOUS

# Fields that may name someone other than the person the export is for, and the role shown.
OTHER_PEOPLE = {
    "approved_by": "an approver",
    "revoked_by": "an approver",
    "recorded_by": "the person who recorded the change",
    "by": "a member of staff",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """Who the export is for: a signed-in user, a named device, or a device's address."""

    user: str | None = None
    device: str | None = None
    ip: str | None = None

    def describe(self) -> str:
        parts = [
            f"{kind} {value}"
            for kind, value in (("user", self.user), ("device", self.device), ("address", self.ip))
            if value
        ]
        return ", ".join(parts)

    def needles(self) -> tuple[bytes, ...]:
        return tuple(v.encode() for v in (self.user, self.device, self.ip) if v)

    def concerns(self, event: dict[str, Any]) -> bool:
        user = event.get("user")
        if self.user and (user == self.user or event.get("who") == f"user {self.user}"):
            return True
        if user and user not in (ANONYMOUS, self.user):
            return False  # someone else signed in on that device: their events are theirs
        if self.device and (
            event.get("device") == self.device or event.get("who") == f"device {self.device}"
        ):
            return True
        return bool(self.ip) and event.get("client_ip") == self.ip


@dataclass(slots=True)
class Export:
    """The events found and where they sit in the chain."""

    subject: Subject
    since: str | None
    until: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    lines_read: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None  # the hash of the log's last line when the export was made

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject.describe(),
            "from": self.since,
            "to": self.until,
            "events": self.events,
            "count": len(self.events),
            "chain": {
                "lines_read": self.lines_read,
                "first_seq": self.first_seq,
                "last_seq": self.last_seq,
                "head": self.head,
                "how_to_check": (
                    "Each event's `line_hash` is the SHA-256 of its line in the log and the "
                    "`prev` of the line after it; `head` is the head `socialguard audit verify` "
                    "printed for the same log when the export was made"
                ),
            },
        }


def _redacted(event: dict[str, Any], subject: Subject) -> dict[str, Any]:
    shown = dict(event)
    shown.pop("mac", None)
    for key, role in OTHER_PEOPLE.items():
        value = shown.get(key)
        if value and value not in (subject.user, subject.device):
            shown[key] = role
    return shown


def export_events(
    segments: Sequence[Segment],
    subject: Subject,
    since: str | None = None,
    until: str | None = None,
) -> Export:
    """Every event about `subject` (ts in [since, until), UTC ts strings), oldest first."""
    found = Export(subject=subject, since=since, until=until)
    needles = subject.needles()
    last: bytes | None = None
    for segment in segments:
        for line in iter_lines(segment):
            found.lines_read += 1
            last = line
            if not any(n in line for n in needles):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a torn line: `audit verify` reports it; it holds no event to give
            if not isinstance(event, dict) or not subject.concerns(event):
                continue
            ts = str(event.get("ts", ""))
            if (since is not None and ts < since) or (until is not None and ts >= until):
                continue
            shown = _redacted(event, subject)
            shown["line_hash"] = line_hash(line)
            found.events.append(shown)
            seq = event.get("seq")
            if isinstance(seq, int):
                found.first_seq = seq if found.first_seq is None else found.first_seq
                found.last_seq = seq
    found.head = line_hash(last) if last is not None else None
    return found
