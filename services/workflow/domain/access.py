"""Who may do what with a step: work on it, assign it, authorise it (R-W2, R-W3, R-W12, R-W14, R-RQ4..R-RQ7)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from services.workflow.domain.model import Context, Request, Step
from services.workflow.pack import StepDefinition
from shared.actor import MANAGER_ROLES, Actor, above_teams, held_roles, roles_in_words
from shared.commands.base import Reason, reason


def is_assignee(step: Step, actor: Actor) -> bool:
    if step.assignee_kind == "worker":
        return step.assignee_id == actor.worker_id
    return step.assignee_id in actor.team_ids


def may_hand_on(step: Step, defn: StepDefinition, actor: Actor) -> bool:
    """R-W3, R-S1: who may assign or reschedule a step: its assignee (a member of its team), a manager or an
    authoriser of the step type. A team's Future Work only its managers and authorisers (R-K13): a member who
    cannot open it (R-W11) neither hands it on nor moves its date."""
    if actor.roles & (MANAGER_ROLES | set(defn.authorisers)):
        return True
    return is_assignee(step, actor) and not (defn.is_future_work and step.assignee_kind == "team")


def future_work_to_worker(defn: StepDefinition, to_kind: str) -> list[Reason]:
    """R-K13: Future Work is a team's; its manager hands the worker the actual piece of work from it."""
    if not defn.is_future_work or to_kind != "worker":
        return []
    return [reason("future_work_to_team", "Future Work stays with a team: its manager opens it and hands the worker"
                   " the actual piece of work (a Review Planning, an Assessment Review…) by its next actions"
                   " (R-K13)", field="to")]


def may_work(step: Step, defn: StepDefinition, actor: Actor) -> bool:
    """The assignee (worker, or member of the team) or an authoriser of the step type."""
    return is_assignee(step, actor) or bool(actor.roles & set(defn.authorisers))


def is_recipient(request: Request, actor: Actor) -> bool:
    """R-RQ2: the request was sent to this worker, or to one of their teams."""
    if request.to_kind == "worker":
        return request.to_id == actor.worker_id
    return request.to_kind == "team" and request.to_id in actor.team_ids


def sent_to_answer(defn: StepDefinition, requests: Sequence[Request], actor: Actor) -> list[Request]:
    """R-C5: the requests answered in a section of the step that went to the actor (or to a team of theirs)."""
    names = {s.answered_by for s in defn.answered_sections}
    return [r for r in requests if r.name in names and is_recipient(r, actor)]


def answers(defn: StepDefinition, requests: Sequence[Request], actor: Actor) -> bool:
    """R-C5: the actor is who a request answered in a section of the step went to (or a member of its team)."""
    return any(r.state in ("open", "completed") for r in sent_to_answer(defn, requests, actor))


def answer_fields(defn: StepDefinition) -> frozenset[str]:
    """R-C5: the fields a request's recipient completes."""
    return frozenset(f.key for s in defn.answered_sections for f in s.fields)


def may_contribute(defn: StepDefinition, actor: Actor) -> bool:
    """R-W10: a contributor's role writes its own fields and adds its own actions on the step."""
    return bool(held_roles(actor.roles) & set(defn.contributors))


def may_act_for(step: Step, defn: StepDefinition, actor: Actor, named_roles: Sequence[str]) -> bool:
    """R-W10: whoever may work the step, or a contributor whose role the action or request is named for."""
    named_for = bool(held_roles(actor.roles) & set(named_roles))
    return may_work(step, defn, actor) or (named_for and may_contribute(defn, actor))


def is_involved(involved: frozenset[str], actor: Actor) -> bool:
    """R-W13: the worker, or one of their teams, is involved with the person (a relationship or a step of the
    person), or they manage above teams (a Senior Officer)."""
    return (f"worker:{actor.worker_id}" in involved or any(f"team:{team}" in involved for team in actor.team_ids)
            or above_teams(actor.roles))


def may_log(defn: StepDefinition, keys: Collection[str], involved: frozenset[str], actor: Actor) -> bool:
    """R-W13: an involved worker adds to the step's activity log without the step being theirs."""
    return bool(keys) and set(keys) <= defn.activity_logs and is_involved(involved, actor)


def finisher_problems(defn: StepDefinition, actor: Actor) -> list[Reason]:
    """R-W11: a manager's decision is opened and finished only by a role named for it."""
    if not defn.finished_by or held_roles(actor.roles) & set(defn.finished_by):
        return []
    return [reason("role", f"a {defn.step_type} is the decision of a {' or '.join(defn.finished_by)}: assign it"
                   " to them (R-W11)")]


def may_start(defn: StepDefinition, actor: Actor) -> bool:
    """R-W12: a grant of the step type names one of the worker's own roles (or none) and one of their
    teams (or none). Roles as given: a children's social worker is not an Adult Care practitioner."""
    return any((not grant.roles or actor.roles & set(grant.roles))
               and (not grant.teams or actor.team_ids & set(grant.teams)) for grant in defn.start_new)


