"""A person's next rest break, as the block page says it: "today 12:30-13:30".

The policy lets personal devices use social media in official rest breaks. The block page says
so only where it is true for the reader — their network zone has break windows — and then names
the next one. Pure: the caller passes the time.
"""

from __future__ import annotations

import datetime as dt

from socialguard.core.settings import BreakWindow, Settings

_WEEK = 8  # days looked ahead: every weekly window opens within a week
_EN_DASH = "\u2013"  # a range of times, as printed: 12:30 to 13:30 with an en dash


def zone_windows(settings: Settings, zone: str) -> tuple[BreakWindow, ...]:
    """The break windows of the zone a person is in (none for a zone without them)."""
    for candidate in settings.zones:
        if candidate.name == zone:
            return candidate.break_windows
    return ()


def next_break(
    windows: tuple[BreakWindow, ...], local: dt.datetime
) -> tuple[dt.date, BreakWindow] | None:
    """The day and window of the break that is open now or opens next, or None."""
    best: tuple[dt.datetime, dt.date, BreakWindow] | None = None
    for offset in range(_WEEK):
        day = local.date() + dt.timedelta(days=offset)
        for window in windows:
            if day.weekday() not in window.days:
                continue
            end = dt.datetime.combine(day, window.end)
            if offset == 0 and end <= local.replace(tzinfo=None):
                continue  # today's window has closed
            start = dt.datetime.combine(day, window.start)
            if best is None or start < best[0]:
                best = (start, day, window)
        if best is not None:
            return best[1], best[2]
    return None


def next_break_label(settings: Settings, zone: str, when: dt.datetime) -> str | None:
    """The next break in words (today, tomorrow, a weekday, or now until its end) with its
    times, e.g. 'today 12:30-13:30' (printed with an en dash); None where the reader's zone
    has no rest breaks."""
    local = when.astimezone(settings.timezone)
    found = next_break(zone_windows(settings, zone), local)
    if found is None:
        return None
    day, window = found
    times = f"{window.start:%H:%M}{_EN_DASH}{window.end:%H:%M}"
    if day == local.date():
        if window.start <= local.time():
            return f"now, until {window.end:%H:%M}"
        return f"today {times}"
    if day == local.date() + dt.timedelta(days=1):
        return f"tomorrow {times}"
    return f"{day:%A} {times}"
