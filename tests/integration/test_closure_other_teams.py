"""R-K1 through the broker with single-role workers: when a Wellbeing GSO proposes a full case closure, another
team's open involvement with the person (an organisational relationship recorded in allocation, or a worker
relationship made for another team) is named beside the Finish button and on step.finished — a warning, not a
block (seed 001 §6.5 "always make sure you have checked relationships"; the closure ends them, R-A5). The GSO's
own relationship and their team's are not named."""

import uuid

import httpx

from shared.testing import service_auth
from tests.allocation_harness import AllocationCommands, Staff, referral_seen
from tests.workflow_harness import (
    PROPOSED_CLOSURE_VALUES,
    SCREENING_VALUES,
    TRIAGE,
    TRIAGE_VALUES,
    Commands,
    Personas,
    new_case,
)

PROPOSED = "Adult Proposed Case Closure"
IN_PROGRESS = "Adult Case Closure in Progress"


async def test_R_K1_closure_names_other_teams_still_involved_without_blocking(
        infra, referrals, workflow, allocation, events, commands: Commands, alloc: AllocationCommands, db):
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    other = Staff()  # a locality team still involved with the person
    person_id, screening = await new_case(infra, events)

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    # the hub screens and triages; the triage proposes the closure to the GSO herself
    await ok("step.start", p.hub, step_id=screening)
    await ok("step.save", p.hub, step_id=screening, values=SCREENING_VALUES)
    await ok("step.add_next_action", p.hub, step_id=screening, action=TRIAGE)
    triage = (await ok("step.finish", p.hub, step_id=screening)).of("step.created")["step_id"]
    await ok("step.start", p.hub, step_id=triage)
    await ok("step.save", p.hub, step_id=triage, values=TRIAGE_VALUES)
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

    finished = (await ok("step.finish", p.hub, step_id=proposed)).of("step.finished")
    assert [w["code"] for w in finished["warnings"] if w["code"] == "other_team_involved"] == [
        "other_team_involved"]
    assert p.hub["worker_id"] in finished["warned_worker_ids"]
