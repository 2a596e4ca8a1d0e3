"""The Wellbeing journey of seed 000 end to end, driven only through workflow.commands and queries.

referral → screening → triage (case monitoring sent immediately) → trusted assessment → SAP
Delivery assigned by the SO to a GSO → support recorded per domain → REQUIRED SO request → SO
finishes → Adult Proposed Case Closure refused while case monitoring is open, accepted once it
finishes → Adult Case Closure in Progress → case closed. (R-C1, R-NA3, R-RQ2, R-RQ3, R-RQ7, R-C5, R-K1)
"""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.testing import poll_until, service_auth, worker_auth
from tests.workflow_harness import (
    CLOSURE_IN_PROGRESS,
    CLOSURE_VALUES,
    MONITORING,
    MONITORING_VALUES,
    NEWEST_WORK,
    PROPOSED_CLOSURE,
    PROPOSED_CLOSURE_VALUES,
    SAP,
    SCREENING_VALUES,
    SO_TRANSFER,
    TA,
    TA_VALUES,
    TRIAGE,
    TRIAGE_VALUES,
    Commands,
    Personas,
    actor,
    new_case,
    sap_delivery,
)

pytestmark = pytest.mark.e2e


async def test_wellbeing_journey_from_referral_to_case_closed(
        infra, referrals, workflow, allocation, notifications, events, commands: Commands):
    p = Personas(suffix=f"-{uuid.uuid4().hex[:8]}")
    person_id, screening = await new_case(infra, events)
    http = httpx.AsyncClient(auth=service_auth(), base_url=workflow.url)

    async def ok(type_: str, who: dict, **data):
        return (await commands.send(type_, who, key=person_id, **data)).ok()

    async def refused(type_: str, who: dict, **data) -> list[dict]:
        outcome = await commands.send(type_, who, key=person_id, **data)
        return outcome.reasons

    async def step(step_id: str) -> dict:
        return (await http.get(f"/steps/{step_id}")).json()

    try:
        # WB Wellbeing Screening, from the hub team's inbox
        hub_work = (await http.get("/teams/wellbeing-service-hub/work", params=NEWEST_WORK)).json()
        assert screening in [s["step_id"] for s in hub_work["incoming"]]
        await ok("step.start", p.hub, step_id=screening)
        await ok("step.save", p.hub, step_id=screening, values=SCREENING_VALUES, completed_sections=[2, 3])
        await ok("step.add_next_action", p.hub, step_id=screening, action=TRIAGE)
        triage = (await ok("step.finish", p.hub, step_id=screening)).of("step.created")["step_id"]

        # WB Initial Risk Assessment and Triage: case monitoring opened at once, TA to the North team
        await ok("step.start", p.hub, step_id=triage)
        await ok("step.save", p.hub, step_id=triage, values=TRIAGE_VALUES)
        monitoring = (await ok("step.add_next_action", p.hub, step_id=triage, action=MONITORING,
                               send_immediately=True)).of("step.created")["step_id"]
        await ok("step.add_next_action", p.hub, step_id=triage, action=TA,
                 assignee={"kind": "team", "id": "wellbeing-service-north"})
        ta = (await ok("step.finish", p.hub, step_id=triage)).of("step.created")["step_id"]

        # WB Trusted Assessment and Support Planning, with the domains of the support plan
        await ok("step.start", p.ta, step_id=ta)
        await ok("step.save", p.ta, step_id=ta, values=TA_VALUES)
        await ok("step.add_next_action", p.ta, step_id=ta, action=SAP)
        created = (await ok("step.finish", p.ta, step_id=ta)).of("step.created")
        sap = created["step_id"]
        assert created["assignee"] == {"kind": "team", "id": "wellbeing-service-management"}

        # the SO assigns SAP Delivery (and case monitoring) to the GSO
        gso = {"kind": "worker", "id": p.gso["worker_id"]}
        await ok("step.assign", p.so, step_id=sap, to=gso)
        await ok("step.assign", p.so, step_id=monitoring, to=gso)
        work = (await http.get(f"/workers/{p.gso['worker_id']}/work")).json()
        assert {s["step_id"] for s in work["incoming"]} == {sap}
        # "you will also have the WB Case Monitoring step in your Incomplete work" (R-W13)
        assert monitoring in {s["step_id"] for s in work["incomplete"]}
        await ok("step.start", p.gso, step_id=sap)
        await ok("step.save", p.gso, step_id=monitoring, values={"activity_log": [
            {"activity_datetime": "2024-06-04T10:00:00", "activity": "Introductory call"}]})

        # support recorded per domain; the TA sections are there, read-only (R-W7, R-W8)
        delivery = await step(sap)
        assert delivery["values"]["what_matters_to_me"] == TA_VALUES["what_matters_to_me"]
        carried = [s for s in delivery["form"]["sections"] if 2 <= s["number"] <= 11]
        assert all(s["read_only"] for s in carried)
        # each carried section names its source: "from <step> finished <date>" (issue #22 §7, R-W7)
        ta_read = await step(ta)
        finished = next(h["time"] for h in ta_read["history"] if h["what"] == "step.finished")
        assert {(s["carried_from"]["step_id"], s["carried_from"]["step_type"], s["carried_from"]["finished_at"])
                for s in carried} == {(ta, TA, finished)}
        london = datetime.fromisoformat(finished).astimezone(ZoneInfo("Europe/London")).date().isoformat()
        assert carried[0]["carried_from"]["finished_on"] == london
        rows = delivery["values"]["support_delivery"]
        assert [r["domain"] for r in rows] == [d["domain"] for d in TA_VALUES["support_plan_domains"]]
        await ok("step.save", p.gso, step_id=sap, values={
            "support_start_date": "2024-06-03", "support_end_date": "2024-06-28",
            "support_delivery": sap_delivery(rows)})

        # the GSO cannot finish: the REQUIRED SO request is missing and the SO signs off (R-RQ3, R-RQ7)
        codes = {r["code"] for r in await refused("step.finish", p.gso, step_id=sap)}
        assert {"required_request", "role", "no_next_action"} <= codes
        raised = (await ok("step.send_request", p.gso, step_id=sap, name=SO_TRANSFER)).of("request.raised")
        assert raised["to"] == {"kind": "team", "id": "wellbeing-service-management"}
        assert (await step(sap))["state"] == "awaiting_authorisation"
        # the Senior Officer is told: the request is in the management team's inbox, as the SO reads it (R-RQ2)
        [told] = await poll_until(lambda: requests_of(notifications, p.so, person_id), 30, "the SO's request")
        assert (told["request_id"], told["name"], told["step_id"]) == (raised["request_id"], SO_TRANSFER, sap)

        # the SO completes the request, adds the next action and finishes
        blocked = await refused("step.finish", p.so, step_id=sap)
        assert {(r["code"], r.get("request_id")) for r in blocked} >= {("open_request", raised["request_id"])}
        await ok("request.complete", p.so, request_id=raised["request_id"], note="Signed off")
        assert await poll_until(lambda: _none_open(notifications, p.so, person_id), 30, "the request done")
        await ok("step.add_next_action", p.so, step_id=sap, action=PROPOSED_CLOSURE)
        finished = await ok("step.finish", p.so, step_id=sap)
        proposed = finished.of("step.created")
        assert (proposed["step_type"], proposed["assignee"]) == (
            PROPOSED_CLOSURE, {"kind": "worker", "id": p.so["worker_id"]})

        # Adult Proposed Case Closure refused while case monitoring is open, naming it (R-K1)
        await ok("step.start", p.so, step_id=proposed["step_id"])
        await ok("step.save", p.so, step_id=proposed["step_id"], values=PROPOSED_CLOSURE_VALUES)
        await ok("step.add_next_action", p.so, step_id=proposed["step_id"], action=CLOSURE_IN_PROGRESS)
        blocked = await refused("step.finish", p.so, step_id=proposed["step_id"])
        assert [(r["code"], r["step_id"]) for r in blocked] == [("open_step", monitoring)]
        blockers = (await http.get(f"/steps/{proposed['step_id']}/blockers")).json()
        assert blockers == {"can_finish": False, "blockers": [
            {k: v for k, v in blocked[0].items() if v is not None}], "warnings": []}

        # case monitoring finishes with its mandatory reason, then the closure goes ahead
        missing = await refused("step.finish", p.gso, step_id=monitoring)
        assert {r["field"] for r in missing if r["code"] == "missing_field"} == {"reason_involvement_ending"}
        await ok("step.save", p.gso, step_id=monitoring, values=MONITORING_VALUES)
        await ok("step.add_next_action", p.gso, step_id=monitoring, action="WB Case Monitoring Complete (NFA)")
        await ok("step.finish", p.gso, step_id=monitoring)
        closing = (await ok("step.finish", p.so, step_id=proposed["step_id"])).of("step.created")
        assert closing["step_type"] == CLOSURE_IN_PROGRESS
        # R-C5: to the Adult Admin Team for where the person lives (an LE1 postcode: the City locality)
        assert closing["assignee"] == {"kind": "team", "id": "adult-admin-city"}
        admin = actor(f"admin{p.suffix}", "business_support", teams=("adult-admin-city",))
        admin_work = (await http.get("/teams/adult-admin-city/work", params=NEWEST_WORK)).json()
        assert closing["step_id"] in [s["step_id"] for s in admin_work["incoming"]]  # the admin team's inbox

        # the Adult Admin Team closes the case
        await ok("step.start", admin, step_id=closing["step_id"])
        await ok("step.save", admin, step_id=closing["step_id"], values=CLOSURE_VALUES)
        await ok("step.add_next_action", admin, step_id=closing["step_id"], action="Adult Case Closed (NFA)")
        done = await ok("step.finish", admin, step_id=closing["step_id"])
        assert done.types == ["step.finished", "case.closed"]
        assert done.of("case.closed")["person_id"] == person_id

        steps = (await http.get(f"/people/{person_id}/steps")).json()
        assert {s["step_type"]: s["state"] for s in steps} == {
            "WB Wellbeing Screening": "finished", TRIAGE: "finished", MONITORING: "finished", TA: "finished",
            SAP: "finished", PROPOSED_CLOSURE: "finished", CLOSURE_IN_PROGRESS: "finished"}
        history = (await step(sap))["history"]
        assert {"step.assigned", "request.sent", "request.completed", "step.finished"} <= {h["what"] for h in history}
        assert (await step(closing["step_id"]))["provenance"]["from_step_id"] == proposed["step_id"]
    finally:
        await http.aclose()


async def requests_of(notifications, who: dict, person_id: str) -> list[dict]:
    """The open requests about the person in the worker's teams' inboxes, read with the worker's own token."""
    auth = worker_auth(who["worker_id"], who["roles"], who["team_ids"])
    async with httpx.AsyncClient(auth=auth, base_url=notifications.url) as http:
        items = []
        for team in who["team_ids"]:
            response = await http.get(f"/teams/{team}/inbox", params={"kind": "request", "state": "open"})
            assert response.status_code == 200, response.text
            items += [i for i in response.json() if i["person_id"] == person_id]
    return items


async def _none_open(notifications, who: dict, person_id: str) -> bool:
    return not await requests_of(notifications, who, person_id)
