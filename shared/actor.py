"""Who acts, as the domain rules see it: a worker (or the system) with roles and teams as sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.commands.base import Actor as CommandActor

# managers above teams: allocation lets them allocate for any team (R-A3), so they see any record
CROSS_TEAM_ROLES = frozenset({"senior_officer", "head_of_service"})
MANAGER_ROLES = frozenset({"team_manager", "assistant_team_manager", "team_leader"}) | CROSS_TEAM_ROLES
# R-CL7: the manager's dashboard of a team (its managers, the children's teams' own: seed 003) or a service area
# (its Strategic Service Managers)
DASHBOARD_ROLES = MANAGER_ROLES | {"response_manager", "locality_manager", "lac_manager", "fpt_manager",
                                  "preventative_services_manager", "strategic_service_manager"}
# Planned Work Trays (seed 004): a TM/TL places a case and decides (R-T1)
TRAY_ROLES = frozenset({"team_manager", "team_leader"})
# R-T5 ("Reviewing the PWT"): the check-in calls are made by the team's social care workers and their
# managers; a Wellbeing team's practitioners are its Generic Support Officers (seed 000)
PRACTITIONER_ROLES = frozenset({"social_worker", "gso"})
TRAY_REVIEW_ROLES = TRAY_ROLES | {"assistant_team_manager"} | PRACTITIONER_ROLES
# R-T2 ("Principles"): urgent needs are actioned from the Duty Point, by its workers and managers
DUTY_ROLES = frozenset({"social_worker", "team_manager", "team_leader", "assistant_team_manager"})


# seed 003: a team-specific role is also its generic one where a pack names what the guide gives to
# two teams ("Response/Locality Social Worker" owns a field): one worker, one role. Never for signing
# or managing: a LAC manager is not a team manager of adult care.
# The roles as people say them (issue #22 §9: messages never say "senior_officer")
ROLE_NAMES = {
    "social_worker": "Social Worker", "gso": "Generic Support Officer", "senior_officer": "Senior Officer",
    "team_manager": "Team Manager", "assistant_team_manager": "Assistant Team Manager",
    "team_leader": "Team Leader", "head_of_service": "Head of Service", "business_support": "Business Support",
    "strategic_service_manager": "Strategic Service Manager", "administrator": "Administrator",
}


def role_name(role: str) -> str:
    """A role as people say it; a pack's own role ("response_social_worker") in words, capitalised."""
    return ROLE_NAMES.get(role) or role.replace("_", " ").title()


def roles_in_words(roles: Iterable[str], joiner: str = " or ") -> str:
    """"Team Manager or Head of Service"."""
    return joiner.join(role_name(role) for role in roles)


GENERIC_ROLES = {
    "response_social_worker": "social_worker",
    "locality_social_worker": "social_worker",
    "lac_social_worker": "social_worker",
    "fpt_social_worker": "social_worker",
    "response_manager": "team_manager",
    "locality_manager": "team_manager",
    "lac_manager": "team_manager",
    "fpt_manager": "team_manager",
    "preventative_services_manager": "team_manager",
}


def worker_of(recorded_actor: str) -> str:
    """The worker id in an actor as referrals records it on its events (`worker:<id>`)."""
    return recorded_actor.removeprefix("worker:")


def who_did(actor: str | None, names: Mapping[str, str]) -> str:
    """Who did it, by name (issue #22 §9): a worker as the desk's directory names them ("worker:tm" and "tm"
    alike; their id when it does not), a service's own action as the system's."""
    if not actor:
        return ""
    if actor.startswith("system") or ":" in actor.removeprefix("worker:"):
        return "Tessera (automatic)"
    worker = worker_of(actor)
    return names.get(worker, worker)


def held_roles(roles: Iterable[str]) -> frozenset[str]:
    """The roles held: each one given, and the generic role of each team-specific one."""
    given = frozenset(roles)
    return given | {GENERIC_ROLES[role] for role in given if role in GENERIC_ROLES}


def above_teams(roles: Iterable[str]) -> bool:
    return bool(CROSS_TEAM_ROLES & set(roles))


@dataclass(frozen=True)
class Actor:
    """Who acts: a worker with roles and teams, or the system."""

    worker_id: str
    roles: frozenset[str] = frozenset()
    team_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, actor: CommandActor) -> Actor:
        return cls(actor.worker_id, frozenset(actor.roles), frozenset(actor.team_ids))
