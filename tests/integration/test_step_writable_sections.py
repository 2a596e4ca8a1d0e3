"""Issue #22 §9 through the broker, with single-role workers of seed 000 "Full Case Closures": `GET /steps/{id}`
says, section by section, whether the worker reading may write it now, by the save's own rules — the closer
(the step's worker) writes every section but the checklist the closure's request asks of the LCC Adult Care (Area)
Team, whose social worker writes only that (R-C5); a Senior Officer, who may open any person but neither works, signs
nor answers the step (R-W10), nothing, and the save refuses them too; a component reading is told nothing."""

import uuid
from typing import Any

import httpx

from shared.testing import poll_until, service_auth, worker_auth
from tests.integration.test_closure_direct_payment import AREA_TEAM, DIED_WITH_DP, DP_REQUEST, PROPOSED, team_requests
from tests.workflow_harness import Commands, Personas, actor, new_case

SO = actor("so", "senior_officer", teams=("wellbeing-service-management",))  # users.yaml: above teams


async def writable(workflow: Any, step_id: str, auth: httpx.Auth) -> dict[int, bool | None]:
    """Each section of the step's form by number: whether the reader may write it, as the step read says."""
    async with httpx.AsyncClient(auth=auth, base_url=workflow.url) as http:
        response = await http.get(f"/steps/{step_id}")
    assert response.status_code == 200, response.text
    return {s["number"]: s["writable"] for s in response.json()["form"]["sections"]}


def reading_as(who: dict[str, Any], person_id: str) -> httpx.Auth:
    return worker_auth(who["worker_id"], who["roles"], who["team_ids"], person_id=person_id)


async def test_issue_22_R_W10_R_C5_the_step_read_says_which_sections_the_reader_may_write(
        infra, referrals, workflow, allocation, notifications, events, commands: Commands):
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    area = actor(f"area-sw{p.suffix}", "social_worker", teams=(AREA_TEAM,))
    person_id, _ = await new_case(infra, events)

    async def ok(type_: str, who: dict[str, Any], **data: Any):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    started = await ok("step.start_new", p.hub, person_id=person_id, step_type=PROPOSED)
    proposed = started.of("step.created")["step_id"]
    await ok("step.save", p.hub, step_id=proposed, values=DIED_WITH_DP)
    await ok("step.send_request", p.hub, step_id=proposed, name=DP_REQUEST, note="Died on 1 July")
    await poll_until(lambda: team_requests(notifications, area, AREA_TEAM, person_id), 30,
                     "the request in the Adult Care (Area) team's inbox")

    # the checklist is the Adult Care (Area) team's to complete, not the closer's (R-C5)
    assert await writable(workflow, proposed, reading_as(p.hub, person_id)) == {1: True, 2: True, 3: False}
    assert await writable(workflow, proposed, reading_as(area, person_id)) == {1: False, 2: False, 3: True}
    assert await writable(workflow, proposed, reading_as(SO, person_id)) == {1: False, 2: False, 3: False}
    assert await writable(workflow, proposed, service_auth()) == {1: None, 2: None, 3: None}
    refused = (await commands.send("step.save", SO, key=person_id, step_id=proposed,
                                   values={"closure_notes": "seen"})).reasons
    assert [r["code"] for r in refused] == ["not_assignee"]  # the save says what the read said
    refused = (await commands.send("step.save", p.hub, key=person_id, step_id=proposed,
                                   values={"dp_suspended": True})).reasons
    assert [(r["code"], r["field"]) for r in refused] == [("answered_by_request", "dp_suspended")]
