"""Dates as the council keeps them: calendar dates in Europe/London (GMT or BST); every timestamp is UTC."""

from datetime import UTC, date, datetime, time
from typing import TypeVar
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

LONDON = ZoneInfo("Europe/London")
D = TypeVar("D", date, datetime)


def london_date(at: datetime) -> date:
    """The calendar date in Europe/London at an instant."""
    return at.astimezone(LONDON).date()


def start_of_day(day: date) -> datetime:
    """Midnight at the start of `day` in Europe/London, as a UTC instant (23:00 UTC the day before in BST)."""
    return datetime.combine(day, time(0), LONDON).astimezone(UTC)


def add_months(day: D, months: int) -> D:
    """The same day (and time) `months` calendar months later; the 29th-31st become the month's last day
    when it is shorter (31 Jan + 1 → 29 Feb in a leap year; 29 Feb + 12 → 28 Feb)."""
    return day + relativedelta(months=months)
