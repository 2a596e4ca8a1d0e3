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


def warnings_after(*earlier: tuple[str, dict[str, str]], now: dict[str, str]) -> list[str]:
    """Finishing a Planned Short Review with services `now`, after the person's `earlier` steps finished in order
    (step type, services): the R-K12 prompts."""
    e = Engine()
    for step_type, services in earlier:
        done = e.given_step(step_type, SW).created[0]
        e.steps[done.step_id] = replace(e.steps[done.step_id], state="finished", values=plan(services),
                                        updated_at=e.now)
        e.now = e.now.replace(microsecond=e.now.microsecond + 1)
    review = e.given_step(PSR, SW).created[0]
    e.steps[review.step_id] = replace(e.steps[review.step_id], values=plan(now))
    ctx = domain.Context(now=e.now, actor=domain.Actor("sw"), ids=iter(()), packs=e.packs,
                         case=e.case_view(review.person_id))
    return [w.message for w in domain.finish_warnings(ctx, e.steps[review.step_id], e.packs.step(PSR))
            if w.code == "review_monitoring_form"]


def test_R_K12_compares_with_the_last_plan_of_the_care_package_not_a_later_costed_plan_of_another_kind() -> None:
    """The person's own care package (plan, review, interim plan) is what the form monitors: the short-term
    team's support plan signed off since (seed 002) is another package, and cutting nothing of the long-term
    one prompts nothing; a reduction against the last care plan still prompts."""
    care = ("Care and Support Plan", {"Domiciliary care": "168.53"})
    short_term = ("Create Support Plan", {"Domiciliary care": "300.00", "Day centre": "60.00"})
    assert warnings_after(care, short_term, now={"Domiciliary care": "168.53"}) == []
    [message] = warnings_after(care, short_term, now={"Domiciliary care": "112.35"})
    assert "from £168.53 to £112.35" in message


def test_R_K12_the_last_interim_support_plan_is_the_package_to_compare_with() -> None:
    care = ("Care and Support Plan", {"Domiciliary care": "100.00", "Day centre": "50.00"})
    interim = ("Interim Support Plan", {"Domiciliary care": "120.00"})
    assert warnings_after(care, interim, now={"Domiciliary care": "120.00"}) == []  # the day centre stopped before


def test_R_K12_a_package_that_ended_with_the_case_is_not_compared_with() -> None:
    care = ("Care and Support Plan", {"Domiciliary care": "168.53", "Day centre": "50.00"})
    closed = ("Close Case", {})
    assert warnings_after(care, closed, now={"Domiciliary care": "50.00"}) == []
