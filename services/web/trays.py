"""How the desk shows the trays: a Review tray entry's mark (R-T8), from the allocation service's entry JSON, and
the guide's RAG definitions and high-risk indicators wherever a RAG is chosen (R-T3, `rag_guide.yaml`)."""

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

RAG_GUIDE_FILE = Path(__file__).parent / "rag_guide.yaml"


@functools.cache
def rag_guide() -> dict[str, Any]:
    """Seed 004's definitions of support and risk of harm, its high-risk indicators and its matrix."""
    guide: dict[str, Any] = yaml.safe_load(RAG_GUIDE_FILE.read_text(encoding="utf-8"))
    return guide


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
