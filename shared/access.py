"""Who may see or change a person's record without giving a reason (R-P5, R-A1, R-A2; issue #11 §3).

The rules are pure (shared/grounds.py); `RelationshipReader` reads what they need over HTTP, the way the web does:
the person's relationships from allocation and their steps from workflow.
"""

import urllib.parse
from collections.abc import Iterable
from typing import Any

from shared.grounds import OPEN_OR_FUTURE_STATES, step_is_mine, why_allowed
from shared.readers import ServiceReader, Unavailable

__all__ = ["OPEN_OR_FUTURE_STATES", "RelationshipReader", "step_is_mine", "why_allowed"]


class RelationshipReader:
    """A worker's grounds to act on a person, read from allocation and workflow; Unavailable if either is down."""

    def __init__(self, allocation: ServiceReader, workflow: ServiceReader | None) -> None:
        self._allocation = allocation
        self._workflow = workflow  # None: the caller is workflow, and gives the steps

    async def why_allowed(self, *, worker_id: str, team_ids: Iterable[str], person_id: str,
                          roles: Iterable[str] = (), steps: list[dict[str, Any]] | None = None) -> str | None:
        teams = frozenset(team_ids)
        person = _q(person_id)
        why = None
        if steps is not None:  # given (workflow has them): allocation is read only when they are no grounds
            why = why_allowed(worker_id=worker_id, team_ids=teams, person_id=person_id, roles=roles,
                              steps=[s for s in steps if isinstance(s, dict)])
        if why is None:
            relationships = await _read(self._allocation, "allocation", f"/people/{person}/relationships", dict)
            why = why_allowed(worker_id=worker_id, team_ids=teams, person_id=person_id,
                              relationships=relationships, roles=roles)
        if why is None and steps is None:
            assert self._workflow is not None, "give the person's steps or a workflow reader"
            steps = await _read(self._workflow, "workflow", f"/people/{person}/steps", list)
            why = why_allowed(worker_id=worker_id, team_ids=teams, person_id=person_id,
                              steps=[s for s in steps if isinstance(s, dict)])
        if why is None:
            trays = await _read(self._allocation, "allocation", f"/people/{person}/trays", list)
            on_ours = any(isinstance(t, dict) and t.get("team_id") in teams for t in trays)
            why = why_allowed(worker_id=worker_id, team_ids=teams, person_id=person_id,
                              tray_person_ids=[person_id] if on_ours else [])
        return why


async def _read(reader: ServiceReader, service: str, path: str, shape: type) -> Any:
    """The body at `path`; empty when there is none; Unavailable (never an allow) when it cannot be read."""
    found, body = await reader.get_json(path)
    if found == "missing":
        return shape()
    if found != "found" or not isinstance(body, shape):
        raise Unavailable(f"{service} could not be read for an access check")
    return body


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")
