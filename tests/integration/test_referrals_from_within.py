"""Issue #17 §5 through the broker, with single-role workers: from within a review the social worker opens a mental
capacity assessment for themselves and sends an Occupational Therapy referral to LBS Adult Day Service, whose
worker finds it in the team's incoming work and finishes it (seed 001 §3.3 "Mental capacity Assessment", §4.3)."""

import uuid

import httpx

from shared.testing import service_auth
from tests.workflow_harness import NEWEST_WORK, Commands, actor


async def test_R_NA3_an_mca_and_an_ot_referral_started_from_within_a_review_reach_their_workers(
        workflow, commands: Commands):
    run = uuid.uuid4().hex[:8]
    sw = actor(f"sw-{run}", "social_worker", teams=(f"adult-review-{run}",))
    day = actor(f"day-{run}", "social_worker", teams=("adult-day-service",))
    person_id = str(uuid.uuid4())
    review = await commands.given_step(sw, person_id, "Initial Review")

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    mca = (await ok("step.add_next_action", sw, step_id=review, action="Mental Capacity Assessment",
                    send_immediately=True)).of("step.created")["step_id"]
    ot = (await ok("step.add_next_action", sw, step_id=review, action="Referral to Occupational Therapy",
                   send_immediately=True)).of("step.created")["step_id"]
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        mine = (await http.get(f"/workers/{sw['worker_id']}/work")).json()
        assert mca in {s["step_id"] for s in mine["incoming"]}
        assert review in {s["step_id"] for s in mine["incomplete"]}  # the review goes on
        team = (await http.get("/teams/adult-day-service/work", params=NEWEST_WORK)).json()
        assert ot in {s["step_id"] for s in team["incoming"]}

        await ok("step.start", day, step_id=ot)
        await ok("step.save", day, step_id=ot, values={"ot_support_needed": "Bathing and stairs assessment"})
        await ok("step.add_next_action", day, step_id=ot, action="OT referral actioned (NFA)")
        await ok("step.finish", day, step_id=ot)
        assert (await http.get(f"/steps/{ot}")).json()["state"] == "finished"
