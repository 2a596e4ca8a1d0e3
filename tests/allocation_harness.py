"""Allocation test harness: send allocation.commands and await each one's single outcome."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.envelope import Envelope
from shared.testing import EventLog, Seen, poll_until
from tests.workflow_harness import Commands, Outcome

OUT = [topics.ALLOCATION_EVENTS, topics.WORKFLOW_COMMANDS, topics.REFERRALS_COMMANDS, topics.SCHEDULER_TIMERS,
       topics.REFERRALS_EVENTS, topics.WORKFLOW_EVENTS, topics.dlq(topics.ALLOCATION_COMMANDS)]


def actor(worker_id: str, *roles: str, teams: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"worker_id": worker_id, "roles": list(roles), "team_ids": list(teams)}


class Staff:
    """A team's manager, leader and workers; a fresh suffix keeps tests' trays and allocations apart."""

    def __init__(self) -> None:
        self.suffix = uuid.uuid4().hex[:8]
        self.team = f"locality-{self.suffix}"
        self.tm = actor(f"tm-{self.suffix}", "team_manager", teams=(self.team,))
        self.tl = actor(f"tl-{self.suffix}", "team_leader", teams=(self.team,))
        self.sw = actor(f"sw-{self.suffix}", "social_worker", teams=(self.team,))
        self.sw2 = actor(f"sw2-{self.suffix}", "social_worker", teams=(self.team,))


class AllocationCommands(Commands):
    """allocation.commands answered on allocation.events, and what a command sent on elsewhere."""

    def __init__(self, producer: AIOKafkaProducer, log: EventLog) -> None:
        super().__init__(producer, log, topics.ALLOCATION_COMMANDS, topics.ALLOCATION_EVENTS)
        self.log = log

    async def send(self, type_: str, who: dict[str, Any], *, key: str | None = None, timeout: float = 30.0,
                   **data: Any) -> Outcome:
        if key is None and "person_id" in data:
            key = str(data["person_id"])
        return await super().send(type_, who, key=key, timeout=timeout, **data)

    def sent(self, topic: str, cause: Envelope, type_: str | None = None) -> list[Seen]:
        """Commands this command sent on to another topic (step.assign, case_note.add, timer.set…)."""
        return self.log.matching(lambda s: s.topic == topic and s.body.get("causationid") == str(cause.id)
                                 and (type_ is None or s.type == type_))

    async def hand_to_team(self, person_id: str, step_id: str, team: str) -> None:
        """The Wellbeing Hub passes the referral's first step to `team` (R-W3): from then on it is that team's
        waiting work, which allocating the case for the team moves to the worker (R-A3)."""
        hub = actor(f"hub-{uuid.uuid4().hex[:8]}", "gso", teams=("wellbeing-service-hub",))
        workflow = Commands(self._producer, self.log)
        (await workflow.send("step.assign", hub, key=person_id, step_id=step_id,
                             to={"kind": "team", "id": team})).ok()

    async def wait_sent(self, topic: str, cause: Envelope, type_: str, count: int = 1,
                        timeout: float = 30.0) -> list[Seen]:
        return await self.log.wait_for(lambda s: s.topic == topic and s.type == type_
                                       and s.body.get("causationid") == str(cause.id), timeout, count)


async def referral(infra: Any, log: EventLog, **overrides: Any) -> tuple[str, str]:
    """A wellbeing referral through intake: the person id and their first (team) step's id."""
    from shared.testing import publish
    from tests.factories import referral_message, unique_referral

    data = unique_referral(**overrides)
    envelope = referral_message(data)
    await publish(infra.bootstrap, topics.REFERRALS_INTAKE, [(data["referral_id"], envelope.to_bytes())])
    [accepted] = await log.wait_for(lambda s: s.caused_by(envelope.id) and s.type == "referral.accepted", 30)
    person_id = accepted.data["person_id"]
    [created] = await log.wait_for(
        lambda s: s.type == "step.created" and s.data.get("workflow_id") == accepted.data["workflow_id"], 30)
    return person_id, created.data["step_id"]


async def referral_seen(db: asyncpg.Pool, person_id: str) -> None:
    """Allocation has recorded the person's referral (urgency) from referrals.events."""
    await poll_until(lambda: db.fetchval("SELECT urgency FROM allocation.cases WHERE person_id = $1",
                                    uuid.UUID(person_id)))


def tray_args(team: str, **overrides: Any) -> dict[str, Any]:
    return {"team_id": team, "rationale": "No worker with capacity this week", "priority": "medium",
            "urgent": False, "complexity": "medium", "support": "moderate", "risk": "moderate", **overrides}
