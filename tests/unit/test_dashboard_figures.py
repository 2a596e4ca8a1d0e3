"""The manager's dashboard figures (R-CL7), pure: RAG over time, days waiting, reviews by week, clocks by status,
and the chart drawn as an SVG without script, its numbers as CSV."""

from datetime import UTC, date, datetime, timedelta

from services.clocks import dashboard
from services.web import charts
from shared.calendar import start_of_day

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # a Thursday
TODAY = date(2026, 12, 3)


def entry(name: str, placed: date, rags: list[tuple[date, str]], removed: date | None = None,
          next_review: datetime | None = None) -> dashboard.Entry:
    return dashboard.Entry(name, f"person-{name}", start_of_day(placed) + timedelta(hours=10),
                           start_of_day(removed) + timedelta(hours=10) if removed else None, next_review,
                           tuple((start_of_day(d) + timedelta(hours=10), rag) for d, rag in rags))


def test_R_CL7_people_waiting_by_rag_counts_each_day_with_the_rag_they_had_that_day() -> None:
    a = entry("a", date(2026, 12, 1), [(date(2026, 12, 1), "green"), (date(2026, 12, 2), "red")])
    b = entry("b", date(2026, 12, 1), [(date(2026, 12, 1), "amber")], removed=date(2026, 12, 3))
    table = dashboard.waiting_by_rag([a, b], TODAY, 4)
    assert table.columns == ("date", "red", "amber", "green")
    assert table.rows == (("2026-11-30", 0, 0, 0), ("2026-12-01", 0, 1, 1), ("2026-12-02", 1, 1, 0),
                          ("2026-12-03", 1, 0, 0))


def test_R_CL7_days_waiting_falls_in_bands_and_over_28_days_is_its_own() -> None:
    waiting = [entry(str(n), TODAY - timedelta(days=n), [(TODAY - timedelta(days=n), "green")])
               for n in (0, 7, 8, 28, 29, 40)]
    gone = entry("gone", TODAY - timedelta(days=50), [], removed=TODAY - timedelta(days=1))
    assert dict(dashboard.days_waiting([*waiting, gone], NOW).rows) == {
        "0 to 7 days": 2, "8 to 14 days": 1, "15 to 21 days": 0, "22 to 28 days": 1, "over 28 days": 2}


def test_R_CL7_reviews_by_week_are_due_or_overdue_and_earlier_ones_count_in_the_first_week() -> None:
    placed = date(2026, 10, 1)
    due_next_week = entry("n", placed, [], next_review=NOW + timedelta(days=7))
    overdue_this_week = entry("o", placed, [], next_review=NOW - timedelta(days=1))
    long_overdue = entry("l", placed, [], next_review=NOW - timedelta(days=90))
    left = entry("x", placed, [], removed=TODAY - timedelta(days=2), next_review=NOW - timedelta(days=3))
    rows = {week: (due, overdue) for week, due, overdue in
            dashboard.reviews_by_week([due_next_week, overdue_this_week, long_overdue, left], NOW).rows}
    assert rows["2026-11-30"] == (0, 1) and rows["2026-12-07"] == (1, 0)
    assert rows["2026-11-02"] == (0, 1)  # the first week shown: 4 weeks back, with what fell due before it
    assert sum(d + o for d, o in rows.values()) == 3


def test_R_CL7_clocks_by_status_and_those_needing_action_breached_first() -> None:
    def clock(n: str, warned: bool, breached: bool, due: date) -> dashboard.OpenClock:
        return dashboard.OpenClock(n, f"p-{n}", "C&F", due, NOW if warned else None, NOW if breached else None)
    clocks = [clock("1", False, False, TODAY), clock("2", True, False, TODAY), clock("3", True, True, TODAY),
              clock("4", True, False, TODAY - timedelta(days=1))]
    assert dashboard.clocks_by_status(clocks).rows == (("C&F", 1, 2, 1),)
    assert [c["clock_id"] for c in dashboard.at_risk(clocks)] == ["3", "4", "2"]


def test_R_CL7_a_chart_is_an_svg_without_script_and_its_csv_has_the_tables_numbers() -> None:
    table = dashboard.waiting_by_rag([entry("a", TODAY, [(TODAY, "red")])], TODAY, 3).as_json()
    svg = charts.svg(table)
    assert svg.startswith(b"<?xml") and b"<svg" in svg and b"<script" not in svg
    assert b"People waiting on the Planned Work Tray by RAG" in svg
    assert charts.to_csv(table).splitlines() == ["date,red,amber,green", "2026-12-01,0,0,0", "2026-12-02,0,0,0",
                                                 "2026-12-03,1,0,0"]
