"""What the web needs to know of the workflow packs, read from the workflow service's
`GET /step-types`: which step types a worker may Start > New, and which wait for authorisation."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.teams import team_name, team_named


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


def next_action_pickers(step: Mapping[str, Any], step_types: Sequence[Mapping[str, Any]],
                        members: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """§9: for each next action of the step, whom its picker lists — the workers who can work the step it
    creates (a role that works it, in a team of its pack) and its pack's teams, by name — and the team it
    proposes: the one chosen in the form's team field (`team_from_field`, the Involved Team chosen in triage),
    else the pack's default; none for an action routed by the person's locality (R-C5: workflow finds it)."""
    latest = {t["step_type"]: t for t in sorted(step_types, key=lambda t: t["pack_version"])}
    values = step.get("values") or {}
    pickers = {}
    for action in step["next_actions"]:
        target = latest.get(action.get("target_step_type") or "")
        teams = set(target["pack_teams"]) if target else set()
        roles = set(target.get("worked_by") or ()) if target else set()
        field = action.get("team_from_field")
        chosen = team_named(str(values.get(field) or "")) if field else None
        team = chosen or ("" if action.get("team_by_locality") else action.get("default_team") or "")
        workers = [m["user_id"] for m in members if set(m["team_ids"]) & teams
                   and (not roles or set(m["roles"]) & roles)]
        pickers[action["action"]] = {"team": team, "teams": sorted(teams | ({team} - {""}), key=team_name),
                                     "workers": workers}
    return pickers


def authorised_types(step_types: Sequence[Mapping[str, Any]]) -> frozenset[tuple[str, int]]:
    """(step type, pack version) of the types whose REQUIRED request puts a step in awaiting authorisation."""
    return frozenset((t["step_type"], t["pack_version"]) for t in step_types if t["authorisers"])


def needs_authorising(authorised: frozenset[tuple[str, int]]) -> Any:
    def check(step: Mapping[str, Any]) -> bool:
        return (str(step.get("step_type")), step.get("pack_version")) in authorised

    return check
