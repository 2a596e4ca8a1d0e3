"""Working days, pure: England and Wales, Europe/London dates, weekends and bank holidays excluded (R-CL2)."""

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, timedelta

import holidays


@dataclass(frozen=True)
class WorkingDays:
    """Monday to Friday, except the bank holidays given (`bank_holidays()` in the service)."""

    holidays: Container[date]

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def add(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself is day 0, whatever it is); negative goes back."""
        step = timedelta(days=1 if count >= 0 else -1)
        remaining = abs(count)
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day

    def between(self, start: date, end: date) -> int:
        """How many working days from `start` up to but not including `end` (0 when `end` is not later)."""
        count, day = 0, start
        while day < end:
            count += self.is_working_day(day)
            day += timedelta(days=1)
        return count


def bank_holidays() -> Container[date]:
    """England and Wales bank holidays (the `holidays` package, subdivision ENG), every year on demand."""
    return holidays.country_holidays("GB", subdiv="ENG")
