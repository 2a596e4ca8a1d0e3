"""R-K12: when a plan or review stops or reduces a service, the worker is prompted for the Review Monitoring Form."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from services.workflow.domain.closure import CLOSURE_GUARD
from services.workflow.domain.generated_values import BUDGET_RULE
from services.workflow.domain.model import Context, Step
from services.workflow.pack import StepDefinition
from shared.commands.base import Reason, reason

REVIEW_MONITORING_FORM = "Review Monitoring Form"
PLAN_TABLE = "planned_services"
# R-F7: what a step that starts from the package takes of the last plan (the original annual review date too)
PACKAGE_FIELDS = (PLAN_TABLE, "total_weekly_cost", "total_annual_cost", "annual_review_date")


def _offers_the_form(defn: StepDefinition) -> bool:
    return REVIEW_MONITORING_FORM in {form.name for form in defn.optional_forms}


def previous_plan(ctx: Context) -> Mapping[str, Any] | None:
    """The values of the person's last signed-off plan of their current care and support package: the latest
    finished step of a type that offers the Review Monitoring Form (Care and Support Plan, Planned Short Review,
    Interim Support Plan), so never a carer's, a short-term or a children's plan; none once the case was closed
    after it (that package ended with the case)."""
    for step_type in reversed(ctx.case.finished_sequence):
        try:
            defn = ctx.packs.step(step_type)
        except KeyError:
            continue
        if CLOSURE_GUARD in defn.rules:
            return None
        values = ctx.case.finished_values.get(step_type, {})
        if _offers_the_form(defn) and BUDGET_RULE in defn.rules and isinstance(values.get(PLAN_TABLE), list):
            return values
    return None


def package_values(ctx: Context, defn: StepDefinition) -> dict[str, Any]:
    """R-F7: the package a new step of a type that `starts_from_package` opens with: the last signed-off plan's
    service lines, totals and annual review date, for the fields the step has."""
    before = previous_plan(ctx) if defn.starts_from_package else None
    if before is None:
        return {}
    fields = defn.field_map()
    return {key: before[key] for key in PACKAGE_FIELDS if key in before and key in fields}


def _services(values: Mapping[str, Any]) -> set[str]:
    return {str(row.get("service")) for row in values.get(PLAN_TABLE) or [] if isinstance(row, Mapping)
            and row.get("service")}


def _weekly(values: Mapping[str, Any]) -> Decimal | None:
    try:
        return Decimal(str(values["total_weekly_cost"]))
    except (KeyError, InvalidOperation):
        return None


def review_monitoring_warnings(ctx: Context, step: Step, defn: StepDefinition) -> list[Reason]:
    """R-K12: a service of the previous plan has stopped, or the weekly cost went down, and the step offers the
    Review Monitoring Form but it is not on the step yet: a prompt to complete it ("this form monitors savings")."""
    if not _offers_the_form(defn):
        return []
    if REVIEW_MONITORING_FORM in step.forms or not isinstance(step.values.get(PLAN_TABLE), list):
        return []
    before = previous_plan(ctx)
    if before is None:
        return []
    stopped = sorted(_services(before) - _services(step.values))
    was, now = _weekly(before), _weekly(step.values)
    reduced = was is not None and now is not None and now < was
    if not (stopped or reduced):
        return []
    what = [f"stopped: {', '.join(stopped)}"] if stopped else []
    what += [f"weekly cost down from £{was} to £{now}"] if reduced else []
    return [reason("review_monitoring_form", f"a service has stopped or been reduced ({'; '.join(what)}): add and"
                   f" complete the {REVIEW_MONITORING_FORM} before you finish — it monitors savings (R-K12)",
                   step_id=step.step_id)]
