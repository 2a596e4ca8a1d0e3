"""What the web needs to know of the workflow packs, read from the workflow service's
`GET /step-types`: which step types a worker may Start > New, and which wait for authorisation."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def startable(step_types: Sequence[Mapping[str, Any]], roles: Iterable[str], team_ids: Iterable[str]) -> list[str]:
    """R-W12 Start > New: the step types a grant of which names one of the worker's roles (or none) and one
    of their teams (or none), sorted. The workflow service refuses any other (`not_startable`)."""
    held, teams = set(roles), set(team_ids)
    return sorted({t["step_type"] for t in step_types for grant in t.get("start_new") or ()
                   if (not grant["roles"] or held & set(grant["roles"]))
                   and (not grant["teams"] or teams & set(grant["teams"]))})


def pack_teams(step_types: Sequence[Mapping[str, Any]], step_type: str, pack_version: int) -> set[str]:
    """The teams of the pack the step type belongs to (the teams that work its steps)."""
    return {team for t in step_types if (t["step_type"], t["pack_version"]) == (step_type, pack_version)
            for team in t.get("pack_teams") or ()}


def authorised_types(step_types: Sequence[Mapping[str, Any]]) -> frozenset[tuple[str, int]]:
    """(step type, pack version) of the types whose REQUIRED request puts a step in awaiting authorisation."""
    return frozenset((t["step_type"], t["pack_version"]) for t in step_types if t["authorisers"])


def needs_authorising(authorised: frozenset[tuple[str, int]]) -> Any:
    def check(step: Mapping[str, Any]) -> bool:
        return (str(step.get("step_type")), step.get("pack_version")) in authorised

    return check
