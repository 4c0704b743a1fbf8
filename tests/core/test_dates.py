"""Dates and lengths of time as people in the UK write them."""

from __future__ import annotations

import datetime as dt

import pytest

from socialguard.core.dates import Length, add_months, parse_day, parse_length, parse_moment

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-12-25", dt.date(2026, 12, 25)),
        ("25/12/2026", dt.date(2026, 12, 25)),  # day first, as in the UK
        ("5/1/2027", dt.date(2027, 1, 5)),
        ("05.01.2027", dt.date(2027, 1, 5)),
        ("1 May 2027", dt.date(2027, 5, 1)),
        ("1st May 2027", dt.date(2027, 5, 1)),
        ("22nd Sept 2027", dt.date(2027, 9, 22)),
        ("31 october 2027", dt.date(2027, 10, 31)),
        ("3 Dec. 2026", dt.date(2026, 12, 3)),
    ],
)
def test_days_as_people_write_them(text: str, day: dt.date) -> None:
    assert parse_day(text) == day


@pytest.mark.parametrize("text", ["31/02/2027", "12/25/2026", "next week", "1 Maybe 2027", ""])
def test_what_is_not_a_day(text: str) -> None:
    """No American month-first reading, no impossible day, no guess at words."""
    assert parse_day(text) is None


def test_a_day_and_a_time() -> None:
    """Without an offset the time is as typed (naive): the caller reads it in local time."""
    typed = dt.datetime(2027, 10, 31, 17, 0, tzinfo=UTC).replace(tzinfo=None)
    assert parse_moment("31/10/2027 17:00") == typed
    assert parse_moment("31 October 2027 17:00") == typed
    assert parse_moment("2027-10-31T17:00+01:00") == dt.datetime(
        2027, 10, 31, 17, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    assert parse_moment("31/10/2027") == dt.date(2027, 10, 31)
    assert parse_moment("31/10/2027 25:00") is None


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("30m", Length(30, "minutes")),
        ("2 hours", Length(2, "hours")),
        ("3d", Length(3, "days")),
        ("2w", Length(2, "weeks")),
        ("3 months", Length(3, "months")),
        ("6mo", Length(6, "months")),
        ("1y", Length(1, "years")),
        ("2 Years", Length(2, "years")),
    ],
)
def test_lengths_in_months_and_years_too(text: str, length: Length) -> None:
    assert parse_length(text) == length


def test_a_month_is_a_calendar_month() -> None:
    start = dt.datetime(2027, 1, 31, 9, tzinfo=UTC)
    assert Length(1, "months").after(start) == dt.datetime(2027, 2, 28, 9, tzinfo=UTC)
    assert Length(1, "years").after(start) == dt.datetime(2028, 1, 31, 9, tzinfo=UTC)
    assert add_months(dt.datetime(2028, 2, 29, tzinfo=UTC), 12) == dt.datetime(
        2029, 2, 28, tzinfo=UTC
    )
    assert str(Length(3, "months")) == "3 months"
    assert str(Length(1, "years")) == "1 year"


def test_lengths_that_are_not_one() -> None:
    assert parse_length("soon") is None
    assert parse_length("3 fortnights") is None
    with pytest.raises(OverflowError):
        parse_length("9" * 5000 + "y").after(dt.datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[union-attr]
