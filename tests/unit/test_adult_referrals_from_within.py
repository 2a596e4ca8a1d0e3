"""Issue #17 §5 (seed 001 §3.3, §4.3, §4.4): from within an assessment or review, a mental capacity assessment is
opened for the worker alongside it, an Occupational Therapy referral goes to LBS Adult Day Service, and the
Admiral Nurse referral form is recorded on the step."""

from __future__ import annotations

import pytest

from tests.workflow_harness import Engine, actor, codes

SW = actor("sw", "social_worker", teams=("adult-review",))
DAY = actor("day", "social_worker", teams=("adult-day-service",))
ASSESSMENTS_AND_REVIEWS = ("Supported Self Assessment", "Assessment Review", "Initial Review", "Planned Short Review",
                           "Telephone Wellbeing Review")


@pytest.mark.parametrize("step_type", ASSESSMENTS_AND_REVIEWS)
def test_R_NA3_a_mental_capacity_assessment_is_opened_from_within_for_the_worker_and_the_step_goes_on(
        step_type: str) -> None:
    e = Engine()
    sid = e.given_step(step_type, SW).created[0].step_id
    d = e.send("step.add_next_action", SW, step_id=sid, action="Mental Capacity Assessment", send_immediately=True)
    [mca] = d.created
    assert (mca.step_type, mca.assignee_kind, mca.assignee_id, mca.workflow_id) == (
        "Mental Capacity Assessment", "worker", "sw", e.steps[sid].workflow_id)
    assert e.steps[sid].state == "incomplete"  # the assessment or review carries on


def test_R_NA3_an_ot_referral_goes_to_lbs_adult_day_service_saying_what_support_is_needed() -> None:
    e = Engine()
    sid = e.given_step("Initial Review", SW).created[0].step_id
    [referral] = e.send("step.add_next_action", SW, step_id=sid, action="Referral to Occupational Therapy",
                        send_immediately=True).created
    assert (referral.step_type, referral.assignee_kind, referral.assignee_id) == (
        "Occupational Therapy Referral", "team", "adult-day-service")
    e.send("step.start", DAY, step_id=referral.step_id)
    e.send("step.save", DAY, step_id=referral.step_id, values={"ot_support_needed": "Bathing assessment"})
    e.send("step.add_next_action", DAY, step_id=referral.step_id, action="OT referral actioned (NFA)")
    e.send("step.finish", DAY, step_id=referral.step_id)
    assert e.steps[referral.step_id].state == "finished"


def test_R_W9_the_admiral_nurse_referral_form_is_recorded_on_an_assessment() -> None:
    e = Engine()
    sid = e.given_step("Supported Self Assessment", SW).created[0].step_id
    assert codes(e.refused("step.save", SW, step_id=sid, values={"an_reason": "Dementia support"})) == [
        "form_not_added"]
    e.send("step.add_form", SW, step_id=sid, form="Admiral Nurse Referral")
    e.send("step.save", SW, step_id=sid, values={"an_reason": "Dementia support", "an_consent": True,
                                                 "an_sent_date": "2024-06-03"})
    assert e.steps[sid].values["an_sent_date"] == "2024-06-03"


@pytest.mark.parametrize("step_type", ("Supported Self Assessment", "Initial Review", "Planned Short Review",
                                       "Telephone Wellbeing Review"))
def test_R_W9_every_assessment_and_review_offers_the_admiral_nurse_referral_form(step_type: str) -> None:
    """Seed 001 §4.4 ties the form to no one review: the Telephone Wellbeing Review offers it like the others."""
    e = Engine()
    sid = e.given_step(step_type, SW).created[0].step_id
    e.send("step.add_form", SW, step_id=sid, form="Admiral Nurse Referral")
    assert "Admiral Nurse Referral" in e.steps[sid].forms
