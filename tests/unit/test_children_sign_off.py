"""Seed 003 as its single-role users meet it (R-W10, R-W11, R-RQ4, R-RQ5): a manager's decision is the
manager's, Business Support and Family Placement do their parts of a step held by the social worker,
and authorising completes the sign-off request in the same command."""

from __future__ import annotations

from typing import Any

from tests.workflow_harness import PERSON, Engine, actor, codes

PID = PERSON["person_id"]
RSW = actor("rsw", "response_social_worker", teams=("children-response",))
LSW = actor("lsw", "locality_social_worker", teams=("children-locality",))
RM = actor("rm", "response_manager", teams=("children-response",))
BS = actor("bs", "business_support", teams=("children-business-support",))
FPT_SW = actor("fsw", "fpt_social_worker", teams=("family-placement",))
FPT_M = actor("fm", "fpt_manager", teams=("family-placement",))
CLOSE = "Close Case to Children's Services"
CFA = "Child and Family Assessment and Plan"
MAM = "Child in Need Multi Agency Meeting"
OUTCOME = {"outcome_summary": "No further involvement", "outcome_date": "2024-06-01"}


def started(e: Engine, step_type: str, who: dict[str, Any]) -> str:
    [step] = e.given_step(step_type, who, person_id=PID).created
    return step.step_id


def assessment_sent_for_sign_off(e: Engine, worker: dict[str, Any], manager: dict[str, Any]) -> str:
    """A Child and Family Assessment filled by `worker`, both REQUIRED manager reviews sent to `manager`."""
    sid = started(e, CFA, worker)
    e.send("step.save", worker, step_id=sid, values={"assessment_type": "Signs of Wellbeing", "review_completed": True})
    e.send("step.add_next_action", worker, step_id=sid, action="Assessment Completed (NFA)")
    for name in ("REQUIRED: Please review information and confirm next action",
                 "REQUIRED: Request for team manager to review"):
        e.send("step.send_request", worker, step_id=sid, name=name, to={"kind": "worker", "id": manager["worker_id"]})
    return sid


def test_R_W11_a_social_worker_alone_cannot_close_a_childs_case_the_response_manager_does(e: Engine) -> None:
    """Seed 003 "Close Case to Children's Services … Sent to: Response Manager"."""
    [refusal] = e.given_step_refused(CLOSE, RSW, person_id=PID)
    assert refusal.code == "role" and "R-W11" in refusal.message
    [step] = e.given_step(CLOSE, RSW, person_id=PID, assignee={"kind": "worker", "id": "rm"}).created
    sid = step.step_id
    assert "role" in codes(e.refused("step.assign", RSW, step_id=sid, to={"kind": "worker", "id": "rsw"}))
    e.send("step.start", RM, step_id=sid)
    e.send("step.save", RM, step_id=sid, values=OUTCOME)
    e.send("step.add_next_action", RM, step_id=sid, action="Case closed to Children's Services (NFA)")
    decision = e.send("step.finish", RM, step_id=sid)
    assert e.steps[sid].state == "finished"
    assert decision.closed_workflow_ids  # R-K1: the child's workflows close


def test_R_W10_business_support_records_the_minutes_on_a_meeting_the_social_worker_holds(e: Engine) -> None:
    """Seed 003: "Minutes Completed — Added By: Business Support"; the social worker holds the meeting."""
    sid = started(e, MAM, RSW)
    assert e.steps[sid].assignee_id == "rsw"
    [refusal] = e.refused("step.save", BS, step_id=sid, values={"worries": "x"})
    assert refusal.code == "role" and refusal.field == "worries"  # not their section
    e.send("step.add_next_action", BS, step_id=sid, action="Minutes Completed (NFA)")
    assert [a.added_by for a in e.steps[sid].next_actions] == ["bs"]
    assert "role" in codes(e.refused("step.finish", BS, step_id=sid))  # the managers finish the meeting


def test_R_W10_family_placement_write_their_private_fostering_sections_without_taking_the_assessment(
    e: Engine,
) -> None:
    """Seed 003: Proposed Carers and Annex A are the FPT Social Worker's; "Senior Manager to confirm
    decision" is added by the FPT Manager, no one else."""
    sid = started(e, CFA, RSW)
    e.send("step.add_form", RSW, step_id=sid, form="Private Fostering Assessment")
    e.send("step.save", FPT_SW, step_id=sid, values={"pf_proposed_carers": "Aunt", "pf_annex_a": "Consent given"})
    assert e.steps[sid].values["pf_proposed_carers"] == "Aunt" and e.steps[sid].assignee_id == "rsw"
    [refusal] = e.refused("step.save", FPT_SW, step_id=sid, values={"pf_child_details": "x"})
    assert refusal.code == "role"  # the Response/Locality worker's section
    senior = {"name": "Senior Manager to confirm decision", "to": {"kind": "worker", "id": "service-manager"}}
    assert "role" in codes(e.refused("step.send_request", RSW, step_id=sid, **senior))
    e.send("step.send_request", FPT_M, step_id=sid, **senior)
    assert e.open_request(sid).sent_by == "fm"


def test_R_W10_the_locality_worker_updates_the_assessment_and_a_locality_manager_signs_it(e: Engine) -> None:
    """Seed 003 "Update Child and Family Assessment and Plan … Assigned to themselves" (Locality/LAC)."""
    lm = actor("lm", "locality_manager", teams=("children-locality",))
    sid = assessment_sent_for_sign_off(e, LSW, lm)
    e.send("step.save", lm, step_id=sid, values={"assessment_timescale": "45 working days"})
    e.send("step.authorise", lm, step_id=sid)
    assert e.steps[sid].state == "finished"


def test_R_RQ4_authorising_completes_the_sign_off_requests_in_the_same_decision(e: Engine) -> None:
    """R-RQ4: the desk's Authorise is one command: the requests to the manager complete with it, or
    nothing changes."""
    sid = assessment_sent_for_sign_off(e, RSW, RM)
    # the manager's own mandatory field is empty: refused, and both requests stay open with the manager
    assert "missing_field" in codes(e.refused("step.authorise", RM, step_id=sid))
    assert {r.state for r in e.requests.values() if r.step_id == sid} == {"open"}
    e.send("step.save", RM, step_id=sid, values={"assessment_timescale": "45 working days"})
    decision = e.send("step.authorise", RM, step_id=sid)
    assert {r.state for r in e.requests.values() if r.step_id == sid} == {"completed"}
    assert sorted(type(ev).TYPE for ev in decision.events).count("request.completed") == 2
