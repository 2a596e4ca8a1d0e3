"""R-W12 Start > New: each pack says which step types may be started directly and by whom; the domain
refuses the rest naming the step type, and the desk's menu lists exactly the worker's (seeds 000, 001, 003)."""

from __future__ import annotations

from typing import Any

import pytest

from services.web.packs import startable
from services.workflow import domain
from services.workflow.pack import PackRegistry
from shared.actor import Actor
from tests.workflow_harness import PERSON, Engine, actor

PID = PERSON["person_id"]
SCREENING, COVID, PROPOSED = "WB Wellbeing Screening", "WB Covid 19 Response", "Adult Proposed Case Closure"
WELLBEING_MENU = {PROPOSED, COVID, SCREENING}  # seed 000 "Start Sidebar Menu"

GSO = actor("gso", "gso", teams=("wellbeing-service-north",))
HUB = actor("hub", "gso", teams=("wellbeing-service-hub",))
SO = actor("so", "senior_officer", teams=("wellbeing-service-management",))
SW = actor("sw", "social_worker", teams=("adult-front-door",))
TM = actor("tm", "team_manager", teams=("adult-front-door",))
ATM = actor("atm", "assistant_team_manager", teams=("adult-front-door",))
RSW = actor("rsw", "response_social_worker", teams=("children-response",))
ADMIN = actor("admin", "business_support", teams=("adult-admin",))


def menu(packs: PackRegistry, who: dict[str, Any]) -> set[str]:
    """What the domain lets this worker start (R-W12)."""
    me = Actor(who["worker_id"], frozenset(who["roles"]), frozenset(who["team_ids"]))
    return {t for t in packs.step_types() if domain.may_start(packs.step(t), me)}


@pytest.mark.parametrize("worker", [GSO, HUB, SO], ids=["gso", "hub", "senior_officer"])
def test_R_W12_a_wellbeing_worker_starts_exactly_the_three_steps_of_seed_000(
    shipped: PackRegistry, worker: dict[str, Any],
) -> None:
    """Seed 000 "Start Sidebar Menu": Adult Proposed Case Closure, WB Covid 19 Response, WB Wellbeing Screening."""
    assert menu(shipped, worker) == WELLBEING_MENU


def test_R_W12_each_guides_workers_get_the_starts_their_guide_names(shipped: PackRegistry) -> None:
    """Seed 000: an Adult Care practitioner may screen for Wellbeing; seed 001 §3.3: the worker creates an
    Adult Contact, an appointeeship referral, a standalone MCA; only the ATM/TM opens Professional Support;
    seed 003: Significant Information from the Start menu. A children's social worker is no Adult Care
    practitioner (grants match the roles as given); Business Support starts nothing."""
    assert menu(shipped, SW) == {SCREENING, "Adult Contact", "Referral for Appointeeship or Deputyship",
                                 "Mental Capacity Assessment"}
    assert menu(shipped, TM) == menu(shipped, ATM) == {"Adult Contact", "Professional Support"}
    assert menu(shipped, RSW) == {"Significant Information on an Open Case"}
    assert menu(shipped, ADMIN) == set()


def test_R_W12_a_step_type_not_on_the_menu_is_refused_naming_it() -> None:
    """A step the guide reaches only by a next action (a Care and Support Plan) is refused with not_startable,
    naming the step type, and nothing is created."""
    e = Engine()
    [r] = e.refused("step.start_new", SW, person_id=PID, step_type="Care and Support Plan")
    assert (r.code, r.field) == ("not_startable", "step_type")
    assert "Care and Support Plan" in r.message and "R-W12" in r.message
    assert e.steps == {}


def test_R_W12_a_refusal_says_who_may_start_it() -> None:
    """Professional Support: "the manager must … open up a professional support" (seed 001): a social worker
    is refused with who may; the team manager opens it and assigns the episode to the worker."""
    e = Engine()
    [r] = e.refused("step.start_new", SW, person_id=PID, step_type="Professional Support")
    assert r.code == "not_startable" and "Team Manager or Assistant Team Manager" in r.message
    [covid] = e.refused("step.start_new", SW, person_id=PID, step_type=COVID)
    assert "Wellbeing Service North" in covid.message
    [step] = e.send("step.start_new", TM, person_id=PID, step_type="Professional Support",
                    assignee={"kind": "worker", "id": "sw"}).created
    assert (step.assignee_kind, step.assignee_id, step.state) == ("worker", "sw", "incoming")


def test_R_W12_an_adult_care_practitioner_starts_a_wellbeing_screening() -> None:
    """Seed 000: "It can also be completed by … LCC Adult Care practitioners": started and saved by them."""
    e = Engine()
    [step] = e.send("step.start_new", SW, person_id=PID, step_type=SCREENING).created
    assert e.steps[step.step_id].state == "incomplete"
    e.send("step.save", SW, step_id=step.step_id, values={"reason_for_referral": "Lonely after bereavement"})
    assert e.steps[step.step_id].values["reason_for_referral"] == "Lonely after bereavement"
    assert [r.code for r in e.refused("step.start_new", RSW, person_id=PID, step_type=SCREENING)] == [
        "not_startable"]


def test_R_W12_the_desks_menu_is_the_domains(shipped: PackRegistry) -> None:
    """The desk lists, from the grants GET /step-types carries, exactly what the domain lets each worker start."""
    types = [{"step_type": step.step_type, "start_new": [{"roles": list(g.roles), "teams": list(g.teams)}
                                                          for g in step.start_new]}
             for pack in shipped.packs for step in pack.steps]
    for who in (GSO, SO, SW, TM, RSW, ADMIN):
        assert set(startable(types, who["roles"], who["team_ids"])) == menu(shipped, who), who["worker_id"]
