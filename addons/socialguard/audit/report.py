"""The Practice Manager's monthly summary of the audit log, as text, CSV or one HTML file.

Pure: takes events already read (and, if available, the current exemptions) and returns the
figures; rendering is separate. The HTML form is self-contained — its chart is inline SVG, with
no script, font or image fetched from anywhere. Never imports mitmproxy or structlog.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from socialguard.audit.printable import printable, spreadsheet_cell
from socialguard.audit.search import month_bounds, period_bounds
from socialguard.core.events import Event
from socialguard.templates import environment

EXPIRING_WITHIN_DAYS = 30
_CHANGE_EVENTS: dict[str, str] = {
    Event.EXEMPTION_GRANTED: "granted",
    Event.EXEMPTION_RENEWED: "renewed",
    Event.EXEMPTION_REVOKED: "revoked",
    Event.EXEMPTION_CHANGED: "changed",
    Event.EXEMPTION_REMOVED: "removed",
}
# How the report lists them: by kind of change in this order, then by exemption.
_CHANGE_ORDER = ("granted", "renewed", "changed", "revoked", "removed", "expiring")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionUse:
    """Use of social media under an exemption: who, what, which exemption, why, how often."""

    person: str
    service: str
    exemption_id: str
    purpose: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExemptionNote:
    """An exemption granted, renewed, changed, revoked or removed in the month, or expiring in
    or just after it. `changes` names what a `changed` one changed (who, purpose, …)."""

    change: str
    exemption_id: str
    who: str
    what: str
    purpose: str
    on: str
    expires: str
    changes: str = ""


@dataclass(slots=True, kw_only=True)
class Report:
    """The figures of one month or any run of days (days in the practice's time zone).

    `covered_from` to `covered_to` is the part of the period the log covers: none of it before
    the log's first line, none of it still to come. Days outside it are "not covered", never 0.
    """

    month: str
    first_day: dt.date
    last_day: dt.date
    title: str = ""
    covered_from: dt.date | None = None
    covered_to: dt.date | None = None
    log_start: dt.date | None = None
    today: dt.date | None = None
    blocks: int = 0
    exceptions: int = 0
    breaks: int = 0
    signup_blocks: int = 0
    policy_loads: int = 0
    policy_rejections: int = 0
    exception_uses: list[ExceptionUse] = field(default_factory=list)
    blocks_by_service: list[tuple[str, int]] = field(default_factory=list)
    blocks_by_day: dict[dt.date, int] = field(default_factory=dict)
    exceptions_by_day: dict[dt.date, int] = field(default_factory=dict)
    exemptions: list[ExemptionNote] = field(default_factory=list)

    @property
    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=n) for n in range(count)]

    @property
    def covers_anything(self) -> bool:
        return self.covered_from is not None and self.covered_to is not None

    def covered(self, day: dt.date) -> bool:
        if self.covered_from is None or self.covered_to is None:
            return False
        return self.covered_from <= day <= self.covered_to

    @property
    def coverage_notes(self) -> list[str]:
        """What the log does not cover of the period, in sentences (none when it covers all)."""
        if not self.covers_anything:
            if self.today is not None and self.first_day > self.today:
                today = _day(self.today)
                return [f"This period has not begun: today is {today}. Nothing to count yet."]
            start = _day(self.log_start) if self.log_start else "after it"
            return [
                f"The audit log does not cover this period: its first event is on {start}. "
                "Nothing here can be counted."
            ]
        notes = []
        if self.covered_from is not None and self.covered_from > self.first_day:
            notes.append(
                f"Not covered: the days before {_day(self.covered_from)}, when the audit log's "
                "first event was written."
            )
        if self.covered_to is not None and self.covered_to < self.last_day:
            notes.append(
                f"Not covered: the days after {_day(self.covered_to)}, which are still to come."
            )
        return notes


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def person_of(event: dict[str, Any]) -> str:
    """Who, as the report names them: the signed-in user, else the device, else the address."""
    for key in ("user", "device"):
        if event.get(key):
            return str(event[key])
    return f"anonymous ({event.get('client_ip') or 'unknown address'})"


def build_report(
    events: Iterable[dict[str, Any]],
    month: str,
    tz: zoneinfo.ZoneInfo,
    exemptions: Iterable[Any] = (),
    *,
    names: Mapping[str, str] | None = None,
    log_start: dt.date | None = None,
    today: dt.date | None = None,
) -> Report:
    """Count one month's events. `events` may include others: only the month's are counted.

    `exemptions` are the current list's entries (authorisations.Exemption): those that expire
    in the month or within 30 days after it are listed as expiring. `names` maps service ids to
    the names people know ("Instagram"); `log_start` (the day of the log's first event) and
    `today` mark what the log cannot cover — without them every day counts as covered.
    """
    since, until, first_day, last_day = month_bounds(month, tz)
    report = Report(month=month, first_day=first_day, last_day=last_day, title=f"{first_day:%B %Y}")
    return _count(report, events, since, until, tz, exemptions, names, log_start, today)


def build_period_report(
    events: Iterable[dict[str, Any]],
    first_day: dt.date,
    last_day: dt.date,
    tz: zoneinfo.ZoneInfo,
    exemptions: Iterable[Any] = (),
    *,
    names: Mapping[str, str] | None = None,
    log_start: dt.date | None = None,
    today: dt.date | None = None,
) -> Report:
    """The same summary for any run of days, such as the review after an incident."""
    since, until = period_bounds(first_day, last_day, tz)
    label = f"{first_day.isoformat()} to {last_day.isoformat()}"
    report = Report(
        month=label,
        first_day=first_day,
        last_day=last_day,
        title=f"{_day(first_day)} to {_day(last_day)}",
    )
    return _count(report, events, since, until, tz, exemptions, names, log_start, today)


def _count(
    report: Report,
    events: Iterable[dict[str, Any]],
    since: str,
    until: str,
    tz: zoneinfo.ZoneInfo,
    exemptions: Iterable[Any],
    names: Mapping[str, str] | None,
    log_start: dt.date | None,
    today: dt.date | None,
) -> Report:
    first_day, last_day = report.first_day, report.last_day
    report.log_start, report.today = log_start, today
    start = max(first_day, log_start) if log_start else first_day
    end = min(last_day, today) if today else last_day
    if start <= end:
        report.covered_from, report.covered_to = start, end
    names = names or {}

    def service_of(event: dict[str, Any]) -> str:
        service = event.get("service")
        if service:
            return names.get(str(service), str(service))
        return str(event.get("host") or "unknown")

    uses: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
    by_service: collections.Counter[str] = collections.Counter()
    blocks_by_day: collections.Counter[dt.date] = collections.Counter()
    exceptions_by_day: collections.Counter[dt.date] = collections.Counter()
    notes: dict[tuple[str, str], ExemptionNote] = {}
    for event in events:
        ts = str(event.get("ts", ""))
        if not since <= ts < until:
            continue
        name = event.get("event")
        day = _local_day(ts, tz)
        # Repeats of one block within a short window are one event with a count.
        times = event.get("count")
        times = times if isinstance(times, int) and not isinstance(times, bool) and times > 0 else 1
        if name == Event.ACCESS_BLOCKED:
            report.blocks += times
            by_service[service_of(event)] += times
            if day is not None:
                blocks_by_day[day] += times
        elif name == Event.ACCESS_EXCEPTION:
            report.exceptions += 1
            key = (
                person_of(event),
                service_of(event),
                str(event.get("exemption_id") or ""),
                str(event.get("purpose") or ""),
            )
            uses[key] += 1
            if day is not None:
                exceptions_by_day[day] += 1
        elif name == Event.ACCESS_BREAK_WINDOW:
            report.breaks += 1
        elif name == Event.SIGNUP_BLOCKED:
            report.signup_blocks += times
        elif name == Event.POLICY_LOADED:
            report.policy_loads += 1
        elif name == Event.POLICY_REJECTED:
            report.policy_rejections += 1
        elif name in _CHANGE_EVENTS:
            note = _note(_CHANGE_EVENTS[str(name)], event, ts[:10])
            notes[(note.change, note.exemption_id)] = note
    report.exception_uses = [
        ExceptionUse(person=p, service=s, exemption_id=e, purpose=u, count=n)
        for (p, s, e, u), n in sorted(uses.items(), key=lambda item: (-item[1], item[0]))
    ]
    report.blocks_by_service = sorted(by_service.items(), key=lambda item: (-item[1], item[0]))
    report.blocks_by_day = dict(blocks_by_day)
    report.exceptions_by_day = dict(exceptions_by_day)
    horizon = dt.datetime.combine(
        last_day + dt.timedelta(days=EXPIRING_WITHIN_DAYS + 1), dt.time(), tzinfo=tz
    )
    month_start = dt.datetime.combine(first_day, dt.time(), tzinfo=tz)
    for exemption in exemptions:
        if exemption.revoked is None and month_start <= exemption.expires < horizon:
            note = ExemptionNote(
                change="expiring",
                exemption_id=exemption.id,
                who=f"{exemption.who_kind} {exemption.who}",
                what=exemption.what,
                purpose=exemption.purpose,
                on=exemption.expires_label,
                expires=exemption.expires_label,
            )
            notes[(note.change, note.exemption_id)] = note
    report.exemptions = sorted(
        notes.values(), key=lambda n: (_CHANGE_ORDER.index(n.change), n.exemption_id)
    )
    return report


def _local_day(ts: str, tz: zoneinfo.ZoneInfo) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(ts).astimezone(tz).date()
    except ValueError:
        return None


def _note(change: str, event: dict[str, Any], day: str) -> ExemptionNote:
    what = event.get("what")
    changes = event.get("changes")
    return ExemptionNote(
        change=change,
        exemption_id=str(event.get("exemption_id") or ""),
        who=str(event.get("who") or person_of(event)),
        what=", ".join(map(str, what)) if isinstance(what, list) else str(what or ""),
        purpose=str(event.get("purpose") or ""),
        on=day,
        expires=str(event.get("expires_label") or event.get("expires") or ""),
        changes=", ".join(map(str, changes)) if isinstance(changes, list) else "",
    )


# -- rendering -------------------------------------------------------------------------------
EXEMPTIONS_HEADING = "Exemptions granted, renewed, changed, revoked, removed and expiring"


def render_text(report: Report) -> str:
    """A plain summary a person reads top to bottom."""
    out = [
        f"Social media on the practice network: {report.month} "
        f"({report.first_day:%d %B %Y} to {report.last_day:%d %B %Y})",
        "",
    ]
    if report.coverage_notes:
        out += [*report.coverage_notes, ""]
    if not report.covers_anything:
        return _lines([*out, *_exemption_lines(report)])
    out += [
        f"Blocked attempts:            {report.blocks}",
        f"Use under an exemption:      {report.exceptions}",
        f"Use in a rest break:         {report.breaks}",
        f"Work e-mail sign-ups blocked: {report.signup_blocks}",
        f"Policy loads / rejections:   {report.policy_loads} / {report.policy_rejections}",
        "",
        "Use under an exemption, by person and service:",
    ]
    if not report.exception_uses:
        out.append("  none")
    for use in report.exception_uses:
        out.append(
            f"  {use.person}  {use.service}  {use.count}  [{use.exemption_id}] {use.purpose}"
        )
    out += ["", "Blocked attempts by service:"]
    if not report.blocks_by_service:
        out.append("  none")
    out += [f"  {service}  {count}" for service, count in report.blocks_by_service]
    out += ["", "Blocked attempts and exemption use by day:"]
    for day in report.days:
        blocks = report.blocks_by_day.get(day, 0)
        exceptions = report.exceptions_by_day.get(day, 0)
        if blocks or exceptions:
            out.append(f"  {day:%a %d %b}  blocked {blocks}  exemption {exceptions}")
    out += ["", *_exemption_lines(report)]
    return _lines(out)


def _lines(out: list[str]) -> str:
    """Names and purposes came from files and clients: no control character reaches a
    terminal, so each line printed is one line of the report."""
    return "\n".join(printable(line) for line in out) + "\n"


def _exemption_lines(report: Report) -> list[str]:
    out = [f"{EXEMPTIONS_HEADING}:"]
    if not report.exemptions:
        out.append("  none")
    for note in report.exemptions:
        changed = f" ({note.changes})" if note.changes else ""
        out.append(
            f"  {note.change:<8} {note.exemption_id}{changed}  {note.who}  {note.what}  "
            f"on {note.on}  expires {note.expires}  — {note.purpose}"
        )
    return out


CSV_COLUMNS = ("section", "date", "person", "service", "exemption_id", "purpose", "count")


def render_csv(report: Report) -> str:
    """One table, one row per figure, for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(section: str, date: str, count: int | str = "", **cells: str) -> None:
        values = [section, date, *(cells.get(c, "") for c in CSV_COLUMNS[2:-1]), count]
        # A host or purpose written by a client must never run as a formula in the sheet.
        writer.writerow([spreadsheet_cell(v) for v in values])

    for name, value in (
        ("blocks", report.blocks),
        ("exceptions", report.exceptions),
        ("breaks", report.breaks),
        ("signup_blocks", report.signup_blocks),
        ("policy_loads", report.policy_loads),
        ("policy_rejections", report.policy_rejections),
    ):
        # Not a zero where the log says nothing: an empty count, and the reason beside it.
        row("total", report.month, value if report.covers_anything else "", service=name)
    for sentence in report.coverage_notes:
        row("not_covered", report.month, purpose=sentence)
    for use in report.exception_uses:
        row(
            "exception",
            report.month,
            use.count,
            person=use.person,
            service=use.service,
            exemption_id=use.exemption_id,
            purpose=use.purpose,
        )
    for service, count in report.blocks_by_service:
        row("blocks_by_service", report.month, count, service=service)
    for day in report.days:
        if not report.covered(day):
            row("not_covered", day.isoformat())
            continue
        row("blocks_by_day", day.isoformat(), report.blocks_by_day.get(day, 0))
        row("exceptions_by_day", day.isoformat(), report.exceptions_by_day.get(day, 0))
    for note in report.exemptions:
        row(
            f"exemption_{note.change}",
            note.on,
            person=note.who,
            service=note.what,
            exemption_id=note.exemption_id,
            purpose=note.purpose,
        )
    return buffer.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar of the chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    label: str


def chart(report: Report, *, width: int = 720, height: int = 240) -> dict[str, Any]:
    """The geometry of the per-day chart: blocks and exceptions side by side for each day."""
    left, bottom, top = 40, 30, 10
    days = report.days
    peak = max([*report.blocks_by_day.values(), *report.exceptions_by_day.values(), 1])
    plot_h = height - bottom - top
    slot = (width - left - 10) / len(days)
    bar_w = max(1.0, slot / 2 - 1)
    blocks: list[Bar] = []
    exceptions: list[Bar] = []
    ticks: list[dict[str, Any]] = []
    for n, day in enumerate(days):
        x = left + n * slot
        for series, counts, offset in (
            (blocks, report.blocks_by_day, 0.0),
            (exceptions, report.exceptions_by_day, bar_w),
        ):
            count = counts.get(day, 0)
            h = plot_h * count / peak
            series.append(
                Bar(
                    x=round(x + offset, 1),
                    y=round(top + plot_h - h, 1),
                    width=round(bar_w, 1),
                    height=round(h, 1),
                    label=f"{day:%d %b}: {count}",
                )
            )
        if n % 5 == 0 or n == len(days) - 1:
            ticks.append({"x": round(x + bar_w, 1), "label": f"{day.day}"})
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "base": top + plot_h,
        "peak": peak,
        "blocks": blocks,
        "exceptions": exceptions,
        "ticks": ticks,
    }


def render_html(report: Report, practice: str = "the practice") -> str:
    """One self-contained HTML file (inline CSS and SVG; nothing fetched)."""
    template = environment().get_template("report.html")
    return template.render(
        report=report,
        chart=chart(report),
        practice=practice,
        exemptions_heading=EXEMPTIONS_HEADING,
    )