def start_problems(defn: StepDefinition, actor: Actor, team_name: Callable[[str], str]) -> list[Reason]:
    """R-W12: Start > New opens only the step types the guide lists, for the workers it names."""
    if may_start(defn, actor):
        return []
    if not defn.start_new:
        return [reason("not_startable", f"a {defn.step_type} is not started from Start > New: it follows from"
                       " an earlier step's next action or a referral (R-W12)", field="step_type")]
    who = "; ".join(_grant_words(grant.roles, grant.teams, team_name) for grant in defn.start_new)
    return [reason("not_startable", f"a {defn.step_type} is started from Start > New only by {who} (R-W12)",
                   field="step_type")]


def _grant_words(roles: Sequence[str], teams: Sequence[str], team_name: Callable[[str], str]) -> str:
    role_words = roles_in_words(roles) or "a worker"
    team_words = f" of {', '.join(team_name(team) for team in teams)}" if teams else ""
    return f"{'a ' if roles else ''}{role_words}{team_words}"


def own_work(step: Step, actor: Actor, requests: Sequence[Request]) -> bool:
    """R-RQ4: the actor's own work: the step is assigned to them, or they sent its REQUIRED request."""
    if step.assignee_kind == "worker" and step.assignee_id == actor.worker_id:
        return True
    return any(r.required and r.kind == "request" and r.sent_by == actor.worker_id and r.state != "cancelled"
               for r in requests)


def authorise_problems(
    ctx: Context, step: Step, defn: StepDefinition, requests: Sequence[Request],
) -> list[Reason]:
    """R-RQ4..R-RQ6: who may authorise this step now.

    An authorising role of the step type (R-RQ5), never on one's own work (R-RQ4); except that
    a step type with `self_authorise` is authorised by its own assignee (R-RQ6 "green tick").
    """
    if defn.self_authorise and is_assignee(step, ctx.actor):
        return []
    if not ctx.actor.roles & set(defn.authorisers):
        who = f"a {roles_in_words(defn.authorisers)}" if defn.authorisers else "nobody"
        return [reason("role", f"only {who} may authorise a {step.step_type} (R-RQ5)")]
    if not defn.self_authorise and own_work(step, ctx.actor, requests):
        return [reason("own_work", f"no one authorises their own work: another {roles_in_words(defn.authorisers)}"
                       f" must authorise this {step.step_type} (R-RQ4)")]
    return []


def two_part(defn: StepDefinition) -> bool:
    """R-RQ7: the worker sends a required request and closes; an authoriser finishes."""
    return bool(defn.authorisers) and any(r.required and r.kind == "request" for r in defn.requests)


def handed_to_disabled(ctx: Context, to_kind: str | None, to_id: str | None, *, field: str, what: str) -> list[Reason]:
    """R-RQ10: work is never handed to a worker whose account the desk has disabled: nobody would ever do it."""
    if to_kind != "worker" or to_id not in ctx.disabled_workers:
        return []
    return [reason("account_disabled", f"worker {to_id}'s account is disabled: they would never see {what} (R-RQ10)",
                   field=field)]


def not_assignee(step: Step) -> Reason:
    return reason("not_assignee", f"this step is assigned to {step.assignee_kind} {step.assignee_id!r}")


def state_problems(step: Step, allowed: frozenset[str] | set[str], doing: str) -> list[Reason]:
    if step.state in allowed:
        return []
    if step.state == "incoming":
        return [reason("not_started", f"start the step before you {doing} (R-W2)")]
    return [reason("invalid_state", f"cannot {doing} a step that is {step.state}")]


def holding_teams(step: Step, assignments: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """R-W14: the teams whose work the step is: the team it is assigned to, or the team it was last assigned to
    or handed on from, or taken from by a member who started it (`assignments`: the step's `step.assigned` and
    `step.started` history details, newest first), or else the
    teams of the worker it was created for (`held_by`); none when no team is known."""
    if step.assignee_kind == "team":
        return frozenset({step.assignee_id})
    for details in assignments:
        for side in (details.get("assignee"), details.get("previous")):
            if isinstance(side, Mapping) and side.get("kind") == "team":
                return frozenset({str(side.get("id"))})
    return frozenset(step.provenance.get("held_by") or ())


def held_by(ctx: Context, assignee: tuple[str, str], from_step: Step | None) -> list[str]:
    """R-W14: the teams a new worker's step is the work of: the worker's own teams when they create it for
    themselves (as the signed actor says), else the teams that held the step it follows from, else (from no
    team's step) the teams of whoever created it for the worker."""
    kind, worker_id = assignee
    if kind != "worker":
        return []
    followed = holding_teams(from_step, ()) if from_step is not None and worker_id != ctx.actor.worker_id else None
    return sorted(followed or ctx.actor.team_ids)


def team_scope_problems(step: Step, actor: Actor, teams: frozenset[str], requests: Sequence[Request], doing: str,
                        ) -> list[Reason]:
    """R-W14: a manager's act on a step is for the managers of the team that holds it; above teams, any.

    The assignee and the recipient of one of the step's open requests (an authoriser it was sent to) act as
    themselves, not as managers."""
    if not teams or teams & actor.team_ids or is_assignee(step, actor) or above_teams(actor.roles):
        return []
    if any(r.state == "open" and is_recipient(r, actor) for r in requests):
        return []
    return [reason("not_team_member", f"this {step.step_type} is the work of team {', '.join(sorted(teams))},"
                   " not a team of yours:"
                   f" its own managers, a senior officer or a head of service may {doing} it (R-W14)",
                   field="actor.team_ids")]
