"""The manager's dashboard figures (R-CL7), pure: the read model's rows and today → tables of numbers, one per
chart, each with its columns named, so the desk draws the chart, prints the table and writes the CSV from one."""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from shared.calendar import london_date, start_of_day

RAGS = ("red", "amber", "green")
WAIT_BANDS = ((0, 7, "0 to 7 days"), (8, 14, "8 to 14 days"), (15, 21, "15 to 21 days"), (22, 28, "22 to 28 days"),
              (29, None, "over 28 days"))
CLOCK_STATUSES = ("on_track", "at_risk", "breached")


@dataclass(frozen=True)
class Entry:
    """A tray entry as the read model has it: when it was placed and left, its RAG changes in time order."""

    entry_id: str
    person_id: str
    placed_at: datetime
    removed_at: datetime | None
    next_review_at: datetime | None
    rags: tuple[tuple[datetime, str], ...]

    def waiting_at(self, at: datetime) -> bool:
        return self.placed_at < at and (self.removed_at is None or self.removed_at >= at)

    def rag_at(self, at: datetime) -> str:
        """The RAG the entry had at an instant: the last rating before it (the placement's, at the least)."""
        rated = [rag for when, rag in self.rags if when < at] or [rag for _, rag in self.rags[:1]]
        return rated[-1] if rated else "green"


@dataclass(frozen=True)
class OpenClock:
    clock_id: str
    person_id: str
    title: str
    due_date: date
    warned_at: datetime | None
    breached_at: datetime | None

    @property
    def status(self) -> str:
        return "breached" if self.breached_at else "at_risk" if self.warned_at else "on_track"


@dataclass(frozen=True)
class Table:
    """One chart's numbers: `kind` says how to draw it (a line over time, bars, stacked bars)."""

    key: str
    title: str
    kind: Literal["line", "bar", "stacked_bar"]
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "kind": self.kind, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows]}


def waiting_by_rag(entries: Iterable[Entry], today: date, days: int) -> Table:
    """How many waited on the tray at the end of each day, by the RAG they had then."""
    entries = list(entries)
    rows = []
    for day in (today - timedelta(days=n) for n in range(days - 1, -1, -1)):
        end = start_of_day(day + timedelta(days=1))
        counts = Counter(e.rag_at(end) for e in entries if e.waiting_at(end))
        rows.append((day.isoformat(), *(counts[r] for r in RAGS)))
    return Table("waiting_by_rag", "People waiting on the Planned Work Tray by RAG", "line",
                 ("date", *RAGS), tuple(rows))


def days_waiting(entries: Iterable[Entry], now: datetime) -> Table:
    """How long the people waiting now have waited, in bands (over 28 days breaches R-CL4)."""
    today = london_date(now)
    waited = [(today - london_date(e.placed_at)).days for e in entries if e.waiting_at(now)]
    rows = tuple((label, sum(1 for d in waited if low <= d and (high is None or d <= high)))
                 for low, high, label in WAIT_BANDS)
    return Table("days_waiting", "Days waiting on the Planned Work Tray", "bar", ("days waiting", "people"), rows)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def reviews_by_week(entries: Iterable[Entry], now: datetime, weeks_back: int = 4, weeks_ahead: int = 4) -> Table:
    """Tray reviews by the week they fall due: still due, or overdue (the date passed without a review). Reviews
    due before the first week shown count in it."""
    first = _monday(london_date(now)) - timedelta(weeks=weeks_back)
    weeks = [first + timedelta(weeks=n) for n in range(weeks_back + weeks_ahead + 1)]
    due: Counter[date] = Counter()
    overdue: Counter[date] = Counter()
    for e in entries:
        if e.next_review_at is None or not e.waiting_at(now):
            continue
        week = max(first, _monday(london_date(e.next_review_at)))
        if week <= weeks[-1]:
            (overdue if e.next_review_at < now else due)[week] += 1
    return Table("reviews_by_week", "Tray reviews due and overdue by week", "stacked_bar",
                 ("week beginning", "due", "overdue"), tuple((w.isoformat(), due[w], overdue[w]) for w in weeks))


def clocks_by_status(clocks: Iterable[OpenClock]) -> Table:
    """The open statutory clocks of each timescale: on track, at risk (warned) and breached."""
    counts: dict[str, Counter[str]] = {}
    for clock in clocks:
        counts.setdefault(clock.title, Counter())[clock.status] += 1
    return Table("clocks", "Statutory clocks on track, at risk and breached", "stacked_bar",
                 ("timescale", "on track", "at risk", "breached"),
                 tuple((title, *(c[s] for s in CLOCK_STATUSES)) for title, c in sorted(counts.items())))


def work_per_worker(cases: Sequence[tuple[str, int]]) -> Table:
    return Table("work_per_worker", "Cases allocated to each worker", "bar", ("worker", "cases"),
                 tuple((worker, count) for worker, count in cases))


def at_risk(clocks: Iterable[OpenClock]) -> list[dict[str, Any]]:
    """The clocks that need the manager now: breached first, then at risk, soonest due first."""
    needing = [c for c in clocks if c.status != "on_track"]
    needing.sort(key=lambda c: (c.status != "breached", c.due_date, c.clock_id))
    return [{"clock_id": c.clock_id, "person_id": c.person_id, "title": c.title, "due_date": c.due_date.isoformat(),
             "status": c.status} for c in needing]


def figures(entries: Sequence[Entry], clocks: Sequence[OpenClock], cases: Sequence[tuple[str, int]], now: datetime,
            days: int) -> dict[str, Any]:
    tables = (waiting_by_rag(entries, london_date(now), days), days_waiting(entries, now),
              reviews_by_week(entries, now), clocks_by_status(clocks), work_per_worker(cases))
    return {"as_of": now.isoformat(), "charts": [t.as_json() for t in tables], "clocks_needing_action": at_risk(clocks)}
