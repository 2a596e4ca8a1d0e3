"""Who may open a person's record without giving a reason (R-P5 access): pure rules, no I/O."""

from collections.abc import Iterable, Mapping
from typing import Any

OPEN_STATES = frozenset({"incoming", "incomplete", "returned", "awaiting_authorisation", "future"})


def _mine(target: Mapping[str, Any] | None, worker_id: str, team_ids: frozenset[str]) -> bool:
    if not target:
        return False
    kind, ident = target.get("kind"), target.get("id")
    return (kind == "worker" and ident == worker_id) or (kind == "team" and ident in team_ids)


def why_allowed(
    *, worker_id: str, team_ids: Iterable[str], person_id: str,
    steps: Iterable[Mapping[str, Any]] = (),
    relationships: Mapping[str, Any] | None = None,
    tray_person_ids: Iterable[str] = (),
    inbox: Iterable[Mapping[str, Any]] = (),
) -> str | None:
    """Why the worker may see the person, or None: then a recorded reason is needed (break-glass)."""
    teams = frozenset(team_ids)
    relationships = relationships or {}
    for rel in relationships.get("worker_relationships", []):
        if rel.get("worker_id") == worker_id and rel.get("open", rel.get("end_date") is None):
            return "allocated to you"
    for step in steps:
        if step.get("state") in OPEN_STATES and _mine(step.get("assignee"), worker_id, teams):
            who = "your" if step["assignee"].get("kind") == "worker" else "your team's"
            return f"{step.get('step_type')} is in {who} work"
    if person_id in set(tray_person_ids):
        return "on your team's Planned Work Tray"
    for item in inbox:
        if item.get("person_id") == person_id and _mine(item.get("to"), worker_id, teams):
            return f"{item.get('name')} is in your inbox"
    for rel in relationships.get("organisational_relationships", []):
        if rel.get("team_id") in teams and rel.get("visible", True):
            return "your team is involved"
    return None


def step_is_mine(step: Mapping[str, Any], worker_id: str, team_ids: Iterable[str]) -> bool:
    return _mine(step.get("assignee"), worker_id, frozenset(team_ids))
