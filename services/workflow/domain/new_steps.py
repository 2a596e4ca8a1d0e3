"""Creating steps: prepopulated, with carried sections, routed by R-K7; Start > New (R-W1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from services.workflow.domain.access import finisher_problems, handed_to_disabled, held_by, start_problems
from services.workflow.domain.closure import CLOSURE_GUARD, closing_teams
from services.workflow.domain.forms import carried_values, date_value, prepopulated, yes_from_orders
from services.workflow.domain.future_work import is_future_work, one_future_work, open_future_work
from services.workflow.domain.generated_values import system_values
from services.workflow.domain.model import (
    Context,
    Decision,
    History,
    Priority,
    Step,
    Workflow,
    event_base,
    history_entry,
)
from services.workflow.domain.monitoring_form import package_values
from services.workflow.domain.reviews import twr_limit
from services.workflow.domain.timers import timers_of_new_step
from services.workflow.pack import StepDefinition
from shared.calendar import london_date
from shared.commands import workflow as cmd
from shared.commands.base import RuleBroken, check, reason
from shared.events.base import Event
from shared.events.workflow import StepCreated, StepStarted, WorkflowStarted

# R-K7: the named rule; the assessment it counts from, that assessment's date field, the days.
CIN_ROUTING_RULE = "cin_45_day_routing"
CIN_ASSESSMENT = "Child and Family Assessment and Plan"
CIN_DATE_FIELD = "date_assessment_started"
CIN_DAYS = 45


def new_step(
    ctx: Context, *, step_type: str, workflow_id: str, person_id: str, assignee: tuple[str, str],
    priority: Priority, provenance: dict[str, Any], due_date: date | None = None,
    source_values: Mapping[str, Mapping[str, Any]] | None = None, from_step: Step | None = None,
) -> tuple[Step, History]:
    """A step created as incoming (or future) work, prepopulated and with carried sections.

    A step type naming `cin_45_day_routing` is routed by R-K7; system-generated fields the
    system can fill now are filled (R-W6).
    """
    version = ctx.packs.latest_version(step_type)
    defn = ctx.packs.step(step_type, version)
    values = carried_values(defn, source_values if source_values is not None else ctx.case.finished_values)
    values.update(package_values(ctx, defn))  # R-F7
    if ctx.person is not None:
        values.update(prepopulated(defn, ctx.person, cogs=frozenset({"blue", "yellow"})))
        note = "prepopulated from the person record"
    else:
        note = "person record unavailable: prepopulated fields left empty (refresh later)"
    ordered, sources = yes_from_orders(defn, ctx.case.live_orders)
    values.update(ordered)
    if sources:  # R-C5: what purchasing already knows, named
        provenance = {**provenance, "prefilled": sources}
    state = "future" if due_date is not None and due_date > ctx.today else "incoming"
    assignee, routing = cin_routing(ctx, defn, assignee, due_date or ctx.today, from_step)
    if routing is not None:
        provenance = {**provenance, "routing": routing}
    if teams := held_by(ctx, assignee, from_step):
        provenance = {**provenance, "held_by": teams}
    if from_step is not None and CLOSURE_GUARD in defn.rules and CLOSURE_GUARD in ctx.packs.step(
            from_step.step_type, from_step.pack_version).rules:  # R-K1: who is closing goes on with the closure
        provenance = {**provenance, "closing_teams": sorted(closing_teams(ctx, from_step))}
    step = Step(
        step_id=next(ctx.ids), workflow_id=workflow_id, person_id=person_id, step_type=step_type,
        pack_version=version, state=state, assignee_kind=assignee[0],  # type: ignore[arg-type]
        assignee_id=assignee[1], priority=priority, created_at=ctx.now, created_by=ctx.actor.worker_id,
        provenance={**provenance, "pack_version": version}, due_date=due_date,
        values=values, updated_at=ctx.now, updated_by=ctx.actor.worker_id,
    )
    step = replace(step, values={**values, **system_values(ctx, step, defn, acting=False)})
    return step, History(step.step_id, ctx.now, ctx.actor.worker_id, "prepopulated",
                         {"note": note, "fields": sorted(step.values)})


def assessment_started(ctx: Context, from_step: Step | None) -> date | None:
    """R-K7: when the person's Child and Family Assessment and Plan started: its
    `date_assessment_started`, else the date it was created. The creating step if it is one."""
    values: Mapping[str, Any]
    if from_step is not None and from_step.step_type == CIN_ASSESSMENT:
        values, created = from_step.values, london_date(from_step.created_at)
    elif CIN_ASSESSMENT in ctx.case.latest:
        latest = ctx.case.latest[CIN_ASSESSMENT]
        values, created = latest.values, latest.created_on
    else:
        return None
    return date_value(values, CIN_DATE_FIELD) or created


def cin_routing(
    ctx: Context, defn: StepDefinition, assignee: tuple[str, str], on: date, from_step: Step | None,
) -> tuple[tuple[str, str], dict[str, Any] | None]:
    """R-K7: a team step of a type naming `cin_45_day_routing`, held within 45 days of the
    assessment, goes to the assessment's team (Response); after that, to the team it was
    given, or the step type's default team rather than the assessment's (Locality).
    Days are London calendar dates: day 45 is within, day 46 is not."""
    if CIN_ROUTING_RULE not in defn.rules or assignee[0] != "team":
        return assignee, None
    started = assessment_started(ctx, from_step)
    if started is None:
        return assignee, None
    response = ctx.packs.step(CIN_ASSESSMENT).default_team
    days = (on - started).days
    team = assignee[1]
    if days <= CIN_DAYS and response is not None:
        team = response
    elif team == response and defn.default_team is not None:
        team = defn.default_team
    return ("team", team), {"rule": "R-K7", "assessment_started": started.isoformat(),
                            "meeting_date": on.isoformat(), "days": days, "team": team}


def creation_events(ctx: Context, step: Step) -> tuple[Step, list[Event], list[History]]:
    """step.created; and a step type opened on creation (R-W13, WB Case Monitoring) is started at once, for
    whoever it is assigned to: Incomplete work, never Incoming. The step as saved, its events, its history."""
    events: list[Event] = [created_event(step)]
    if step.state != "incoming" or not ctx.packs.step(step.step_type, step.pack_version).opened_on_creation:
        return step, events, []
    started = replace(step, state="incomplete", version=step.version + 1)
    events.append(StepStarted(**event_base(started, ctx), assignee=started.assignee))
    return started, events, [history_entry(started, ctx, "step.started", rule="R-W13 opened on creation")]


def created_event(step: Step) -> StepCreated:
    return StepCreated(
        step_id=step.step_id, workflow_id=step.workflow_id, person_id=step.person_id,
        step_type=step.step_type, assignee=step.assignee, state=step.state,  # type: ignore[arg-type]
        priority=step.priority, due_date=step.due_date, linked_person_id=step.linked_person_id,
        pack_version=step.pack_version, provenance=step.provenance,
    )


def start_new(ctx: Context, command: cmd.StartNewStep, *, workflow_id: str) -> Decision:
    """R-W1, R-W12: Start > New opens a new workflow, for the step types and workers the pack names."""
    step_type = command.step_type
    if step_type not in ctx.packs.step_types():
        raise RuleBroken([reason("unknown_step_type", f"no pack defines step type {step_type!r}",
                                 field="step_type")])
    target = command.assignee or cmd.Target(kind="worker", id=ctx.actor.worker_id)
    check(start_problems(ctx.packs.step(step_type), ctx.actor, ctx.packs.team_name)
          + handed_to_disabled(ctx, target.kind, target.id, field="assignee", what=f"this {step_type}"))
    return open_workflow(ctx, step_type, str(command.person_id), target, workflow_id=workflow_id)


def open_workflow(
    ctx: Context, step_type: str, person_id: str, target: cmd.Target, *, workflow_id: str,
) -> Decision:
    """A new workflow whose first step is `step_type`; assigned to the actor it is started at once.

    The case rules of a new step apply (R-K2 one Future Work, R-K5 two TWRs, R-W11 the manager's step).
    """
    existing = open_future_work(ctx) if is_future_work(ctx.packs, step_type) else None
    if existing is not None:
        raise RuleBroken([one_future_work(existing, field="step_type")])
    check(twr_limit(ctx, step_type, field="step_type"))
    if target.kind == "worker" and target.id == ctx.actor.worker_id:  # started at once: R-W11 applies
        check(finisher_problems(ctx.packs.step(step_type), ctx.actor))
    workflow = Workflow(workflow_id, person_id, {"kind": "start_new"}, ctx.now, ctx.actor.worker_id)
    step, prepop = new_step(
        ctx, step_type=step_type, workflow_id=workflow_id, person_id=person_id,
        assignee=(target.kind, target.id), priority="normal",
        provenance={"rule": "R-W1 start new", "action": None, "from_step_id": None},
    )
    history = [History(step.step_id, ctx.now, ctx.actor.worker_id, "step.created",
                       {"state": step.state, "provenance": step.provenance}), prepop]
    step, created, opened = creation_events(ctx, step)
    events: list[Event] = [
        WorkflowStarted(workflow_id=workflow_id, person_id=person_id, first_step_type=step_type,
                        origin="start_new"),
        *created,
    ]
    history += opened
    if step.state == "incoming" and target.kind == "worker" and target.id == ctx.actor.worker_id:
        step = replace(step, state="incomplete", version=2)
        events.append(StepStarted(**event_base(step, ctx), assignee=step.assignee))
        history.append(history_entry(step, ctx, "step.started"))
    return Decision(events=tuple(events), created=(step,), workflows=(workflow,), history=tuple(history),
                    timers=tuple(timers_of_new_step(ctx, step)))
