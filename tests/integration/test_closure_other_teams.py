"""R-K1 through the broker with single-role workers: when a Wellbeing GSO proposes a full case closure, another
team's open involvement with the person (an organisational relationship recorded in allocation, or a worker
relationship made for another team) is named beside the Finish button and on step.finished — a warning, not a
block (seed 001 §6.5 "always make sure you have checked relationships"; the closure ends them, R-A5). The GSO's
own relationship and their team's are not named. The other team is told: a task in its inbox (R-RQ8), read by one
of its social workers, done when a member of the team says so, or by itself when the case closes or the closure is
cancelled (the chance to speak before the closure is over then)."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from shared import topics
from shared.testing import service_auth
from tests.allocation_harness import AllocationCommands, Staff, referral_seen
from tests.integration.test_tasks import inbox, task_of
from tests.workflow_harness import (
    CLOSURE_VALUES,
    PROPOSED_CLOSURE_VALUES,
    Commands,
    Personas,
    actor,
    new_case,
)

PROPOSED = "Adult Proposed Case Closure"
IN_PROGRESS = "Adult Case Closure in Progress"



@dataclass
class Told:
    """A closure proposed by the hub GSO, finished while a locality team is still involved, and that team's task."""

    person_id: str
    p: Personas
    other: Staff
    in_progress: str
    admin: dict[str, Any]  # a business support worker of the admin team the closure went to (by locality, R-C5)
    task: dict[str, Any]


async def told_of_closure(infra: Any, workflow: Any, notifications: Any, events: Any, commands: Commands,
                          alloc: AllocationCommands, db: Any) -> Told:
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    other = Staff()  # a locality team still involved with the person
    person_id, screening = await new_case(infra, events)

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    # the hub screens and triages; the triage proposes the closure to the GSO herself
    triage = await commands.triage_opened(p.hub, person_id, screening)
    await ok("step.add_next_action", p.hub, step_id=triage, action=PROPOSED)
    proposed = (await ok("step.finish", p.hub, step_id=triage)).of("step.created")["step_id"]

    # involvement recorded in allocation: the GSO's own, her team's, and the locality team's
    await referral_seen(db, person_id)
    (await alloc.send("worker_relationship.add", p.so, key=person_id, person_id=person_id,
                      worker_id=p.hub["worker_id"])).ok()
    (await alloc.send("org_relationship.add", p.so, key=person_id, person_id=person_id,
                      team_id="wellbeing-service-hub", access_reason="Hub screening")).ok()
    (await alloc.send("org_relationship.add", other.tm, key=person_id, person_id=person_id, team_id=other.team,
                      access_reason="The duty call asked for the team")).ok()

    await ok("step.start", p.hub, step_id=proposed)
    await ok("step.save", p.hub, step_id=proposed, values=PROPOSED_CLOSURE_VALUES)
    await ok("step.add_next_action", p.hub, step_id=proposed, action=IN_PROGRESS)
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        read = (await http.get(f"/steps/{proposed}/blockers", params={
            "worker_id": p.hub["worker_id"], "roles": "gso", "team_ids": "wellbeing-service-hub"})).json()
    assert read["can_finish"], read["blockers"]
    [named] = [w for w in read["warnings"] if w["code"] == "other_team_involved"]
    assert other.team in named["message"] and "R-K1" in named["message"]
    assert "wellbeing-service-hub" not in named["message"] and p.hub["worker_id"] not in named["message"]

    done = await ok("step.finish", p.hub, step_id=proposed)
    finished = done.of("step.finished")
    assert [w["code"] for w in finished["warnings"] if w["code"] == "other_team_involved"] == [
        "other_team_involved"]
    assert p.hub["worker_id"] in finished["warned_worker_ids"]
    assert finished["told_of_closure"] == [{"kind": "team", "id": other.team}]

    # the other team is told: a task in its inbox, read by one of its social workers (one role)
    told = await task_of(notifications, other.sw, "teams", other.team, person_id, "case_closing")
    assert (told["name"], told["task"]["rule"], told["task"]["link"], told["sent_by"]) == (
        "Case closing: your involvement will end", "R-K1", f"/steps/{proposed}", p.hub["worker_id"])
    assert told["note"].startswith(f"{p.hub['worker_id']} finished {PROPOSED} for a full case closure while your"
                                   " team is still involved")
    hub_tasks = await inbox(notifications, p.hub, "teams", "wellbeing-service-hub", state="open")
    assert [t for t in hub_tasks if t["person_id"] == person_id and t["task"]["code"] == "case_closing"] == []
    in_progress = done.of("step.created")
    admin = actor(f"admin{p.suffix}", "business_support", teams=(in_progress["assignee"]["id"],))
    return Told(person_id, p, other, in_progress["step_id"], admin, told)


async def test_R_K1_closure_names_other_teams_still_involved_without_blocking_and_tells_them(
        infra, referrals, workflow, allocation, notifications, events, commands: Commands, alloc: AllocationCommands,
        db, signing_producer):
    told = await told_of_closure(infra, workflow, notifications, events, commands, alloc, db)
    # a member of the team says it is done: who and when are kept
    tasks = Commands(signing_producer, events, topics.NOTIFICATIONS_COMMANDS, topics.NOTIFICATIONS_EVENTS)
    done = (await tasks.send("task.complete", told.other.sw, key=told.person_id, task_id=told.task["request_id"],
                             note="Nothing open with us: fine to close")).ok().of("task.completed")
    assert (done["by"], done["how"]) == (told.other.sw["worker_id"], "done")


async def test_R_K1_the_told_teams_task_is_done_by_the_closer_when_the_case_closes(
        infra, referrals, workflow, allocation, notifications, events, commands: Commands, alloc: AllocationCommands,
        db):
    told = await told_of_closure(infra, workflow, notifications, events, commands, alloc, db)
    admin, step_id = told.admin, told.in_progress
    for type_, data in (("step.start", {}), ("step.save", {"values": CLOSURE_VALUES}),
                        ("step.add_next_action", {"action": "Adult Case Closed (NFA)"}), ("step.finish", {})):
        (await commands.send(type_, admin, key=told.person_id, step_id=step_id, **data)).ok()
    done = await task_of(notifications, told.other.sw, "teams", told.other.team, told.person_id, "case_closing",
                         state="completed")
    assert (done["request_id"], done["closed_by"], done["closed_reason"]) == (
        told.task["request_id"], admin["worker_id"], "case_closed")


async def test_R_K1_the_told_teams_task_is_done_when_the_closure_is_cancelled(
        infra, referrals, workflow, allocation, notifications, events, commands: Commands, alloc: AllocationCommands,
        db):
    told = await told_of_closure(infra, workflow, notifications, events, commands, alloc, db)
    admin = told.admin
    (await commands.send("step.cancel", admin, key=told.person_id, step_id=told.in_progress,
                         reason="The carers team still works with the person")).ok()
    done = await task_of(notifications, told.other.sw, "teams", told.other.team, told.person_id, "case_closing",
                         state="completed")
    assert (done["request_id"], done["closed_by"], done["closed_reason"]) == (
        told.task["request_id"], admin["worker_id"], "closure_cancelled")
