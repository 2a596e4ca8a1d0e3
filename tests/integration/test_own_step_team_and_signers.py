"""A worker's own step belongs to their team (R-W14), and its sign-off goes only to someone who can sign it
(R-RQ9): through the real broker and database, each worker with one role, as the desk would send them."""

import uuid

import httpx

from shared.testing import service_auth
from tests.allocation_harness import actor
from tests.workflow_harness import Commands, new_case

MCA = "Mental Capacity Assessment"  # started by a social worker for themselves; signed by an ATM or TM
SIGN_OFF = "REQUIRED Please review information and confirm outcome"


async def test_R_W14_R_RQ9_a_workers_own_step_is_their_teams_and_its_sign_off_goes_to_a_signer(
        infra, workflow, events, commands: Commands):
    suffix = uuid.uuid4().hex[:8]
    team, elsewhere = f"locality-{suffix}", f"locality-{suffix}-south"
    sw = actor(f"sw-{suffix}", "social_worker", teams=(team,))
    colleague = actor(f"sw2-{suffix}", "social_worker", teams=(team, f"{team}-admin"))
    tm = actor(f"tm-{suffix}", "team_manager", teams=(team,))
    other_tm = actor(f"tm-{suffix}-south", "team_manager", teams=(elsewhere,))
    person_id, _ = await new_case(infra, events)

    started = (await commands.send("step.start_new", sw, key=person_id, person_id=person_id, step_type=MCA)).ok()
    step_id = started.of("step.created")["step_id"]

    # R-W14: only ever the worker's own, yet their team's work: another team's manager may not cancel it
    cancel = await commands.send("step.cancel", other_tm, key=person_id, step_id=step_id, reason="Not ours")
    [why] = cancel.reasons
    assert (why["code"], why["field"]) == ("not_team_member", "actor.team_ids") and team in why["message"]
    kept = (await commands.send("step.assign", tm, key=person_id, step_id=step_id,  # the team's own manager may
                                to={"kind": "worker", "id": sw["worker_id"]})).ok()
    assert kept.of("step.assigned")["assignee"] == {"kind": "worker", "id": sw["worker_id"]}

    # R-RQ9: a social worker workflow has seen act cannot sign an MCA; the team's manager can, and is named
    # refused (the step is started and not theirs), yet workflow now knows them as a social worker of the team
    assert (await commands.send("step.start", colleague, key=person_id, step_id=step_id)).rejected
    to_colleague = await commands.send("step.send_request", sw, key=person_id, step_id=step_id, name=SIGN_OFF,
                                       to={"kind": "worker", "id": colleague["worker_id"]})
    [why] = to_colleague.reasons
    assert (why["code"], why["field"]) == ("cannot_sign", "to")
    assert f"worker {colleague['worker_id']} cannot sign" in why["message"]
    assert "Team Manager or Assistant Team Manager" in why["message"] and tm["worker_id"] in why["message"]
    to_other_team = await commands.send("step.send_request", sw, key=person_id, step_id=step_id, name=SIGN_OFF,
                                        to={"kind": "team", "id": f"{team}-admin"})  # seen: only a social worker
    assert to_other_team.reasons[0]["code"] == "cannot_sign" and f"nobody in team {team}-admin" in (
        to_other_team.reasons[0]["message"])

    # the colleague is made an assistant team manager: once workflow sees them act as one, they can sign
    promoted = {**colleague, "roles": ["assistant_team_manager"]}
    assert (await commands.send("step.start", promoted, key=person_id, step_id=step_id)).rejected
    sent = (await commands.send("step.send_request", sw, key=person_id, step_id=step_id, name=SIGN_OFF,
                                to={"kind": "worker", "id": colleague["worker_id"]})).ok()
    assert sent.of("request.raised")["to"] == {"kind": "worker", "id": colleague["worker_id"]}
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        step = (await http.get(f"/steps/{step_id}")).json()
    assert step["state"] == "awaiting_authorisation"
