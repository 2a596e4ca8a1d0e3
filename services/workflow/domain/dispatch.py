"""One entry point: any workflow command against the state the handler loaded (optimistic locking)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.workflow.domain.access import holding_teams, team_scope_problems
from services.workflow.domain.finishing import cancel, finish, record_death, return_step
from services.workflow.domain.lifecycle import add_form, assign, refresh_prepopulated, save, start
from services.workflow.domain.model import Context, Decision, Request, Step
from services.workflow.domain.new_steps import start_new
from services.workflow.domain.next_actions import add_next_action, remove_next_action
from services.workflow.domain.requests import complete_request, send_request
from services.workflow.domain.timers import reschedule
from shared.commands import workflow as cmd
from shared.commands.base import RuleBroken, check, reason


def check_version(command: cmd.Command, step: Step) -> None:
    """Optimistic locking: a stale `expected_version` is a conflict."""
    if command.expected_version is not None and command.expected_version != step.version:
        raise RuleBroken([reason(
            "conflict", f"the step is at version {step.version}, not {command.expected_version}:"
            " reload it and try again", field="expected_version", step_id=step.step_id)])


def decide(
    ctx: Context, command: cmd.Command, *, step: Step | None = None, requests: Sequence[Request] = (),
    request: Request | None = None, person_steps: Sequence[Step] = (), new_workflow_id: str | None = None,
    assignments: Sequence[Mapping[str, Any]] = (),
) -> Decision:
    """Any workflow command against the state the handler loaded: the decision or RuleBroken."""
    if isinstance(command, cmd.StartNewStep):
        assert new_workflow_id is not None
        return start_new(ctx, command, workflow_id=new_workflow_id)
    if isinstance(command, cmd.RecordDeath):
        return record_death(ctx, command, person_steps)
    assert step is not None
    check_version(command, step)
    doing = TEAM_SCOPED.get(type(command))
    if doing is None:
        return _decide_on_step(ctx, command, step, requests, request)
    scope = team_scope_problems(step, ctx.actor, holding_teams(step, assignments), requests, doing)
    try:
        decision = _decide_on_step(ctx, command, step, requests, request)
    except RuleBroken as broken:
        if not any(r.code == "role" for r in broken.reasons):  # refused for their role: the team is moot
            broken.reasons += scope
        raise
    check(scope)
    return decision


def _decide_on_step(ctx: Context, command: cmd.Command, step: Step, requests: Sequence[Request],
                    request: Request | None) -> Decision:
    defn = ctx.packs.step(step.step_type, step.pack_version)
    if isinstance(command, cmd.CompleteRequest):
        assert request is not None
        return complete_request(ctx, step, defn, request, command.note)
    match command:
        case cmd.StartStep():
            return start(ctx, step, defn)
        case cmd.AssignStep():
            return assign(ctx, step, defn, command.to)
        case cmd.SaveStep():
            return save(ctx, step, defn, command, requests)
        case cmd.RefreshPrepopulated():
            return refresh_prepopulated(ctx, step, defn)
        case cmd.AddForm():
            return add_form(ctx, step, defn, command.form)
        case cmd.AddNextAction():
            return add_next_action(ctx, step, defn, command)
        case cmd.RemoveNextAction():
            return remove_next_action(ctx, step, defn, str(command.next_action_id))
        case cmd.SendRequest():
            return send_request(ctx, step, defn, requests, command, "request")
        case cmd.SendNotification():
            return send_request(ctx, step, defn, requests, command, "notification")
        case cmd.FinishStep() | cmd.AuthoriseStep():
            return finish(ctx, step, defn, requests, authorising=isinstance(command, cmd.AuthoriseStep))
        case cmd.ReturnStep():
            return return_step(ctx, step, defn, requests, command.note)
        case cmd.CancelStep():
            return cancel(ctx, step, defn, requests, command.reason)
        case cmd.RescheduleStep():
            return reschedule(ctx, step, defn, command)
    raise AssertionError(f"unhandled command {type(command).__name__}")


# R-W14: a manager's acts on a step, limited to the teams they manage (what they do, for the refusal)
TEAM_SCOPED: dict[type[cmd.Command], str] = {
    cmd.AssignStep: "assign", cmd.ReturnStep: "return", cmd.CancelStep: "cancel", cmd.RescheduleStep: "reschedule",
    cmd.AuthoriseStep: "authorise",
}
NEEDS_CASE = (cmd.FinishStep, cmd.AuthoriseStep, cmd.AddNextAction, cmd.StartNewStep)
