"""Adult review and Child in Need journeys through the real broker, database and services (issue 7).

(a) Review Planning → green tick (R-RQ6) → Planned Short Review → sent for authorisation →
    returned with a note (R-RQ4) → re-sent → authorised by a TM (R-RQ5) → Future Work on the
    original annual date (R-K4), the budget costed by the system (R-K10);
(b) a third Telephone Wellbeing Review in a row refused (R-K5);
(c) a death notification (R-K8);
(d) Child in Need: the Multi Agency Meeting routed by the 45-day rule on both sides of the
    boundary (R-K7), and a field write refused for the wrong role (R-W6).
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.workflow import domain
from shared import topics
from shared.commands.base import RuleBroken
from shared.envelope import new_message
from shared.testing import publish, service_auth
from tests.workflow_harness import Commands, actor, new_case

pytestmark = pytest.mark.e2e

PSR = "Planned Short Review"
TWR = "Telephone Wellbeing Review"
FW = "Future Work"
CFA = "Child and Family Assessment and Plan"
MAM = "Child in Need Multi Agency Meeting"
REVIEW_REQUEST = "REQUIRED Please review Assessment/Statement of Need/Review and confirm Outcomes"
CFA_REQUESTS = ("REQUIRED: Please review information and confirm next action",
                "REQUIRED: Request for team manager to review")  # seed 003: both REQUIRED
CLOSE = "Close Case to Children's Services"
OTHER_WORKFLOW = "No further action – other workflow continues (NFA)"
NO_CARERS = {"has_informal_carers": False, "carers": []}


def london_today() -> date:
    return domain.london_date(datetime.now(UTC))


class People:
    """Workers of one test, unique so that work lists of other tests never mix in."""

    def __init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.team = f"adult-review-{run}"
        self.sw = actor(f"sw-{run}", "social_worker", teams=(self.team,))
        self.tm = actor(f"tm-{run}", "team_manager", teams=(self.team,))
        self.hos = actor(f"hos-{run}", "head_of_service")
        self.rsw = actor(f"rsw-{run}", "response_social_worker", teams=("children-response",))
        self.rm = actor(f"rm-{run}", "response_manager", teams=("children-response",))


class Journey:
    """Commands keyed by the person, and the workflow service's read endpoints."""

    def __init__(self, commands: Commands, http: httpx.AsyncClient, person_id: str) -> None:
        self.commands, self.http, self.person_id = commands, http, person_id

    async def ok(self, type_: str, who: dict[str, Any], **data: Any):
        return (await self.commands.send(type_, who, key=self.person_id, **data)).ok()

    async def refused(self, type_: str, who: dict[str, Any], **data: Any) -> list[dict[str, Any]]:
        return (await self.commands.send(type_, who, key=self.person_id, **data)).reasons

    async def new(self, step_type: str, who: dict[str, Any], **data: Any) -> str:
        """A new workflow's first step, as earlier steps would have left it (set up on the service's database)."""
        return await self.commands.given_step(who, self.person_id, step_type, data.get("assignee"))

    async def step(self, step_id: str) -> dict[str, Any]:
        return (await self.http.get(f"/steps/{step_id}")).json()

    async def work(self, worker: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return (await self.http.get(f"/workers/{worker['worker_id']}/work")).json()

    async def send_for_authorisation(self, step_id: str, request: str, worker: dict[str, Any],
                                     manager: dict[str, Any]) -> str:
        raised = await self.ok("step.send_request", worker, step_id=step_id, name=request,
                               to={"kind": "worker", "id": manager["worker_id"]})
        return raised.of("request.raised")["request_id"]


@pytest.fixture
async def http(workflow):
    async with httpx.AsyncClient(auth=service_auth(), base_url=workflow.url) as client:
        yield client


async def test_a_adult_review_green_tick_returned_resent_authorised_future_work_on_the_annual_date(
        infra, workflow, events, commands, http):
    p = People()
    person_id, _ = await new_case(infra, events)
    j = Journey(commands, http, person_id)

    # Review Planning: the worker's own green tick (R-RQ6); the review comes back to them
    planning = await j.new("Review Planning", p.sw)
    await j.ok("step.save", p.sw, step_id=planning, values={
        "review_type_needed": PSR, "review_planning_evidence": "Stable, no change of accommodation"})
    await j.ok("step.add_next_action", p.sw, step_id=planning, action=PSR)
    ticked = await j.ok("step.authorise", p.sw, step_id=planning)
    assert ticked.of("step.finished")["authorised"] is True
    created = ticked.of("step.created")
    assert (created["step_type"], created["assignee"]) == (PSR, {"kind": "worker", "id": p.sw["worker_id"]})
    review = created["step_id"]

    # the Planned Short Review, its budget costed by the system (R-K10)
    annual = london_today() + timedelta(days=100)  # the original annual review date
    await j.ok("step.start", p.sw, step_id=review)
    await j.ok("step.save", p.sw, step_id=review, values={
        "holistic_summary": "Managing well with the current package", **NO_CARERS,
        "planned_services": [{"service": "Domiciliary care", "hourly_rate": "16.05", "hours_per_week": 10,
                              "respite_weeks": 6}],
        "annual_review_date": annual.isoformat(), "review_date": london_today().isoformat()})
    values = (await j.step(review))["values"]
    assert [(r["weeks_per_year"], r["weekly_cost"], r["annual_cost"]) for r in values["planned_services"]] == [
        ("46", "160.50", "7383.00")]
    assert values["total_annual_cost"] == "7383.00"
    added = await j.ok("step.add_next_action", p.sw, step_id=review, action=FW,
                       assignee={"kind": "team", "id": p.team})
    assert added.of("next_action.added")["scheduled_date"] == annual.isoformat()  # R-K4, not today + 365

    # sent for authorisation; the worker cannot sign it (R-RQ4)
    await j.send_for_authorisation(review, REVIEW_REQUEST, p.sw, p.tm)
    assert (await j.step(review))["state"] == "awaiting_authorisation"
    assert "role" in {r["code"] for r in await j.refused("step.authorise", p.sw, step_id=review)}

    # returned with a note: returned in the worker's incomplete work until re-sent
    note = "Please say how the carer was asked"
    await j.ok("step.return", p.tm, step_id=review, note=note)
    [listed] = [s for s in (await j.work(p.sw))["incomplete"] if s["step_id"] == review]
    assert (listed["state"], listed["return_note"]) == ("returned", note)
    assert {r["code"] for r in await j.refused("step.authorise", p.tm, step_id=review)} >= {"required_request"}
    await j.ok("step.save", p.sw, step_id=review, values={"holistic_summary": "Carer asked by phone; managing"})
    request_id = await j.send_for_authorisation(review, REVIEW_REQUEST, p.sw, p.tm)
    [listed] = [s for s in (await j.work(p.sw))["incomplete"] if s["step_id"] == review]
    assert listed["state"] == "awaiting_authorisation"

    # a Head of Service is not an authoriser of this step type; a TM is (R-RQ5)
    await j.ok("request.complete", p.tm, request_id=request_id, note="Agreed")
    assert {r["code"] for r in await j.refused("step.authorise", p.hos, step_id=review)} == {"role"}
    authorised = await j.ok("step.authorise", p.tm, step_id=review)
    assert authorised.of("step.finished")["authorised"] is True
    future = authorised.of("step.created")
    assert (future["step_type"], future["state"], future["due_date"], future["assignee"]) == (
        FW, "future", annual.isoformat(), {"kind": "team", "id": p.team})
    team_work = (await http.get(f"/teams/{p.team}/work")).json()
    assert [(s["step_id"], s["due_date"]) for s in team_work["future"]] == [(future["step_id"], annual.isoformat())]
    history = [h["what"] for h in (await j.step(review))["history"]]
    assert history.count("request.sent") == 2 and "step.returned" in history
    assert history[-1] == "step.authorised_and_finished"


async def twr_finished(j: Journey, p: People) -> str:
    sid = await j.new(TWR, p.sw)
    await j.ok("step.save", p.sw, step_id=sid, values={
        **NO_CARERS, "review_date": london_today().isoformat(), "review_summary": "Reviewed by telephone",
        "annual_review_date": (london_today() + timedelta(days=300)).isoformat()})
    await j.ok("step.add_next_action", p.sw, step_id=sid, action=OTHER_WORKFLOW)
    request_id = await j.send_for_authorisation(sid, REVIEW_REQUEST, p.sw, p.tm)
    await j.ok("request.complete", p.tm, request_id=request_id)
    await j.ok("step.authorise", p.tm, step_id=sid)
    return sid


async def test_b_a_third_telephone_wellbeing_review_in_a_row_is_refused(infra, workflow, events, commands, http):
    p = People()
    person_id, _ = await new_case(infra, events)
    j = Journey(commands, http, person_id)
    await twr_finished(j, p)
    await twr_finished(j, p)

    [reason] = await j.refused("step.start_new", p.sw, person_id=person_id, step_type=TWR)
    assert (reason["code"], reason["field"]) == ("not_startable", "step_type")  # R-W12: a review is allocated

    # nor from Future Work; Review Planning is the way forward
    fw = await j.new(FW, p.tm)
    [reason] = await j.refused("step.add_next_action", p.tm, step_id=fw, action=TWR,
                               assignee={"kind": "worker", "id": p.sw["worker_id"]})
    assert reason["code"] == "two_twr_limit"
    await j.ok("step.add_next_action", p.tm, step_id=fw, action="Review Planning",
               assignee={"kind": "worker", "id": p.sw["worker_id"]})
    planning = (await j.ok("step.finish", p.tm, step_id=fw)).of("step.created")
    assert (planning["step_type"], planning["assignee"]) == (
        "Review Planning", {"kind": "worker", "id": p.sw["worker_id"]})
    steps = (await http.get(f"/people/{person_id}/steps")).json()
    assert [s["state"] for s in steps if s["step_type"] == TWR] == ["finished", "finished"]


async def test_c_a_death_closes_future_work_with_an_nfa_and_lists_open_steps(infra, workflow, events, commands, http):
    p = People()
    person_id, screening = await new_case(infra, events)
    j = Journey(commands, http, person_id)
    fw = await j.new(FW, p.tm)
    twr = await j.new(TWR, p.sw)

    died = london_today() - timedelta(days=1)
    outcome = await j.ok("person.record_death", p.tm, person_id=person_id, date_of_death=died.isoformat())
    recorded = outcome.of("person.death_recorded")
    assert recorded["closed_future_step_ids"] == [fw]
    assert {(s["step_id"], s["step_type"]) for s in recorded["open_steps"]} == {
        (screening, "WB Wellbeing Screening"), (twr, TWR)}

    closed = await j.step(fw)
    [nfa] = closed["added_next_actions"]
    assert (closed["state"], nfa["nfa"], nfa["reason"]) == ("finished", True, f"Person died on {died.isoformat()}")
    assert (await j.step(twr))["state"] == "incomplete"  # listed for the manager, left open
    # the Future Work is done: the manager has no work with the person now, its worker still has (issue #21 §6)
    future = await j.refused("person.record_death", p.sw, person_id=person_id,
                             date_of_death=(london_today() + timedelta(days=2)).isoformat())
    assert future[0]["field"] == "date_of_death"


async def test_c_a_date_of_death_written_on_the_person_record_closes_future_work_as_the_command_does(
        infra, workflow, events, commands, http):
    """R-K8, R-P1: recording the date of death on the person record is recording the death."""
    p = People()
    person_id, screening = await new_case(infra, events)
    j = Journey(commands, http, person_id)
    fw = await j.new(FW, p.tm)
    died = london_today() - timedelta(days=2)
    update = new_message("person.update", "tessera/web", {
        "actor": p.tm, "person_id": person_id, "changes": {"date_of_death": died.isoformat()},
        "access_reason": "Death notified by the GP"}, subject=person_id)
    await publish(infra.bootstrap, topics.REFERRALS_COMMANDS, [(person_id, update.to_bytes())])
    [updated] = await events.wait_for(lambda s: s.caused_by(update.id) and s.type == "person.updated", 30)
    [recorded] = await events.wait_for(
        lambda s: s.caused_by(updated.envelope.id) and s.type == "person.death_recorded", 30)
    assert recorded.data["closed_future_step_ids"] == [fw]
    assert [s["step_id"] for s in recorded.data["open_steps"]] == [screening]  # listed for the manager
    closed = await j.step(fw)
    assert (closed["state"], closed["added_next_actions"][0]["reason"]) == ("finished", f"Person died on {died}")


async def meeting_after_assessment(j: Journey, p: People, started_on: date) -> dict[str, Any]:
    """A CFA whose assessment started on `started_on`, authorised today with the meeting as next action."""
    cfa = await j.new(CFA, p.rsw)
    await j.ok("step.save", p.rsw, step_id=cfa, values={
        "assessment_type": "Signs of Wellbeing", "review_completed": True,
        "date_assessment_started": started_on.isoformat()})
    await j.ok("step.add_next_action", p.rsw, step_id=cfa, action=MAM)
    for name in CFA_REQUESTS:
        await j.send_for_authorisation(cfa, name, p.rsw, p.rm)
    await j.ok("step.save", p.rm, step_id=cfa, values={"assessment_timescale": "45 working days"})
    # R-RQ4: one command completes the manager's requests and authorises
    authorised = await j.ok("step.authorise", p.rm, step_id=cfa)
    assert len(authorised.all("request.completed")) == 2
    return authorised.of("step.created")


async def test_d_child_in_need_meeting_routed_by_the_45_day_rule_and_field_owners_enforced(
        infra, workflow, events, commands, http):
    p = People()
    within_id, _ = await new_case(infra, events)
    after_id, _ = await new_case(infra, events)
    within, after = Journey(commands, http, within_id), Journey(commands, http, after_id)

    # R-W6: the Response Social Worker cannot write the manager's field; the system fills its own
    cfa = await within.new(CFA, p.rsw)
    [reason] = await within.refused("step.save", p.rsw, step_id=cfa, values={"assessment_timescale": "20 working days"})
    assert (reason["code"], reason["field"]) == ("role", "assessment_timescale")
    [reason] = await within.refused("step.save", p.rm, step_id=cfa, values={"social_workers_details": "me"})
    assert reason["code"] == "read_only"
    assert (await within.step(cfa))["values"]["social_workers_details"] == p.rsw["worker_id"]
    await within.ok("step.cancel", p.rsw, step_id=cfa, reason="Opened in error")

    # R-K7: day 45 → Response; day 46 → Locality
    today = london_today()
    early = await meeting_after_assessment(within, p, today - timedelta(days=45))
    late = await meeting_after_assessment(after, p, today - timedelta(days=46))
    assert (early["step_type"], early["assignee"]) == (MAM, {"kind": "team", "id": "children-response"})
    assert (late["step_type"], late["assignee"]) == (MAM, {"kind": "team", "id": "children-locality"})
    assert (early["provenance"]["routing"]["days"], late["provenance"]["routing"]["days"]) == (45, 46)
    response = (await http.get("/teams/children-response/work")).json()
    locality = (await http.get("/teams/children-locality/work")).json()
    assert early["step_id"] in {s["step_id"] for s in response["incoming"]}
    assert late["step_id"] in {s["step_id"] for s in locality["incoming"]}
    assert late["step_id"] not in {s["step_id"] for s in response["incoming"]}


async def test_e_a_childs_case_is_closed_by_the_response_manager_not_the_social_worker_alone(
        infra, workflow, events, commands, http):
    """R-W11, R-K1: seed 003 "Close Case to Children's Services … Sent to: Response Manager"."""
    p = People()
    person_id, assessment = await new_case(infra, events, service="children", category="child_in_need")
    j = Journey(commands, http, person_id)
    [reason] = await j.refused("step.start_new", p.rsw, person_id=person_id, step_type=CLOSE)
    assert reason["code"] == "not_startable"  # R-W12: it follows from the assessment's next action
    with pytest.raises(RuleBroken) as caught:  # R-W11: nor opened by the social worker for themselves
        await j.new(CLOSE, p.rsw)
    assert [r.code for r in caught.value.reasons] == ["role"]
    close = await j.new(CLOSE, p.rsw, assignee={"kind": "worker", "id": p.rm["worker_id"]})
    assert close in {s["step_id"] for s in (await j.work(p.rm))["incoming"]}
    await j.ok("step.start", p.rm, step_id=close)
    await j.ok("step.save", p.rm, step_id=close, values={"outcome_summary": "Needs met", "outcome_date": "2024-06-01"})
    await j.ok("step.add_next_action", p.rm, step_id=close, action="Case closed to Children's Services (NFA)")
    reasons = await j.refused("step.finish", p.rm, step_id=close)
    assert [r["code"] for r in reasons] == ["open_step"]  # R-K1: the assessment is still open
    await j.ok("step.cancel", p.rsw, step_id=assessment, reason="Referral recorded twice")
    finished = await j.ok("step.finish", p.rm, step_id=close)
    assert finished.of("case.closed")["person_id"] == person_id
