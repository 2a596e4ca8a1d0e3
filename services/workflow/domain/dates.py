"""Dates: due dates and "today" are Europe/London calendar dates; every timestamp is UTC.

Also the date arithmetic of reviews and renewals: the annual review date kept (R-K4), an initial
review's window (R-S2), the next renewal (R-K6).
"""

from __future__ import annotations

from datetime import date, timedelta

from shared.calendar import add_months


def annual_review_date(
    today: date, *, previous_due: date | None = None, recorded: date | None = None, months: int = 12,
) -> date | None:
    """R-K4: the next review keeps the original annual date, never one counted from today.

    From the previous Future Work's due date (the review just done), the next is `months` later;
    else a recorded annual review date is the next one itself. Either way, a date already past
    rolls on by whole intervals from that anchor. None when there is nothing to keep.
    """
    if previous_due is not None:
        anchor, step = previous_due, 1
    elif recorded is not None:
        anchor, step = recorded, 0
    else:
        return None
    due = add_months(anchor, months * step)
    while due <= today:
        step += 1
        due = add_months(anchor, months * step)
    return due


def scheduled_window(start: date, window: tuple[int, int]) -> tuple[date, date]:
    """The first and last allowed dates, `window` days after `start`."""
    return start + timedelta(days=window[0]), start + timedelta(days=window[1])


def initial_review_window(care_start: date) -> tuple[date, date]:
    """R-S2: an initial review is due 4–6 weeks after new care starts."""
    return scheduled_window(care_start, (28, 42))


def next_renewal_date(opened_on: date, today: date, every_days: int) -> date:
    """R-K6: the first renewal date after `today`, every `every_days` from when the step opened."""
    done = max((today - opened_on).days, 0) // every_days
    return opened_on + timedelta(days=every_days * (done + 1))
