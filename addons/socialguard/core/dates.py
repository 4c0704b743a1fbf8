"""Dates and lengths of time as people in the UK write them on the command line.

`25/12/2026` is the 25th of December (day first, as in the UK), `1 May 2027` and `1st May 2027`
are read beside ISO `2026-12-25`; lengths of time may be given in months and years as well as
minutes, hours, days and weeks (`3 months`, `1y`). Pure: no clock; callers pass "now".
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
_MONTHS["sept"] = 9
_NUMERIC = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_WORDS = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3,9})\.?,?\s+(\d{4})", re.IGNORECASE)
_TIME = re.compile(r"([01]?\d|2[0-3])[:.]([0-5]\d)")
_LENGTH = re.compile(
    r"(\d+)\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?|mo|mos|months?"
    r"|y|yrs?|years?)",
    re.IGNORECASE,
)
# `m` stays minutes (as it always was: `--for 30m`); months are `mo` or `month(s)`.
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks", "y": "years"}

EXAMPLES = "2027-10-31, 31/10/2027 or '31 October 2027'"


def parse_day(text: str) -> dt.date | None:
    """A calendar day in any of the accepted forms, or None if it is not one."""
    text = text.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    numeric = _NUMERIC.fullmatch(text)
    words = _WORDS.fullmatch(text)
    try:
        if numeric:
            return dt.date(int(numeric[3]), int(numeric[2]), int(numeric[1]))
        if words and words[2].lower() in _MONTHS:
            return dt.date(int(words[3]), _MONTHS[words[2].lower()], int(words[1]))
    except ValueError:  # 31/02/2027
        return None
    return None


def parse_moment(text: str) -> dt.date | dt.datetime | None:
    """A day, or a day and a time (`31/10/2027 17:00`, `2027-10-31T17:00`): naive unless ISO
    with an offset. None if it is neither."""
    day = parse_day(text)
    if day is not None:
        return day
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        pass
    head, _, tail = text.strip().rpartition(" ")
    time = _TIME.fullmatch(tail)
    day = parse_day(head.rstrip(","))
    if day is None or time is None:
        return None
    return dt.datetime.combine(day, dt.time(int(time[1]), int(time[2])))


@dataclass(frozen=True, slots=True)
class Length:
    """A length of time as given: calendar months and years are not a fixed number of days."""

    amount: int
    unit: str  # minutes, hours, days, weeks, months or years

    def after(self, start: dt.datetime) -> dt.datetime:
        """`start` plus this length; a month on from 31 January is the last day of February."""
        if self.unit in ("months", "years"):
            months = self.amount * (12 if self.unit == "years" else 1)
            return add_months(start, months)
        return start + dt.timedelta(**{self.unit: self.amount})

    def __str__(self) -> str:
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {unit}"


def parse_length(text: str) -> Length | None:
    """`90m`, `2h`, `3d`, `2w`, `3 months`, `1y` (also `2 hours`, `1 year`) → a Length."""
    match = _LENGTH.fullmatch(text.strip())
    if match is None:
        return None
    unit = match[2].lower()
    name = "months" if unit.startswith("mo") else _UNIT[unit[0]]
    digits = match[1].lstrip("0") or "0"
    # Beyond any calendar, however many digits: callers say "far too long" rather than overflow.
    return Length(int(digits) if len(digits) <= 12 else 10**12, name)


def add_months(start: dt.datetime, months: int) -> dt.datetime:
    """The same day and time `months` later, or that month's last day if it is shorter."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    if year > dt.MAXYEAR:
        raise OverflowError("date value out of range")
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
