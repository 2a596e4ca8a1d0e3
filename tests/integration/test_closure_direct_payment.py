"""R-C5 through the broker with single-role workers (seed 000 "Full Case Closures"): a Wellbeing GSO proposes the
full closure of a person who died with a direct payment; the closure cannot finish without the "Adult Please review
information and authorise" request to the LCC Adult Care (Area) Team, which lands in that team's inbox; a social
worker of that team (one role) completes the Direct Payments Suspension and Termination checklist — every check
Yes — and finishes the Adult Proposed Case Closure, which goes on to the Adult Admin Team."""

import uuid
from typing import Any

import httpx

from shared.testing import poll_until, service_auth, worker_auth
from tests.purchasing_harness import PA, coordinator, plan_values, support_plan
from tests.workflow_harness import (
    PROPOSED_CLOSURE_VALUES,
    Commands,
    Personas,
    actor,
    new_case,
)

PROPOSED = "Adult Proposed Case Closure"
IN_PROGRESS = "Adult Case Closure in Progress"
DP_REQUEST = "Adult Please review information and authorise"
CHECKLIST_TITLE = "Direct Payments Suspension and Termination Checklist"
AREA_TEAM = "adult-care-area"
DIED_WITH_DP = {**PROPOSED_CLOSURE_VALUES, "closure_reason": "Person has died", "had_direct_payment": True}
CHECKLIST = {"dp_suspended": True, "dp_termination_date": "2024-07-02", "dp_final_reconciliation_requested": True}


async def team_requests(notifications: Any, who: dict[str, Any], team: str, person_id: str) -> list[dict[str, Any]]:
    """The team's open requests about the person, as its worker reads the inbox with their own token."""
    auth = worker_auth(who["worker_id"], who["roles"], who["team_ids"])
    async with httpx.AsyncClient(auth=auth, base_url=notifications.url) as http:
        response = await http.get(f"/teams/{team}/inbox", params={"kind": "request", "state": "open"})
    assert response.status_code == 200, response.text
    return [i for i in response.json() if i["person_id"] == person_id]


async def test_R_C5_a_death_with_a_direct_payment_is_closed_through_the_adult_care_area_teams_checklist(
        infra, referrals, workflow, allocation, notifications, events, commands: Commands):
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    area = actor(f"area-sw{p.suffix}", "social_worker", teams=(AREA_TEAM,))
    person_id, screening = await new_case(infra, events)

    async def send(type_: str, who: dict[str, Any], **data: Any):
        return await commands.send(type_, who, key=person_id, **data)

    async def ok(type_: str, who: dict[str, Any], **data: Any):
        return (await send(type_, who, **data)).ok()

    # the hub screens and triages; the triage proposes the closure to the GSO herself
    triage = await commands.triage_opened(p.hub, person_id, screening)
    await ok("step.add_next_action", p.hub, step_id=triage, action=PROPOSED)
    proposed = (await ok("step.finish", p.hub, step_id=triage)).of("step.created")["step_id"]

    await ok("step.start", p.hub, step_id=proposed)
    await ok("step.save", p.hub, step_id=proposed, values=DIED_WITH_DP)
    await ok("step.add_next_action", p.hub, step_id=proposed, action=IN_PROGRESS)
    refused = (await send("step.finish", p.hub, step_id=proposed)).reasons
    assert "required_request" in [r["code"] for r in refused]
    assert {r["field"] for r in refused if r["code"] in ("check_not_done", "missing_field")} == set(CHECKLIST)

    raised = (await ok("step.send_request", p.hub, step_id=proposed, name=DP_REQUEST,
                       note="Died on 1 July; had a direct payment")).of("request.raised")
    assert raised["to"] == {"kind": "team", "id": AREA_TEAM}
    [waiting] = await poll_until(lambda: team_requests(notifications, area, AREA_TEAM, person_id), 30,
                                 "the request in the Adult Care (Area) team's inbox")
    assert (waiting["name"], waiting["step_id"]) == (DP_REQUEST, proposed)

    # the team's social worker works the checklist: a No is not enough (R-K1), Yes for every check is
    await ok("step.save", area, step_id=proposed, values={**CHECKLIST, "dp_final_reconciliation_requested": False})
    [no] = (await send("step.finish", area, step_id=proposed)).reasons
    assert (no["code"], no["field"]) == ("check_not_done", "dp_final_reconciliation_requested")
    await ok("step.save", area, step_id=proposed, values={"dp_final_reconciliation_requested": True})
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:  # what the desk's Finish asks
        read = (await http.get(f"/steps/{proposed}/blockers", params={
            "worker_id": area["worker_id"], "roles": "social_worker", "team_ids": AREA_TEAM})).json()
    assert read["can_finish"], read["blockers"]
    done = await ok("step.finish", area, step_id=proposed)
    assert done.of("step.finished")["actor"] == area["worker_id"]
    assert done.of("request.completed")["request_id"] == raised["request_id"]
    created = done.of("step.created")
    assert (created["step_type"], created["assignee"]["kind"]) == (IN_PROGRESS, "team")
    assert await poll_until(lambda: _no_open(notifications, area, person_id), 30, "the request closed in the inbox")


async def _no_open(notifications: Any, area: dict[str, Any], person_id: str) -> bool:
    return not await team_requests(notifications, area, AREA_TEAM, person_id)


async def test_R_C5_the_closure_names_who_answers_the_checklist_and_carries_the_live_direct_payment(
        infra, referrals, workflow, events, commands: Commands):
    """What an outside checker reads on GET /steps: the checklist section is the Adult Care (Area) team's, asked once
    the person has died with a direct payment; and the direct payment question starts answered Yes from the live
    direct payment order Tessera raised, naming that order."""
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    person_id, _ = await new_case(infra, events)
    sts = coordinator()
    plan = await support_plan(commands, sts, person_id, plan_values(PA), [{"action": "Direct payments"}])
    (await commands.send("step.finish", sts, key=person_id, step_id=plan)).ok()
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        [order] = (await http.get(f"/people/{person_id}/purchase-orders")).json()
        started = await commands.send("step.start_new", p.hub, key=person_id, person_id=person_id, step_type=PROPOSED)
        proposed = started.ok().of("step.created")["step_id"]
        read = (await http.get(f"/steps/{proposed}")).json()
        assert order["kind"] == "direct_payment" and read["values"]["had_direct_payment"] is True
        assert read["provenance"]["prefilled"]["had_direct_payment"]["po_request_ids"] == [order["po_request_id"]]
        checklist = _checklist(read)
        assert checklist["answered_by"] == {"request": DP_REQUEST, "to": {"kind": "team", "id": AREA_TEAM},
                                            "required_now": False}
        (await commands.send("step.save", p.hub, key=person_id, step_id=proposed,
                             values={"closure_reason": "Person has died"})).ok()
        read = (await http.get(f"/steps/{proposed}")).json()
    assert _checklist(read)["answered_by"]["required_now"] is True
    assert [r["required_now"] for r in read["requests"] if r["name"] == DP_REQUEST] == [True]


def _checklist(step: dict[str, Any]) -> dict[str, Any]:
    [section] = [s for s in step["form"]["sections"] if s["title"] == CHECKLIST_TITLE]
    return section
