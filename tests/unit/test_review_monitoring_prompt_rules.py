"""R-K12 (seed 001 §3.3, §6.5): "There is also a review monitoring form … Please complete this if a service has
stopped or there is a reduction in care – this form monitors savings": finishing a plan or review that stops or
reduces a service prompts for it (a warning shown before finishing and recorded on step.finished)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from services.workflow import domain
from tests.workflow_harness import Engine, actor

SW = actor("sw", "social_worker", teams=("adult-review",))
PSR = "Planned Short Review"


def plan(services: dict[str, str]) -> dict[str, Any]:
    """A plan's services and weekly total as a finished plan holds them (costs pence exact, as strings)."""
    return {"planned_services": [{"service": s} for s in services],
            "total_weekly_cost": str(sum(float(v) for v in services.values()))}


def warnings_on_finishing(before: dict[str, str], after: dict[str, str], *, form: bool = False) -> list[str]:
    e = Engine()
    csp = e.given_step("Care and Support Plan", SW).created[0]
    e.steps[csp.step_id] = replace(e.steps[csp.step_id], state="finished", values=plan(before))  # signed off earlier
    review = e.given_step(PSR, SW).created[0]
    e.steps[review.step_id] = replace(e.steps[review.step_id], values=plan(after),
                                      forms=("Review Monitoring Form",) if form else ())
    step = e.steps[review.step_id]
    ctx = domain.Context(now=e.now, actor=domain.Actor("sw"), ids=iter(()), packs=e.packs,
                         case=e.case_view(step.person_id))
    warnings = domain.finish_warnings(ctx, step, e.packs.step(PSR))
    return [w.message for w in warnings if w.code == "review_monitoring_form"]


def test_R_K12_a_stopped_service_prompts_for_the_review_monitoring_form_even_if_the_budget_is_the_same() -> None:
    [message] = warnings_on_finishing({"Domiciliary care": "100.00", "Day centre": "50.00"},
                                      {"Domiciliary care": "150.00"})
    assert "stopped: Day centre" in message and "Review Monitoring Form" in message and "R-K12" in message


def test_R_K12_a_reduction_prompts_naming_the_weekly_costs() -> None:
    [message] = warnings_on_finishing({"Domiciliary care": "168.53"}, {"Domiciliary care": "112.35"})
    assert "from £168.53 to £112.35" in message


def test_R_K12_no_prompt_for_more_care_or_once_the_form_is_on_the_step() -> None:
    assert warnings_on_finishing({"Domiciliary care": "100.00"}, {"Domiciliary care": "120.00"}) == []
    assert warnings_on_finishing({"Domiciliary care": "100.00", "Day centre": "50.00"},
                                 {"Domiciliary care": "100.00"}, form=True) == []
