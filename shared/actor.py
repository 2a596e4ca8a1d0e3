"""Who acts, as the domain rules see it: a worker (or the system) with roles and teams as sets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.commands.base import Actor as CommandActor

# managers above teams: allocation lets them allocate for any team (R-A3), so they see any record
CROSS_TEAM_ROLES = frozenset({"senior_officer", "head_of_service"})
MANAGER_ROLES = frozenset({"team_manager", "assistant_team_manager", "team_leader"}) | CROSS_TEAM_ROLES


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
