"""R-K12 through the broker, with single-role workers: after the team manager signs off a plan with domiciliary
care and PA support, the social worker's next Interim Support Plan drops the PA support; before finishing, the
step's blockers read (what the desk shows by the Finish button) prompts for the Review Monitoring Form, naming the
service that stopped; once the form is added the prompt is gone (seed 001 §3.3 "this form monitors savings")."""

import uuid

import httpx

from shared.testing import service_auth
from tests.purchasing_harness import DOM_CARE, PA
from tests.workflow_harness import Commands, actor

ISP = "Interim Support Plan"
AUTHORISE = "REQUIRED Please Authorise Support Plan"
OTHER_WORKFLOW = "No further action – other workflow continues (NFA)"


async def test_R_K12_a_plan_that_stops_a_service_prompts_for_the_review_monitoring_form(
        workflow, commands: Commands):
    run = uuid.uuid4().hex[:8]
    sw = actor(f"sw-{run}", "social_worker", teams=(f"adult-review-{run}",))
    tm = actor(f"tm-{run}", "team_manager", teams=(f"adult-review-{run}",))
    person_id = str(uuid.uuid4())

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    def isp(*rows: dict) -> dict:
        return {"planned_services": list(rows), "care_start_date": "2024-06-10", "annual_review_date": "2025-06-03",
                "isp_reason": "Care changed after the review"}

    first = await commands.given_step(sw, person_id, ISP)
    await ok("step.save", sw, step_id=first, values=isp(DOM_CARE, PA))
    await ok("step.add_next_action", sw, step_id=first, action=OTHER_WORKFLOW)
    raised = await ok("step.send_request", sw, step_id=first, name=AUTHORISE,
                      to={"kind": "worker", "id": tm["worker_id"]})
    await ok("request.complete", tm, request_id=raised.of("request.raised")["request_id"])
    await ok("step.authorise", tm, step_id=first)

    second = await commands.given_step(sw, person_id, ISP)
    await ok("step.save", sw, step_id=second, values=isp(DOM_CARE))
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as http:
        warnings = (await http.get(f"/steps/{second}/blockers")).json()["warnings"]
        [prompt] = [w for w in warnings if w["code"] == "review_monitoring_form"]
        assert "stopped: Personal assistant (PA) support" in prompt["message"]
        assert "Review Monitoring Form" in prompt["message"] and "R-K12" in prompt["message"]
        await ok("step.add_form", sw, step_id=second, form="Review Monitoring Form")
        warnings = (await http.get(f"/steps/{second}/blockers")).json()["warnings"]
        assert not [w for w in warnings if w["code"] == "review_monitoring_form"]
