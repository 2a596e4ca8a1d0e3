"""Who may see or change a person's record without giving a reason (R-P5, R-A1, R-A2, R-A6; issue #11 §3).

Pure rules, no I/O: the desk, referrals (shared/access.py reads what they need over HTTP) and allocation (from its
own relationships and trays) ask the same question.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from shared.actor import MANAGER_ROLES, above_teams

# work in hand or scheduled (workflow's OPEN_STATES plus future): either is a reason to see the person
OPEN_OR_FUTURE_STATES = frozenset({"incoming", "incomplete", "returned", "awaiting_authorisation", "future"})


def _mine(target: Mapping[str, Any] | None, worker_id: str, team_ids: frozenset[str]) -> bool:
    if not target:
        return False
    kind, ident = target.get("kind"), target.get("id")
    return (kind == "worker" and ident == worker_id) or (kind == "team" and ident in team_ids)


def why_allowed(
    *, worker_id: str, team_ids: Iterable[str], person_id: str, roles: Iterable[str] = (),
    steps: Iterable[Mapping[str, Any]] = (),
    relationships: Mapping[str, Any] | None = None,
    tray_person_ids: Iterable[str] = (),
    inbox: Iterable[Mapping[str, Any]] = (),
) -> str | None:
    """Why the worker may see the person, or None: then a recorded reason is needed (break-glass)."""
    teams, roles = frozenset(team_ids), frozenset(roles)
    if above_teams(roles):
        return "a manager above teams"  # they allocate and assign for any team (R-A3)
    relationships = relationships or {}
    for rel in relationships.get("worker_relationships", []):
        if not rel.get("open", rel.get("end_date") is None):
            continue
        if rel.get("worker_id") == worker_id:
            return "allocated to you"
        if rel.get("team_id") in teams and roles & MANAGER_ROLES:
            return "allocated within the team you manage"  # issue #21 §6: access follows the work
    for step in steps:
        if step.get("state") not in OPEN_OR_FUTURE_STATES:
            continue
        if _mine(step.get("assignee"), worker_id, teams):
            who = "your" if step["assignee"].get("kind") == "worker" else "your team's"
            return f"{step.get('step_type')} is in {who} work"
        if step.get("assigned_by") == worker_id:
            return f"you assigned the {step.get('step_type')}"  # issue #21 §6: access follows the work
    if person_id in set(tray_person_ids):
        return "on your team's tray"
    for item in inbox:
        if item.get("person_id") == person_id and _mine(item.get("to"), worker_id, teams):
            return f"{item.get('name')} is in your inbox"
    for rel in relationships.get("organisational_relationships", []):
        if rel.get("team_id") in teams and rel.get("visible", True):
            return "your team is involved"
    return None


def step_is_mine(step: Mapping[str, Any], worker_id: str, team_ids: Iterable[str]) -> bool:
    return _mine(step.get("assignee"), worker_id, frozenset(team_ids))
