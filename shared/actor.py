"""Who acts, as the domain rules see it: a worker (or the system) with roles and teams as sets."""

from __future__ import annotations

from dataclasses import dataclass

from shared.commands.base import Actor as CommandActor


@dataclass(frozen=True)
class Actor:
    """Who acts: a worker with roles and teams, or the system."""

    worker_id: str
    roles: frozenset[str] = frozenset()
    team_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, actor: CommandActor) -> Actor:
        return cls(actor.worker_id, frozenset(actor.roles), frozenset(actor.team_ids))
