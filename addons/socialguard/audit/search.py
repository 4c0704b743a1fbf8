"""Find events in the audit log: by reference, person, service, host, address, device, event
name and time, across every file.

Pure reading, fast enough for a year of logs: whole files outside the time range are skipped by
their dated names, and a line is parsed only when its bytes already contain every value asked
for. Never imports mitmproxy or structlog.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import heapq
import json
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from socialguard.audit.files import AuditError, Segment, iter_lines, read_bytes
from socialguard.audit.log import ts_stamp
from socialguard.core.dates import parse_moment

# Any ts on a day sorts before this suffix appended to that day's date.
_END_OF_DAY = "T~"


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """What to look for; None matches anything. `since` is inclusive, `until` exclusive, both
    UTC ts strings in the log's own shape. `event` may end in `*` (`access.*`)."""

    user: str | None = None
    service: str | None = None
    event: str | None = None
    since: str | None = None
    until: str | None = None
    id: str | None = None  # the reference a block page shows, SG-…
    host: str | None = None  # this host or any name under it
    client_ip: str | None = None
    device: str | None = None

    def _exact(self) -> tuple[tuple[str, str | None], ...]:
        return (
            ("user", self.user),
            ("service", self.service),
            ("id", self.id),
            ("client_ip", self.client_ip),
            ("device", self.device),
        )

    def needles(self) -> tuple[bytes, ...]:
        """Byte strings every matching line contains, exactly as the writer renders them."""
        found = []
        for key, value in self._exact():
            if value is not None:
                found.append(f'"{key}":{json.dumps(value, ensure_ascii=False)}'.encode())
        if self.host is not None:
            found.append(json.dumps(self.host, ensure_ascii=False)[1:-1].encode())
        if self.event is not None:
            literal = self.event.split("*", 1)[0]
            closing = "" if "*" in self.event else '"'
            found.append(f'"event":"{literal}{closing}'.encode())
        return tuple(found)

    def matches(self, event: dict[str, Any]) -> bool:
        for key, value in self._exact():
            if value is not None and event.get(key) != value:
                return False
        if self.host is not None:
            host = str(event.get("host") or "")
            if host != self.host and not host.endswith("." + self.host):
                return False
        name = str(event.get("event", ""))
        if self.event is not None and not fnmatch.fnmatchcase(name, self.event):
            return False
        ts = str(event.get("ts", ""))
        if self.since is not None and ts < self.since:
            return False
        return self.until is None or ts < self.until


def parse_bound(text: str, tz: zoneinfo.ZoneInfo, *, end: bool, option: str) -> str:
    """A date (`2026-11-24`, `24/11/2026`, `24 November 2026`: the practice's local day) or
    date-time → a UTC ts bound.

    An end date means the end of that whole day, so `--to 2026-11-30` includes the 30th.
    """
    moment = parse_moment(text)
    if moment is None:
        raise AuditError(
            f"{option} {text!r}: write a date like 24/11/2026, 2026-11-24 or '24 November "
            "2026', or a time like '24/11/2026 12:30'"
        )
    try:
        if isinstance(moment, dt.datetime):
            when = moment if moment.tzinfo else moment.replace(tzinfo=tz)
        else:
            day = moment + dt.timedelta(days=1) if end else moment
            when = dt.datetime.combine(day, dt.time(), tzinfo=tz)
        return ts_stamp(when)
    except OverflowError:  # e.g. --to 9999-12-31: its end is past the last date Python has
        raise AuditError(
            f"{option} {text!r}: out of range — give a date between 0002-01-01 and 9999-12-30"
        ) from None


def month_bounds(month: str, tz: zoneinfo.ZoneInfo) -> tuple[str, str, dt.date, dt.date]:
    """`2026-11` → (since, until) as UTC ts bounds of that local month, and its first and
    last day."""
    try:
        first = dt.datetime.strptime(month + "-01", "%Y-%m-%d").date()  # noqa: DTZ007 - a date
    except ValueError:
        raise AuditError(f"--month {month!r}: write the month as YYYY-MM, e.g. 2026-11") from None
    try:
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        since = ts_stamp(dt.datetime.combine(first, dt.time(), tzinfo=tz))
        until = ts_stamp(dt.datetime.combine(following, dt.time(), tzinfo=tz))
        # The report also looks 30 days past the month (exemptions expiring): that must exist.
        _ = following + dt.timedelta(days=30)
    except OverflowError:  # e.g. 9999-12: the month after it is past the last date Python has
        raise AuditError(
            f"--month {month!r}: out of range — give a month between 0001-02 and 9999-11"
        ) from None
    return since, until, first, following - dt.timedelta(days=1)


def _in_range(segments: Sequence[Segment], query: Query) -> Iterator[Segment]:
    """The segments that may hold events in the query's time range (by their dated names)."""
    for index, segment in enumerate(segments):
        start = segment.day.isoformat() if segment.day is not None else None
        following = segments[index + 1].day if index + 1 < len(segments) else None
        end = following.isoformat() + _END_OF_DAY if following is not None else None
        if segment.day is None:
            end = None  # the active file: anything up to now
        if query.until is not None and start is not None and start >= query.until:
            continue
        if query.since is not None and end is not None and end < query.since:
            continue
        yield segment


def search_lines(
    segments: Sequence[Segment], query: Query
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Each matching line, as stored and parsed, oldest first. Torn or damaged lines are
    skipped here (verify is what reports them)."""
    needles = query.needles()
    for segment in _in_range(segments, query):
        for raw in read_bytes(segment).split(b"\n"):
            if not raw or not all(n in raw for n in needles):
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and query.matches(event):
                yield raw, event


def search_chains(
    chains: Sequence[Sequence[Segment]], query: Query
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """search_lines over several chains (one per proxy worker) merged into time order."""
    if len(chains) == 1:
        return search_lines(chains[0], query)
    return heapq.merge(
        *(search_lines(chain, query) for chain in chains), key=lambda pair: str(pair[1].get("ts"))
    )


def search(segments: Sequence[Segment], query: Query) -> Iterator[dict[str, Any]]:
    """Each matching event, oldest first."""
    for _raw, event in search_lines(segments, query):
        yield event


def period_bounds(first: dt.date, last: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """Any run of local days, first to last inclusive → (since, until) as UTC ts bounds."""
    if last < first:
        raise AuditError(f"--to {last.isoformat()} is before --from {first.isoformat()}")
    try:
        since = ts_stamp(dt.datetime.combine(first, dt.time(), tzinfo=tz))
        until = ts_stamp(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz))
        _ = last + dt.timedelta(days=31)  # the report looks 30 days past its end
    except OverflowError:
        raise AuditError("--to: out of range — give a date before 9999-11-30") from None
    return since, until


def first_ts(segments: Sequence[Segment]) -> str | None:
    """The ts of the oldest readable event in the log: where its record begins."""
    for segment in segments:
        for raw in iter_lines(segment):
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("ts"), str):
                return str(event["ts"])
    return None


def find_event(segments: Sequence[Segment], reference: str) -> dict[str, Any] | None:
    """The event whose id is `reference`, newest file first; an unreadable file is an
    AuditError naming it (never read as "no such event")."""
    needle = reference.encode()  # cheap test first: most lines are not the one
    for segment in reversed(segments):
        for line in iter_lines(segment):
            if needle in line:
                event = json.loads(line)
                if isinstance(event, dict) and event.get("id") == reference:
                    return event
    return None
