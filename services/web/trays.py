"""How the desk marks a Review tray entry (R-T8): pure, from the allocation service's entry JSON."""

from collections.abc import Mapping
from typing import Any


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def review_mark(entry: Mapping[str, Any]) -> tuple[str, str]:
    """(css kind, words) for an entry: overdue by N days, due today, or due in N days."""
    days = int(entry.get("days_until_due") or 0)
    if entry.get("overdue"):
        return "overdue", f"Overdue by {_days(-days)}"
    if entry.get("due"):
        return "due", "Due today" if days >= 0 else f"Due since {_days(-days)}"
    return "waiting", f"Due in {_days(days)}"
