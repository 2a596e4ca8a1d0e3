"""R-C5 (seed 000 "Full Case Closures"): when the person has died or left the area and had a direct payment, the
"Adult Please review information and authorise" request to the Adult Care (Area) team is REQUIRED, and that team
completes the Direct Payments Suspension and Termination checklist (each check Yes), reviews the case and finishes
the Adult Proposed Case Closure; otherwise the closer finishes it without either. On the pure engine, with
single-role workers."""

from typing import Any

from services.workflow import domain
from shared.commands.base import Actor
from tests.workflow_harness import Engine, actor, codes

PROPOSED = "Adult Proposed Case Closure"
IN_PROGRESS = "Adult Case Closure in Progress"
DP_REQUEST = "Adult Please review information and authorise"
GSO = actor("gso-1", "gso", teams=("wellbeing-service-hub",))
AREA = actor("area-sw-1", "social_worker", teams=("adult-care-area",))
DIED_WITH_DP = {"closure_reason": "Person has died", "proposed_closure_date": "2024-07-02",
                "had_direct_payment": True}
CHECKLIST = {"dp_suspended": True, "dp_termination_date": "2024-07-02", "dp_final_reconciliation_requested": True}


def proposed(e: Engine, values: dict[str, Any]) -> str:
    """The GSO's proposed closure, saved with `values` and its next action added."""
    [step] = e.given_step(PROPOSED, GSO).created
    e.send("step.save", GSO, step_id=step.step_id, values=values)
    e.send("step.add_next_action", GSO, step_id=step.step_id, action=IN_PROGRESS)
    return step.step_id


def test_R_C5_a_death_with_a_direct_payment_cannot_close_without_the_area_teams_request_and_checklist() -> None:
    e = Engine()
    sid = proposed(e, DIED_WITH_DP)
    reasons = e.refused("step.finish", GSO, step_id=sid)
    assert "required_request" in codes(reasons)
    assert {r.field for r in reasons if r.code in ("check_not_done", "missing_field")} == set(CHECKLIST)
    left = {**DIED_WITH_DP, "closure_reason": "Person has left the area"}
    assert "required_request" in codes(e.refused("step.finish", GSO, step_id=proposed(Engine(), left)))


def test_R_C5_the_adult_care_area_team_completes_the_checklist_with_yes_and_finishes_the_closure() -> None:
    e = Engine()
    sid = proposed(e, DIED_WITH_DP)
    e.send("step.send_request", GSO, step_id=sid, name=DP_REQUEST)
    request = e.open_request(sid)
    assert (request.to_kind, request.to_id) == ("team", "adult-care-area")
    assert "open_request" in codes(e.refused("step.finish", GSO, step_id=sid))  # the closer waits for the team
    [other] = e.refused("step.save", AREA, step_id=sid, values={**CHECKLIST, "closure_notes": "Not mine to write"})
    assert (other.code, other.field) == ("not_answered_here", "closure_notes")  # the closer's sections stay theirs
    e.send("step.save", AREA, step_id=sid, values={**CHECKLIST, "dp_suspended": False})
    [no] = e.refused("step.finish", AREA, step_id=sid)
    assert (no.code, no.field) == ("check_not_done", "dp_suspended") and "must be Yes" in no.message
    e.send("step.save", AREA, step_id=sid, values={"dp_suspended": True})
    done = e.send("step.finish", AREA, step_id=sid)
    assert e.steps[sid].state == "finished" and e.requests[request.request_id].state == "completed"
    assert "request.completed" in e.event_types(done)
    [closing] = done.created
    assert (closing.step_type, closing.assignee_id) == (IN_PROGRESS, "adult-admin")


def test_R_C5_no_direct_payment_needs_neither_the_request_nor_the_checklist() -> None:
    e = Engine()
    sid = proposed(e, {**DIED_WITH_DP, "had_direct_payment": False})
    e.send("step.finish", GSO, step_id=sid)
    assert e.steps[sid].state == "finished"
    no_needs = proposed(e := Engine(), {**DIED_WITH_DP, "closure_reason": "No social care needs"})
    e.send("step.finish", GSO, step_id=no_needs)
    assert e.steps[no_needs].state == "finished"


def test_R_C5_a_worker_of_another_team_cannot_answer_the_checklist() -> None:
    e = Engine()
    sid = proposed(e, DIED_WITH_DP)
    e.send("step.send_request", GSO, step_id=sid, name=DP_REQUEST)
    elsewhere = actor("sw-north", "social_worker", teams=("adult-front-door",))
    assert codes(e.refused("step.save", elsewhere, step_id=sid, values=CHECKLIST)) == ["not_assignee"]
    assert "not_assignee" in codes(e.refused("step.finish", elsewhere, step_id=sid))


def test_R_K1_the_admin_teams_closure_does_not_tell_the_proposers_team_but_tells_another() -> None:
    """The teams that proposed the closure go on with it: at the Adult Case Closure in Progress, finished by the
    Adult Admin Team, the proposing GSO's team is not told its involvement will end; another team still is."""
    e = Engine()
    sid = proposed(e, {**DIED_WITH_DP, "had_direct_payment": False})
    [in_progress] = e.send("step.finish", GSO, step_id=sid).created
    assert in_progress.provenance["closing_teams"] == ["wellbeing-service-hub"]
    admin = actor("admin-1", "business_support", teams=("adult-admin",))
    ctx = domain.Context(now=e.now, actor=domain.Actor.of(Actor.model_validate(admin)), ids=iter(()),
                         packs=e.packs, relationships=(domain.Involvement("team", "wellbeing-service-hub"),
                                                       domain.Involvement("team", "adult-carers")))
    told = domain.told_of_closure(ctx, in_progress, e.packs.step(IN_PROGRESS))
    assert told == [("team", "adult-carers")]


def test_R_C5_a_live_direct_payment_order_answers_the_direct_payment_question_yes_and_is_named() -> None:
    """Seed 000 sends the closer to the person's care packages: what workflow's purchasing already holds prefills
    "in receipt of a direct payment service", and the step names the orders it was read from."""
    e = Engine(live_orders={"direct_payment": ("po-dp-1",), "brokerage": ("po-br-1",)})
    [step] = e.given_step(PROPOSED, GSO).created
    assert step.values["had_direct_payment"] is True
    assert step.provenance["prefilled"] == {"had_direct_payment": {
        "source": "purchase_orders", "kinds": ["direct_payment"], "po_request_ids": ["po-dp-1"]}}
    e.send("step.save", GSO, step_id=step.step_id, values={"closure_reason": "Person has died"})
    assert "required_request" in codes(e.refused("step.finish", GSO, step_id=step.step_id))


def test_R_C5_without_a_live_direct_payment_order_the_question_is_left_to_the_closer() -> None:
    """Workflow knows only the orders Tessera raised: another kind of order, or none, answers nothing."""
    e = Engine(live_orders={"brokerage": ("po-br-1",)})
    [step] = e.given_step(PROPOSED, GSO).created
    assert "had_direct_payment" not in step.values and "prefilled" not in step.provenance
    e.send("step.save", GSO, step_id=step.step_id, values={"closure_reason": "Person has died"})
    [missing] = [r for r in e.refused("step.finish", GSO, step_id=step.step_id) if r.field == "had_direct_payment"]
    assert missing.code == "missing_field"
