"""Seed 002: "The STS MDT will discuss and agree if the person will be referred to the existing interim teams" —
the STS DSO passes the Personal Service Plan Homecare to the interim DSO only once that decision is recorded on
it, and only a decision to refer counts (R-W9 a next action needing its form, R-K1 a check that must be Yes)."""

from __future__ import annotations

from tests.workflow_harness import Engine, actor, codes

PSP = "Personal Service Plan Homecare"
MDT = "STS MDT decision – referral to the interim team"
LACK = "No PVI offer after 48 hours with brokerage (lack of provision)"
STS = actor("sts", "domiciliary_service_officer", teams=("short-term-service",))
PASS_ON = {"action": PSP, "assignee": {"kind": "worker", "id": "interim"}, "send_immediately": True,
           "reason": LACK}


def test_R_W9_the_psp_goes_to_the_interim_dso_only_after_the_sts_mdt_agreed_it() -> None:
    e = Engine()
    sid = e.given_step(PSP, STS).created[0].step_id
    assert codes(e.refused("step.add_next_action", STS, step_id=sid, **PASS_ON)) == ["form_required"]
    e.send("step.add_form", STS, step_id=sid, form=MDT)
    e.send("step.save", STS, step_id=sid, values={"mdt_decision_date": "2024-06-03", "mdt_reason": LACK,
                                                  "mdt_agreed_interim": False})
    assert codes(e.refused("step.add_next_action", STS, step_id=sid, **PASS_ON)) == ["form_required"]
    e.send("step.save", STS, step_id=sid, values={"mdt_agreed_interim": True})
    [interim] = e.send("step.add_next_action", STS, step_id=sid, **PASS_ON).created
    assert (interim.step_type, interim.assignee_id) == (PSP, "interim")
    assert e.steps[sid].values["mdt_decision_date"] == "2024-06-03"  # the decision stays on the STS PSP
