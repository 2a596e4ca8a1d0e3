"""bench/clocks.py: the window's clocks warn at the instant the bench waits for, whatever day it runs.

Run on 2026-12-05, the bench put its warning day 400 days on, a Sunday; the service warns on working days, so
the window's timers were due two days before the instant the bench moved the scheduler's clock to, fired at
once, and the bench reported a lateness of minus two seconds.
"""

from datetime import UTC, date, datetime

import pytest

from bench.clocks import CFA, DAYS, clock_rows, layout
from services.clocks import domain


@pytest.mark.parametrize("today", [date(2026, 12, 5), date(2026, 12, 7), date(2027, 12, 20), date(2026, 4, 1)])
def test_the_window_clocks_first_warning_is_the_instant_the_bench_waits_for(today):
    at = layout(clocks=10, teams=2, window=3, today=today)
    row = next(clock_rows(at))
    clock = domain.Clock(str(row[0]), CFA, 1, str(row[4]), str(row[5]), str(row[6]), "running",
                         datetime.now(UTC), row[9])  # type: ignore[arg-type]

    first = domain.points(clock, DAYS)[0]

    assert first.at == at.warn_at
    assert DAYS.is_working_day(at.warn_at.date())
